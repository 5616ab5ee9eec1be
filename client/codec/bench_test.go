package codec

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

const benchSize = 16 << 20 // one WAL segment

var benchPlain = sync.OnceValue(func() []byte { return pseudoWALBytes(42, benchSize) })

func benchKeys() []*Key { return []*Key{nil, testKey(40)} }

// countingWriter counts bytes and drops them.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWriter compresses (and encrypts) one 16 MiB segment of
// pseudo-WAL. MB/s are of plaintext; "ratio" is plaintext/object size.
func BenchmarkWriter(b *testing.B) {
	plain := benchPlain()
	for _, c := range allCompressions {
		for _, key := range benchKeys() {
			b.Run(string(c)+"/"+keyName(key), func(b *testing.B) {
				b.SetBytes(int64(len(plain)))
				b.ReportAllocs()
				var out countingWriter
				for b.Loop() {
					out.n = 0
					w, err := NewWriter(&out, c, key)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := w.Write(plain); err != nil {
						b.Fatal(err)
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(plain))/float64(out.n), "ratio")
			})
		}
	}
}

// BenchmarkReader decrypts and decompresses the same segment. MB/s are of
// plaintext.
func BenchmarkReader(b *testing.B) {
	plain := benchPlain()
	for _, c := range allCompressions {
		for _, key := range benchKeys() {
			b.Run(string(c)+"/"+keyName(key), func(b *testing.B) {
				object := encode(b, plain, c, key, 0)
				b.SetBytes(int64(len(plain)))
				b.ReportAllocs()
				buf := make([]byte, 256<<10)
				for b.Loop() {
					r, err := NewReader(bytes.NewReader(object), c, key)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.CopyBuffer(io.Discard, r, buf)
					if err != nil || n != int64(len(plain)) {
						b.Fatal(n, err)
					}
					r.Close()
				}
			})
		}
	}
}

// BenchmarkContentID hashes the segment as the client does before a push.
func BenchmarkContentID(b *testing.B) {
	plain := benchPlain()
	for _, key := range benchKeys() {
		b.Run(keyName(key), func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				h := NewContentID(key)
				h.Write(plain)
				_ = h.String()
			}
		})
	}
}
