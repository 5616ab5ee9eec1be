package backendtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/fs"
)

var ctx = context.Background()

func newFS(t *testing.T, root string) backends.Backend {
	t.Helper()
	b, err := fs.New(root, fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The wrapper with a budget it never reaches must be invisible: it passes
// the whole suite.
func TestFailAfterIsTransparent(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return backendtest.FailAfter(newFS(t, t.TempDir()), math.MaxInt64)
	})
}

func TestFailingReader(t *testing.T) {
	boom := errors.New("boom")
	data, err := io.ReadAll(backendtest.FailingReader(strings.NewReader("0123456789"), 4, boom))
	if string(data) != "0123" || !errors.Is(err, boom) {
		t.Errorf("got %q, %v; want \"0123\", boom", data, err)
	}
	_, err = io.ReadAll(backendtest.FailingReader(strings.NewReader("x"), 0, nil))
	if !errors.Is(err, backendtest.ErrInjected) {
		t.Errorf("nil error: got %v, want ErrInjected", err)
	}
	data, err = io.ReadAll(backendtest.FailingReader(strings.NewReader("short"), 100, boom))
	if string(data) != "short" || err != nil {
		t.Errorf("reader shorter than n: got %q, %v; want all of it and no error", data, err)
	}
}

func TestFailAfterDiesMidPut(t *testing.T) {
	root := t.TempDir()
	b := backendtest.FailAfter(newFS(t, root), 300<<10)
	if _, err := b.Put(ctx, "small", strings.NewReader("fits"), 4, backends.PutOptions{}); err != nil {
		t.Fatalf("Put within the budget: %v", err)
	}
	data := bytes.Repeat([]byte("x"), 1<<20)
	_, err := b.Put(ctx, "big", bytes.NewReader(data), int64(len(data)), backends.PutOptions{})
	if !errors.Is(err, backendtest.ErrInjected) {
		t.Fatalf("Put across the budget: %v, want ErrInjected", err)
	}
	// Dead from now on.
	if _, err := b.Stat(ctx, "small"); !errors.Is(err, backendtest.ErrInjected) {
		t.Errorf("Stat after death: %v, want ErrInjected", err)
	}
	// The real backend underneath kept its promise: nothing half-written.
	direct := newFS(t, root)
	if _, err := direct.Stat(ctx, "big"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("the broken Put left something: %v", err)
	}
	if _, err := direct.Stat(ctx, "small"); err != nil {
		t.Errorf("the earlier object is gone: %v", err)
	}
}

func TestFailAfterDiesMidGet(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("y"), 1<<20)
	if _, err := newFS(t, root).Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), backends.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	b := backendtest.FailAfter(newFS(t, root), 100<<10)
	rc, err := b.Get(ctx, "obj", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if !errors.Is(err, backendtest.ErrInjected) || len(got) != 100<<10 {
		t.Errorf("read %d bytes, %v; want %d bytes then ErrInjected", len(got), err, 100<<10)
	}
	if _, err := b.Get(ctx, "obj", 0, -1); !errors.Is(err, backendtest.ErrInjected) {
		t.Errorf("Get after death: %v, want ErrInjected", err)
	}
}
