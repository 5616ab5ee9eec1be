package codec_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/walgate/walgate/client/codec"
)

func countingKey(start byte) *codec.Key {
	var k codec.Key
	for i := range k {
		k[i] = start + byte(i)
	}
	return &k
}

// TestFingerprintVector: the value docs/codec.md section 7.1 gives, and
// fingerprints that differ between keys and never contain the key.
func TestFingerprintVector(t *testing.T) {
	k := countingKey(1)
	if got := k.Fingerprint(); got != "7f084a0f98b072c6" {
		t.Fatalf("fingerprint of 01..20 = %s, want 7f084a0f98b072c6", got)
	}
	if countingKey(2).Fingerprint() == k.Fingerprint() {
		t.Fatal("two keys, one fingerprint")
	}
	if codec.KeyByFingerprint([]*codec.Key{countingKey(2), k}, "7f084a0f98b072c6") != k || codec.KeyByFingerprint([]*codec.Key{countingKey(2)}, "7f084a0f98b072c6") != nil {
		t.Fatal("KeyByFingerprint")
	}
}

// TestSelectKey: the key whose first chunk authenticates is chosen, the
// replayed stream decodes whole, from one byte up to several chunks; with
// no right key the first is returned and decoding fails with ErrAuth.
func TestSelectKey(t *testing.T) {
	a, b, c := countingKey(1), countingKey(2), countingKey(3)
	for _, n := range []int{0, 1, 8191, 8192, 100000} {
		plain := bytes.Repeat([]byte{7, 1, 9}, n/3+1)[:n]
		var obj bytes.Buffer
		w, err := codec.NewWriter(&obj, codec.None, b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		k, replay, err := codec.SelectKey(bytes.NewReader(obj.Bytes()), []*codec.Key{a, c, b})
		if err != nil || k != b {
			t.Fatalf("%d bytes: key %v (want the third), %v", n, k == b, err)
		}
		dec, _ := codec.NewReader(replay, codec.None, k)
		got, err := io.ReadAll(dec)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: replayed object decodes to %d bytes, %v", n, len(got), err)
		}
		k, replay, err = codec.SelectKey(bytes.NewReader(obj.Bytes()), []*codec.Key{a, c})
		if err != nil || k != a {
			t.Fatalf("%d bytes, no right key: %v", n, err)
		}
		dec, _ = codec.NewReader(replay, codec.None, k)
		if _, err := io.ReadAll(dec); !errors.Is(err, codec.ErrAuth) {
			t.Fatalf("%d bytes, no right key: %v, want ErrAuth", n, err)
		}
	}
	// Errors of the source are passed on as they are.
	broken := io.MultiReader(bytes.NewReader(make([]byte, 100)), errReader{})
	if _, _, err := codec.SelectKey(broken, []*codec.Key{a, b}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("broken source: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
