package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// A zstd object copied with io.Copy (WriteTo: the decoder writes its
// blocks straight out) ends exactly as one read with Read: the same
// plaintext when it is whole, and otherwise the same kind of error after
// the same bytes, give or take a block. An error of the writer comes back
// as it is.
func TestZstdWriteToMatchesRead(t *testing.T) {
	plain := pseudoWALBytes(7, 3<<20)
	for _, key := range []*Key{nil, testKey(5)} {
		object := encode(t, plain, Zstd, key, 0)
		cases := map[string][]byte{
			"whole":          object,
			"empty":          nil,
			"cut in half":    object[:len(object)/2],
			"last byte gone": object[:len(object)-1],
			"trailing byte":  append(bytes.Clone(object), 0),
		}
		flipped := bytes.Clone(object)
		flipped[len(flipped)/3] ^= 1
		cases["a byte changed"] = flipped
		for name, obj := range cases {
			r, _ := NewReader(bytes.NewReader(obj), Zstd, key)
			want, werr := io.ReadAll(r)
			r, _ = NewReader(bytes.NewReader(obj), Zstd, key)
			if _, ok := r.(io.WriterTo); !ok {
				t.Fatal("the zstd reader has no WriteTo")
			}
			var got bytes.Buffer
			n, gerr := io.Copy(&got, r)
			// Encrypted, only authentic plaintext comes out; plain zstd
			// finds a changed byte by its checksum at the end, as Read.
			if n != int64(got.Len()) || key != nil && !bytes.HasPrefix(plain, got.Bytes()) ||
				!bytes.HasPrefix(want, got.Bytes()) && !bytes.HasPrefix(got.Bytes(), want) {
				t.Fatalf("%s (key %v): WriteTo wrote %d bytes that are not what Read gives", name, key != nil, n)
			}
			for _, kind := range []error{ErrAuth, ErrTruncated, ErrCorrupt} {
				if errors.Is(werr, kind) != errors.Is(gerr, kind) {
					t.Errorf("%s (key %v): Read ends with %v, WriteTo with %v", name, key != nil, werr, gerr)
				}
			}
			if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s (key %v): Read: %d bytes, %v; WriteTo: %d bytes, %v", name, key != nil, len(want), werr, got.Len(), gerr)
			}
			if n, err := io.Copy(io.Discard, r); n != 0 || (err == nil) != (gerr == nil) {
				t.Errorf("%s (key %v): a second WriteTo gave %d bytes, %v after %v", name, key != nil, n, err, gerr)
			}
		}
		failing := errors.New("disk full")
		r, _ := NewReader(bytes.NewReader(object), Zstd, key)
		if _, err := io.Copy(writerFunc(func(p []byte) (int, error) { return 0, failing }), r); err != failing {
			t.Errorf("a failing writer: WriteTo returned %v, want the writer's error itself", err)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
