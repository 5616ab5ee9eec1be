package backendtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/backends"
)

// Faulty wraps a real backend with switches a fault test flips while it
// runs: the store down (every call fails at once), slow (every call waits
// first), a burst of failing calls (as a run of 5xx answers), and uploads
// that die after some bytes. Everything else reaches the real backend.
type Faulty struct {
	b backends.Backend

	down      atomic.Bool
	latency   atomic.Int64 // nanoseconds before each call
	failNext  atomic.Int64 // calls still to fail
	putBudget atomic.Int64 // bytes each Put may read before failing; <0: unlimited

	keyMu   sync.Mutex
	keyFail map[string]int // key substring -> calls still to fail

	Puts     atomic.Int64 // Puts that succeeded
	Calls    atomic.Int64 // calls that reached the backend
	inFlight atomic.Int64
	MaxPuts  atomic.Int64 // the most Puts seen running at once
}

// NewFaulty wraps b, healthy.
func NewFaulty(b backends.Backend) *Faulty {
	f := &Faulty{b: b}
	f.putBudget.Store(-1)
	return f
}

// SetDown makes every call fail with ErrInjected (true) or not (false).
func (f *Faulty) SetDown(down bool) { f.down.Store(down) }

// SetLatency delays every call by d.
func (f *Faulty) SetLatency(d time.Duration) { f.latency.Store(int64(d)) }

// FailNext makes the next n calls fail with ErrInjected.
func (f *Faulty) FailNext(n int) { f.failNext.Store(int64(n)) }

// DieMidPut makes every Put fail after reading n bytes of its body (n < 0:
// never).
func (f *Faulty) DieMidPut(n int64) { f.putBudget.Store(n) }

// FailKey makes the next n calls on keys containing substr fail.
func (f *Faulty) FailKey(substr string, n int) {
	f.keyMu.Lock()
	defer f.keyMu.Unlock()
	if f.keyFail == nil {
		f.keyFail = map[string]int{}
	}
	f.keyFail[substr] = n
}

// Unwrap returns the real backend.
func (f *Faulty) Unwrap() backends.Backend { return f.b }

func (f *Faulty) enter(ctx context.Context, op, key string) error {
	if d := time.Duration(f.latency.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.down.Load() {
		return fmt.Errorf("%s %s %q: store down: %w", f.b.Name(), op, key, ErrInjected)
	}
	f.keyMu.Lock()
	for sub, n := range f.keyFail {
		if n > 0 && strings.Contains(key, sub) {
			f.keyFail[sub] = n - 1
			f.keyMu.Unlock()
			return fmt.Errorf("%s %s %q: 500 Internal Server Error: %w", f.b.Name(), op, key, ErrInjected)
		}
	}
	f.keyMu.Unlock()
	for {
		n := f.failNext.Load()
		if n <= 0 {
			break
		}
		if f.failNext.CompareAndSwap(n, n-1) {
			return fmt.Errorf("%s %s %q: 503 Service Unavailable: %w", f.b.Name(), op, key, ErrInjected)
		}
	}
	f.Calls.Add(1)
	return nil
}

func (f *Faulty) Name() string { return f.b.Name() }

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := f.enter(ctx, "put", key); err != nil {
		return backends.ObjectInfo{}, err
	}
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.MaxPuts.Load()
		if n <= m || f.MaxPuts.CompareAndSwap(m, n) {
			break
		}
	}
	if n := f.putBudget.Load(); n >= 0 {
		r = FailingReader(r, n, fmt.Errorf("%s put %q: connection reset mid-upload: %w", f.b.Name(), key, ErrInjected))
	}
	info, err := f.b.Put(ctx, key, r, size, opts)
	if err == nil {
		f.Puts.Add(1)
	}
	return info, err
}

func (f *Faulty) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := f.enter(ctx, "get", key); err != nil {
		return nil, err
	}
	return f.b.Get(ctx, key, off, length)
}

func (f *Faulty) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := f.enter(ctx, "stat", key); err != nil {
		return backends.ObjectInfo{}, err
	}
	return f.b.Stat(ctx, key)
}

func (f *Faulty) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	if err := f.enter(ctx, "list", prefix); err != nil {
		return err
	}
	return f.b.List(ctx, prefix, fn)
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.enter(ctx, "delete", key); err != nil {
		return err
	}
	return f.b.Delete(ctx, key)
}

func (f *Faulty) SetClass(ctx context.Context, key, class string) error {
	if err := f.enter(ctx, "set class", key); err != nil {
		return err
	}
	return f.b.SetClass(ctx, key, class)
}

func (f *Faulty) Close() error { return f.b.Close() }
