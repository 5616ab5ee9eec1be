package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// writeInPieces writes data into w in pieces of uneven sizes, as a tar
// writer does (headers, then bodies in copy-buffer slices), then closes w.
func writeInPieces(t *testing.T, w io.WriteCloser, data []byte) {
	t.Helper()
	sizes := []int{512, 131072, 7, 65536 + 3, 1 << 20}
	for i := 0; len(data) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestBulkWriterSameObject: NewBulkWriter writes the bytes NewWriter
// writes (unencrypted, where the output is deterministic), for every
// method and for objects of no bytes, a part of one block, and many blocks
// and windows; encrypted, it reads back as the plaintext.
func TestBulkWriterSameObject(t *testing.T) {
	inputs := map[string][]byte{
		"empty":       nil,
		"one byte":    {42},
		"100 KB":      pseudoWALBytes(11, 100_000),
		"9 MiB + 17":  pseudoWALBytes(12, 9<<20+17),
		"zeros 3 MiB": make([]byte, 3<<20),
	}
	for _, c := range allCompressions {
		for name, plain := range inputs {
			encode := func(newWriter func(io.Writer, Compression, *Key) (io.WriteCloser, error), key *Key) []byte {
				var out bytes.Buffer
				w, err := newWriter(&out, c, key)
				if err != nil {
					t.Fatal(err)
				}
				writeInPieces(t, w, plain)
				return out.Bytes()
			}
			if got, want := encode(bulkDefault, nil), encode(NewWriter, nil); !bytes.Equal(got, want) {
				t.Errorf("%s, %s: bulk writer wrote %d bytes that differ from the writer's %d", c, name, len(got), len(want))
			}

			key := testKey(40)
			enc := bytes.NewReader(encode(bulkDefault, key))
			r, err := NewReader(enc, c, key)
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(back, plain) {
				t.Errorf("%s+key, %s: read back %d bytes (%v), want the %d written", c, name, len(back), err, len(plain))
			}
		}
	}
}

// TestBulkWriterReportsFailedWrite: zstd's bulk encoder writes from
// another goroutine; a destination that fails any one write (or every
// write) must still fail the Write or the Close, never both succeed.
func TestBulkWriterReportsFailedWrite(t *testing.T) {
	broken := errors.New("connection reset")
	plain := pseudoWALBytes(13, 6<<20)
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(41)} {
			w, err := NewBulkWriter(failingWriter{broken}, c, key, LevelDefault)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := w.Write(plain)
			cerr := w.Close()
			if !errors.Is(werr, broken) && !errors.Is(cerr, broken) {
				t.Errorf("%s/%s: write error lost: Write %v, Close %v", c, keyName(key), werr, cerr)
			}
			// Count the destination's writes, then fail each in turn.
			var n countingCalls
			w, _ = NewBulkWriter(&n, c, key, LevelDefault)
			w.Write(plain)
			w.Close()
			for _, i := range []int{1, 2, 3, n.calls / 2, n.calls - 1, n.calls} {
				if i < 1 || i > n.calls {
					continue
				}
				dst := &onceFailingWriter{n: i, err: broken}
				w, _ := NewBulkWriter(dst, c, key, LevelDefault)
				var werr error
				for off := 0; off < len(plain) && werr == nil; off += 256 << 10 {
					_, werr = w.Write(plain[off:min(off+256<<10, len(plain))])
				}
				cerr := w.Close()
				if !errors.Is(werr, broken) && !errors.Is(cerr, broken) {
					t.Errorf("%s/%s: write %d of %d failed unnoticed: Write %v, Close %v", c, keyName(key), i, n.calls, werr, cerr)
				}
			}
		}
	}
}

type countingCalls struct{ calls int }

func (c *countingCalls) Write(p []byte) (int, error) { c.calls++; return len(p), nil }

// bulkWriterExtra is what one open bulk writer may keep live mid-stream
// beyond NewWriter's: measured, zstd with a key, 4.5 MiB against 2.9 (one
// more window of history, two more block buffers, a second block encoder);
// the other methods the same as NewWriter.
const bulkWriterExtra = 2 << 20

// TestBulkWriterMemory: the bulk writer's memory does not grow with the
// object and stays within bulkWriterExtra of NewWriter's.
func TestBulkWriterMemory(t *testing.T) {
	const size = 64 << 20
	midStream := func(c Compression, newWriter func(io.Writer, Compression, *Key) (io.WriteCloser, error)) uint64 {
		return liveDuring(func(mid func()) {
			w, err := newWriter(&countingWriter{}, c, testKey(42))
			if err != nil {
				t.Fatal(err)
			}
			src := newPseudoWAL(80, size)
			buf := make([]byte, 128<<10)
			for written := 0; written < size; written += len(buf) {
				io.ReadFull(src, buf)
				w.Write(buf)
				if written == size/2 {
					mid()
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, c := range allCompressions {
		live, plainLive := midStream(c, bulkDefault), midStream(c, NewWriter)
		t.Logf("%s+key: bulk writer %.1f MiB live mid-stream, writer %.1f MiB", c, mib(live), mib(plainLive))
		if live > plainLive+bulkWriterExtra {
			t.Errorf("%s: bulk writer holds %.1f MiB mid-stream, more than %.1f MiB over the writer's", c, mib(live), mib(bulkWriterExtra))
		}
	}
}

// bulkDefault is NewBulkWriter at the default level, shaped as NewWriter.
func bulkDefault(w io.Writer, c Compression, key *Key) (io.WriteCloser, error) {
	return NewBulkWriter(w, c, key, LevelDefault)
}
