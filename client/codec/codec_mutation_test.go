package codec

import (
	"errors"
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
			for n := 1; n <= 3; n++ {
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
