package codec

import (
	"errors"
	"testing"
)

// TestDamageInsideAFrameIsCorrupt: bytes changed inside a zstd or LZ4
// frame's compressed data (not in a header, not at its end) make an object
// that is whole but undecodable. The reader must call it corrupt, never
// truncated: a truncated object is one a caller may fetch again, a
// corrupt one will not get better.
func TestDamageInsideAFrameIsCorrupt(t *testing.T) {
	plain := pseudoWALBytes(31, 200<<10)
	for _, c := range []Compression{Zstd, LZ4} {
		object := encode(t, plain, c, nil, 0)
		for _, at := range []int{len(object) / 3, len(object) / 2} {
			damaged := append([]byte(nil), object...)
			for i := at; i < at+32; i++ {
				damaged[i] ^= 0x5a
			}
			got, err := readAllChecked(damaged, c, nil)
			if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTruncated) {
				t.Errorf("%s, 32 bytes changed at %d of %d: %d bytes and %v; want ErrCorrupt, not ErrTruncated", c, at, len(object), len(got), err)
			}
		}
	}
}
