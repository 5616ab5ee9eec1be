package codec

import (
	"errors"
	"io"
	"testing"
)

// TestWriterReportsOneFailedWrite: a destination that fails one write and
// accepts the rest has lost part of the object, whatever stage wrote it.
// NewWriter must say so, and keep saying so: every Write after the failure
// and Close fail too, so that the object is never taken as complete.
func TestWriterReportsOneFailedWrite(t *testing.T) {
	broken := errors.New("connection reset")
	piece := pseudoWALBytes(6, 300<<10)
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(3)} {
			// The first writes, and the last one: Close's (the FINAL
			// chunk, or the compressor's end of stream).
			count := &onceFailingWriter{}
			encodeInto(t, count, c, key, piece)
			for _, n := range []int{1, 2, 3, count.calls} {
				dst := &onceFailingWriter{n: n, err: broken}
				w, err := NewWriter(dst, c, key)
				if err != nil {
					t.Fatal(err)
				}
				failed := false
				for range 4 {
					_, werr := w.Write(piece)
					switch {
					case errors.Is(werr, broken):
						failed = true
					case failed:
						t.Errorf("%s/%s, write %d failing: Write after the failure: %v", c, keyName(key), n, werr)
					}
				}
				cerr := w.Close()
				if dst.calls < n {
					continue // this stage never wrote that often
				}
				if !errors.Is(cerr, broken) {
					t.Errorf("%s/%s, write %d failing: Close %v (a Write failed: %v)", c, keyName(key), n, cerr, failed)
				}
				if again := w.Close(); !errors.Is(again, broken) {
					t.Errorf("%s/%s, write %d failing: second Close %v", c, keyName(key), n, again)
				}
			}
		}
	}
}

// encodeInto writes piece four times through NewWriter into dst and closes
// it.
func encodeInto(t *testing.T, dst io.Writer, c Compression, key *Key, piece []byte) {
	t.Helper()
	w, err := NewWriter(dst, c, key)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
