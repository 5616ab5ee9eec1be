package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The first failing part stops the rest: those running see their context
// cancelled, those not started never start, and the failure is what is
// returned (not a cancellation).
func TestInParallelFirstErrorStopsTheRest(t *testing.T) {
	boom := errors.New("part 3 failed")
	var started, cancelled atomic.Int32
	err := inParallel(context.Background(), 2, 100, func(ctx context.Context, i int) error {
		started.Add(1)
		if i == 3 {
			return boom
		}
		select {
		case <-ctx.Done():
			cancelled.Add(1)
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
			return nil
		}
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the part's failure", err)
	}
	if n := started.Load(); n > 6 {
		t.Errorf("%d parts started after part 3 failed with 2 at once", n)
	}
}

func TestInParallelBoundsAndRunsAll(t *testing.T) {
	var running, most, done atomic.Int32
	err := inParallel(context.Background(), 3, 20, func(ctx context.Context, i int) error {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		done.Add(1)
		return nil
	})
	if err != nil || done.Load() != 20 {
		t.Fatalf("err %v, %d of 20 done", err, done.Load())
	}
	if most.Load() > 3 {
		t.Errorf("%d at once, limit 3", most.Load())
	}
}

// A context ended before any part failed is not reported as a part's
// error: the caller says it was interrupted.
func TestInParallelCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var started atomic.Int32
	err := inParallel(ctx, 2, 10, func(ctx context.Context, i int) error {
		started.Add(1)
		return nil
	})
	if err != nil || started.Load() != 0 {
		t.Errorf("err %v, %d started; want nil and none", err, started.Load())
	}
}
