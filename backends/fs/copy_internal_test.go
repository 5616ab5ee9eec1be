package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/walgate/walgate/backends"
)

// pieces yields r's bytes at most n at a time, as an HTTP request body
// yields one transfer chunk per read.
type pieces struct {
	r io.Reader
	n int
}

func (p pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.n)]) }

type countWrites struct {
	bytes.Buffer
	writes int
}

func (c *countWrites) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

// A body that arrives in 8 KiB pieces is written to the file in whole
// copy buffers, not a write per piece; declared sizes are still enforced.
func TestCopyCheckedWritesWholeBuffers(t *testing.T) {
	data := make([]byte, 3*copyBufferSize+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, size := range []int64{int64(len(data)), -1} {
		var w countWrites
		n, err := copyChecked(context.Background(), &w, pieces{bytes.NewReader(data), 8209}, size)
		if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
			t.Fatalf("size %d: copied %d, %v; data equal %v", size, n, err, bytes.Equal(w.Bytes(), data))
		}
		if want := 4; w.writes != want {
			t.Errorf("size %d: %d writes for %d bytes in 8209-byte pieces, want %d (one per %d-byte buffer)", size, w.writes, len(data), want, copyBufferSize)
		}
	}
	var w countWrites
	if _, err := copyChecked(context.Background(), &w, pieces{bytes.NewReader(data), 8209}, int64(len(data))-1); !errors.Is(err, backends.ErrSizeMismatch) {
		t.Errorf("a stream one byte longer than declared: %v", err)
	}
	if _, err := copyChecked(context.Background(), &w, pieces{bytes.NewReader(data), 8209}, int64(len(data))+1); !errors.Is(err, backends.ErrSizeMismatch) {
		t.Errorf("a stream one byte shorter than declared: %v", err)
	}
	broken := io.MultiReader(bytes.NewReader(data[:1000]), iotestErr{})
	if _, err := copyChecked(context.Background(), &w, pieces{broken, 8209}, int64(len(data))); err == nil || errors.Is(err, backends.ErrSizeMismatch) {
		t.Errorf("a stream that breaks: %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
