package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
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

// TestForeignFrames: an object compressed by another zstd or LZ4 writer
// decodes, whatever optional fields its frame header carries (a content
// size of each width, a single-segment frame, a dictionary ID, block
// checksums, no content checksum), and is still refused when cut short or
// followed by a byte.
func TestForeignFrames(t *testing.T) {
	type object struct {
		name  string
		c     Compression
		plain []byte
		data  []byte
	}
	var objects []object
	for _, n := range []int{0, 1, 200, 300, 70000, 300000} {
		plain := pseudoWALBytes(uint64(n), n)
		for _, opts := range [][]zstd.EOption{
			{zstd.WithSingleSegment(true)},
			{zstd.WithSingleSegment(false)},
			{zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true)},
		} {
			enc, err := zstd.NewWriter(nil, append(opts, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<17))...)
			if err != nil {
				t.Fatal(err)
			}
			objects = append(objects, object{fmt.Sprintf("zstd EncodeAll %d bytes", n), Zstd, plain, enc.EncodeAll(plain, nil)})
			enc.Close()
		}
		for i, opts := range [][]lz4.Option{
			{lz4.SizeOption(uint64(n))},
			{lz4.BlockChecksumOption(true)},
			{lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb)},
		} {
			var b bytes.Buffer
			w := lz4.NewWriter(&b)
			if err := w.Apply(opts...); err != nil {
				t.Fatal(err)
			}
			w.Write(plain)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			objects = append(objects, object{fmt.Sprintf("lz4 options %d, %d bytes", i, n), LZ4, plain, b.Bytes()})
		}
	}
	// A zstd frame with a dictionary ID field (dictionary 0 is "none").
	withDict := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x21, 0x00, 0x05, 0x29, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'}
	objects = append(objects, object{"zstd with a dictionary ID field", Zstd, []byte("hello"), withDict})
	for _, o := range objects {
		got, err := decode(o.data, o.c, nil)
		if err != nil || !bytes.Equal(got, o.plain) {
			t.Errorf("%s: decoded %d bytes (want %d), %v", o.name, len(got), len(o.plain), err)
			continue
		}
		if _, err := decode(o.data[:len(o.data)-1], o.c, nil); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: cut by one byte: %v", o.name, err)
		}
		if _, err := decode(append(bytes.Clone(o.data), 0), o.c, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: one byte after the frame: %v", o.name, err)
		}
	}
}

// TestSourceFailingAfterTheObject: a source that delivers the whole object
// and then fails instead of ending has not shown that nothing follows the
// object; the reader reports the source's error, not a clean end.
func TestSourceFailingAfterTheObject(t *testing.T) {
	broken := errors.New("connection reset")
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(4)} {
			plain := pseudoWALBytes(16, 50000)
			object := encode(t, plain, c, key, 0)
			r, err := NewReader(io.MultiReader(bytes.NewReader(object), errReader{broken}), c, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if !errors.Is(err, broken) {
				t.Errorf("%s/%s: %v, want the source's error", c, keyName(key), err)
			}
			if !bytes.Equal(got, plain[:len(got)]) {
				t.Errorf("%s/%s: %d bytes read that are not the plaintext", c, keyName(key), len(got))
			}
		}
	}
}

// TestShortReadsOfTheSource: a source that returns fewer bytes than asked
// (a network body does) splits frame and block headers across reads; the
// object still decodes whole, and a cut or a byte after it is still seen.
func TestShortReadsOfTheSource(t *testing.T) {
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(5)} {
			plain := pseudoWALBytes(17, 300000)
			object := encode(t, plain, c, key, 0)
			read := func(data []byte) ([]byte, error) {
				r, err := NewReader(iotest.HalfReader(bytes.NewReader(data)), c, key)
				if err != nil {
					return nil, err
				}
				defer r.Close()
				return io.ReadAll(r)
			}
			if got, err := read(object); err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%s/%s: %d bytes, %v", c, keyName(key), len(got), err)
			}
			if c == None && key == nil {
				continue // no end marker to check
			}
			if _, err := read(object[:len(object)-1]); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrAuth) {
				t.Errorf("%s/%s: cut by one byte: %v", c, keyName(key), err)
			}
			if _, err := read(append(bytes.Clone(object), 0)); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrAuth) {
				t.Errorf("%s/%s: one byte after the object: %v", c, keyName(key), err)
			}
		}
	}
}
