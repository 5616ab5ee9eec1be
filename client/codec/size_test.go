package codec

import (
	"bytes"
	"testing"
)

// Every size NewEncryptWriter produces is possible; sizes between them
// that no plaintext gives are not.
func TestEncryptedSizePossible(t *testing.T) {
	var key Key
	possible := map[int64]bool{}
	for _, n := range []int{0, 1, 100, 8191, 8192, 8193, 3*8192 - 1, 3 * 8192, 3*8192 + 5} {
		var out bytes.Buffer
		w, err := NewEncryptWriter(&out, &key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		size := int64(out.Len())
		possible[size] = true
		if !EncryptedSizePossible(size) {
			t.Errorf("%d plaintext bytes encrypt to %d, which EncryptedSizePossible refuses", n, size)
		}
	}
	for _, size := range []int64{0, 40, 24 + 8209, 24 + 8209 + 16, 24 + 2*8209 + 3} {
		if possible[size] {
			continue
		}
		if EncryptedSizePossible(size) {
			t.Errorf("EncryptedSizePossible(%d) = true; no plaintext encrypts to it", size)
		}
	}
}
