package stores_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

// The replicator's delays: a failed copy is tried again after RetryMin
// doubling per attempt up to RetryMax, within +-20% (the jitter spreads
// many retries over time).
func TestReplicatorBackoff(t *testing.T) {
	set, _, _ := openFaultySet(t, "primary", "a", "b") // RetryMin 10ms, RetryMax 100ms
	ms := time.Millisecond
	nominal := []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 100 * ms, 100 * ms, 100 * ms}
	for _, c := range []struct {
		name   string
		jitter float64
		factor float64
	}{
		{"nominal", 0.5, 1}, {"shortest", 0, 0.8}, {"longest", 1, 1.2},
	} {
		stores.SetJitter(set, func() float64 { return c.jitter })
		for attempts, d := range nominal {
			want := time.Duration(float64(d) * c.factor)
			if got := stores.Backoff(set, attempts); got < want-time.Microsecond || got > want+time.Microsecond {
				t.Errorf("%s: delay after %d attempts = %v, want %v", c.name, attempts, got, want)
			}
		}
	}
	stores.SetJitter(set, func() float64 { return 0.5 })
	if got := stores.Backoff(set, 1000); got != 100*ms {
		t.Errorf("delay after 1000 attempts = %v, want RetryMax", got)
	}
}

// queueOf is backend's queue, failing the test on a catalog error.
func queueOf(t *testing.T, cat *index.Catalog, backend string) []index.Copy {
	t.Helper()
	q, err := cat.Pending(backend, 0)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// A copy that fails is recorded with its attempt and the backoff's time
// for the next one, and the worker's next pass comes when that entry
// becomes claimable again (ClaimCopies' earliest time), not at the idle
// poll.
func TestReplicatorWaitsForTheRetry(t *testing.T) {
	set, cat, faults := openFaultySetWith(t, config.ReplicationConfig{RetryMin: 2 * time.Second, RetryMax: 16 * time.Second}, "primary", "a", "b")
	set.Owner = "gateway-1"
	stores.SetJitter(set, func() float64 { return 0.5 })
	ctx := context.Background()
	pushWAL(t, set, cat, "000000010000000000000001", []byte("segment one"))
	faults["b"].SetDown(true)

	before := time.Now()
	if got := stores.Pass(ctx, set, "b"); got != 2*time.Second {
		t.Errorf("after a failed first attempt the next pass is in %v, want RetryMin (2s)", got)
	}
	after := time.Now()
	q := queueOf(t, cat, "b")
	if len(q) != 1 || q[0].Attempts != 1 || q[0].ClaimedBy != "" {
		t.Fatalf("queue after a failed copy: %+v", q)
	}
	if next := q[0].NextAttempt; next.Before(before.Add(2*time.Second)) || next.After(after.Add(2*time.Second)) {
		t.Errorf("next attempt at %v, want 2s after the failure (%v to %v)", next, before, after)
	}

	// Nothing is claimable until then: the next pass waits for it.
	got := stores.Pass(ctx, set, "b")
	if want := time.Until(q[0].NextAttempt); got > want+10*time.Millisecond || got < want-time.Second {
		t.Errorf("with the only entry due in %v the next pass is in %v", want, got)
	}
	if q := queueOf(t, cat, "b"); len(q) != 1 || q[0].Attempts != 1 {
		t.Errorf("a pass before the entry was due tried it: %+v", q)
	}
}

// An object without a good copy on any backend is looked at again only
// after a day (lostRetry), not at the backoff's pace.
func TestReplicatorLostCopyRetriesDaily(t *testing.T) {
	set, cat, faults := openFaultySetWith(t, config.ReplicationConfig{RetryMin: 2 * time.Second, RetryMax: 16 * time.Second}, "primary", "a", "b")
	set.Owner = "gateway-1"
	var lost atomic.Int32
	set.OnLost = func(index.Copy) { lost.Add(1) }
	obj := pushWAL(t, set, cat, "000000010000000000000001", []byte("segment one"))
	if err := faults["a"].Unwrap().Delete(context.Background(), obj.Key); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if got := stores.Pass(context.Background(), set, "b"); got != 30*time.Second {
		t.Errorf("after a lost copy the next pass is in %v, want the idle poll (30s)", got)
	}
	q := queueOf(t, cat, "b")
	if len(q) != 1 || q[0].Attempts != 1 {
		t.Fatalf("queue after a lost copy: %+v", q)
	}
	if wait := q[0].NextAttempt.Sub(before); wait < 24*time.Hour || wait > 24*time.Hour+time.Minute {
		t.Errorf("a lost copy is tried again in %v, want a day", wait)
	}
	if lost.Load() != 1 {
		t.Errorf("the lost object was reported %d times, want once", lost.Load())
	}
}

// A pass that claimed a full batch asks for the next one at once (a long
// queue drains without waiting between batches), as does a pass that made
// a copy (a sentinel it held back may be claimable now); a pass whose
// copies all failed waits for the retry.
func TestReplicatorPassesBackToBack(t *testing.T) {
	// An hour's backoff: the first failures are not due again while the
	// batch is failing (a thousand catalog writes take a minute on a
	// loaded machine).
	set, cat, faults := openFaultySetWith(t, config.ReplicationConfig{RetryMin: time.Hour, RetryMax: 24 * time.Hour}, "primary", "a", "b")
	set.Owner = "gateway-1"
	stores.SetJitter(set, func() float64 { return 0.5 })
	ctx := context.Background()
	const batch = 1000 // the replicator's batch
	var copies []index.Copy
	for i := range batch + 1 {
		body := fmt.Appendf(nil, "segment %d", i)
		cp := stores.WALCopy(testCluster, walObject(fmt.Sprintf("00000001%016X", i+1), body))
		cp.Backend = "b"
		copies = append(copies, cp)
	}
	if err := cat.Enqueue(copies); err != nil {
		t.Fatal(err)
	}
	faults["b"].SetDown(true)
	if got := stores.Pass(ctx, set, "b"); got != 0 {
		t.Errorf("after a full batch of failed copies the next pass is in %v, want at once", got)
	}
	if got := stores.Pass(ctx, set, "b"); got != 30*time.Second {
		t.Errorf("after a partial batch of failed copies the next pass is in %v, want the idle poll (30s, before the retries)", got)
	}
	if q := queueOf(t, cat, "b"); len(q) != batch+1 || q[batch].Attempts != 1 || q[0].Attempts != 1 {
		t.Fatalf("queue after two passes: %d entries", len(q))
	}

	faults["b"].SetDown(false)
	pushWAL(t, set, cat, "000000020000000000000001", []byte("segment on timeline 2"))
	if got := stores.Pass(ctx, set, "b"); got != 0 {
		t.Errorf("after a pass that made a copy the next pass is in %v, want at once", got)
	}
	if q := queueOf(t, cat, "b"); len(q) != batch+1 {
		t.Errorf("the copy was not made: %d entries queued", len(q))
	}
}

// openCatalog applies cfg's defaults, checks it and opens its catalog
// (closed at the test's end).
func openCatalog(t *testing.T, cfg *config.Config) *index.Catalog {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cat, err := index.Open(config.CatalogPath(cfg.Data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// countingCatalog is a catalog that counts the replicator's claims.
type countingCatalog struct {
	index.Interface
	claims atomic.Int64
}

func (c *countingCatalog) ClaimCopies(backend, owner string, limit int, lease time.Duration) ([]index.Copy, time.Time, error) {
	c.claims.Add(1)
	return c.Interface.ClaimCopies(backend, owner, limit, lease)
}

// A worker whose queue is empty sleeps until it is woken or the idle poll
// comes: it does not claim again and again.
func TestReplicatorIdleWorkerSleeps(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Data: dir}
	for _, n := range []string{"a", "b"} {
		cfg.Backends = append(cfg.Backends, config.BackendConfig{Name: n, Type: "fs", Path: filepath.Join(dir, "store-"+n)})
	}
	cc := &countingCatalog{Interface: openCatalog(t, &cfg)}
	set, err := stores.Open(context.Background(), cfg, cc, stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	set.Start()
	time.Sleep(time.Second)
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	// One pass per backend at the start; under load a worker may not have
	// run yet, never more.
	if n := cc.claims.Load(); n > 2 {
		t.Errorf("idle workers claimed %d times in a second, want one pass per backend", n)
	}
}

// A copy that takes longer than the claim lease keeps its claim: the
// replicator renews it while the copy runs, so another gateway sharing
// the catalog does not make the same copy at the same time.
func TestReplicatorRenewsItsClaims(t *testing.T) {
	const lease = 3 * time.Second // renewed every second
	set, cat, faults := openFaultySetWith(t, config.ReplicationConfig{RetryMin: time.Minute, RetryMax: time.Hour, ClaimLease: lease}, "primary", "a", "b")
	pushWAL(t, set, cat, "000000010000000000000001", []byte("segment one"))
	faults["b"].SetLatency(time.Hour) // the copy to b runs until the stop
	set.Owner = "gateway-1"
	set.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if q := queueOf(t, cat, "b"); len(q) == 1 && q[0].ClaimedBy == "gateway-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replicator did not claim the copy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Well past the lease, the claim still stands.
	for end := time.Now().Add(2 * lease); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		got, _, err := cat.ClaimCopies("b", "gateway-2", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			t.Fatalf("another gateway claimed %s while the first was copying it", got[0].Key)
		}
	}
}
