package client_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/walgate/walgate/client"
)

// TestCopyHashing: the copy that hashes in a second goroutine gives dst
// and the hash every byte in order, also from a reader of odd short
// reads, and stops at dst's first error.
func TestCopyHashing(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	var dst bytes.Buffer
	h := sha256.New()
	n, err := client.CopyHashing(&dst, h, iotest.HalfReader(bytes.NewReader(data)), make([]byte, 64<<10))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d of %d bytes: %v", n, len(data), err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("dst did not get the bytes in order")
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the hash is not that of the bytes copied")
	}

	boom := errors.New("disk full")
	_, err = client.CopyHashing(&failAfter{n: 100 << 10, err: boom}, sha256.New(), bytes.NewReader(data), make([]byte, 64<<10))
	if !errors.Is(err, boom) {
		t.Fatalf("a failing dst gave %v, want %v", err, boom)
	}
	_, err = client.CopyHashing(io.Discard, sha256.New(), iotest.ErrReader(boom), make([]byte, 64<<10))
	if !errors.Is(err, boom) {
		t.Fatalf("a failing source gave %v, want %v", err, boom)
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, f.err
	}
	f.n -= len(p)
	return len(p), nil
}
