package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/walgate/walgate/backends"
)

// ErrInjected is the error the fault-injection wrappers fail with.
var ErrInjected = errors.New("backendtest: injected fault")

// FailingReader returns a reader that yields the first n bytes of r and
// then fails with err (ErrInjected when err is nil), as a client whose
// connection drops mid-upload does. If r ends before n bytes, so does the
// failing reader, without an error.
func FailingReader(r io.Reader, n int64, err error) io.Reader {
	if err == nil {
		err = ErrInjected
	}
	return &failingReader{r: r, left: n, err: err}
}

type failingReader struct {
	r    io.Reader
	left int64
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	return n, err
}

// FailAfter wraps b in a backend that dies after n bytes of object data
// have passed through it, counting what Puts read from their readers and
// what Get readers return, together. The first read that finds the n bytes
// used up fails with ErrInjected (so the Put or Get stream it belongs to
// fails mid-way, and b sees a reader that broke), and from then on every
// call but Name and Close fails with ErrInjected without reaching b.
//
// It is a wrapper around a real backend, not a mock: what b does with a
// broken stream is what the caller under test sees.
func FailAfter(b backends.Backend, n int64) backends.Backend {
	f := &failAfter{b: b}
	f.left.Store(n)
	return f
}

type failAfter struct {
	b    backends.Backend
	left atomic.Int64 // bytes still allowed through
	dead atomic.Bool
}

func (f *failAfter) check(op, key string) error {
	if f.dead.Load() {
		return fmt.Errorf("%s %s %q: %w", f.b.Name(), op, key, ErrInjected)
	}
	return nil
}

// take reserves up to want bytes of the budget; 0 means none is left and
// the backend is now dead.
func (f *failAfter) take(want int) int {
	for {
		left := f.left.Load()
		if left <= 0 {
			f.dead.Store(true)
			return 0
		}
		got := min(left, int64(want))
		if f.left.CompareAndSwap(left, left-got) {
			return int(got)
		}
	}
}

// budgetReader passes bytes through while the budget lasts.
type budgetReader struct {
	f        *failAfter
	r        io.Reader
	injected atomic.Bool
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return br.r.Read(p)
	}
	if br.f.dead.Load() {
		br.injected.Store(true)
		return 0, ErrInjected
	}
	got := br.f.take(len(p))
	if got == 0 {
		br.injected.Store(true)
		return 0, ErrInjected
	}
	n, err := br.r.Read(p[:got])
	if n < got {
		br.f.left.Add(int64(got - n)) // give back what was not used
	}
	return n, err
}

func (f *failAfter) Name() string { return f.b.Name() }

func (f *failAfter) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := f.check("put", key); err != nil {
		return backends.ObjectInfo{}, err
	}
	br := &budgetReader{f: f, r: r}
	info, err := f.b.Put(ctx, key, br, size, opts)
	if err != nil && br.injected.Load() && !errors.Is(err, ErrInjected) {
		err = fmt.Errorf("%w: %w", ErrInjected, err)
	}
	return info, err
}

func (f *failAfter) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := f.check("get", key); err != nil {
		return nil, err
	}
	rc, err := f.b.Get(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	return budgetReadCloser{budgetReader: &budgetReader{f: f, r: rc}, c: rc}, nil
}

type budgetReadCloser struct {
	*budgetReader
	c io.Closer
}

func (b budgetReadCloser) Close() error { return b.c.Close() }

func (f *failAfter) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := f.check("stat", key); err != nil {
		return backends.ObjectInfo{}, err
	}
	return f.b.Stat(ctx, key)
}

func (f *failAfter) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	if err := f.check("list", prefix); err != nil {
		return err
	}
	return f.b.List(ctx, prefix, fn)
}

func (f *failAfter) Delete(ctx context.Context, key string) error {
	if err := f.check("delete", key); err != nil {
		return err
	}
	return f.b.Delete(ctx, key)
}

func (f *failAfter) SetClass(ctx context.Context, key, class string) error {
	if err := f.check("setclass", key); err != nil {
		return err
	}
	return f.b.SetClass(ctx, key, class)
}

func (f *failAfter) Close() error { return f.b.Close() }
