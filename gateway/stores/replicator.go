package stores

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
)

// replicator copies queued objects to the backends outside a push's ack
// set: one worker per backend claims a batch of that backend's queue (in
// the catalog) and copies it, a few at a time. Gateways sharing a catalog
// claim disjoint entries (index.Interface.ClaimCopies), each for
// Replication.ClaimLease, renewed every third of it while the batch runs;
// a dead gateway's entries are taken over when its claims end. The claim
// keeps the order of backups: a backup's sentinel is claimed only once
// every earlier entry of its backup and every earlier sentinel has left
// the queue, so a replica shows a backup only when all its parts are
// there, in the primary's order, whichever gateways copied them. A failed
// copy is retried with exponential backoff; the queue survives restarts.
type replicator struct {
	s     *Set
	wakes map[string]chan struct{}
	stop  context.CancelFunc
	wg    sync.WaitGroup
	// jitter draws the backoff's jitter in [0, 1): rand.Float64 (tests
	// fix it to check the delays).
	jitter func() float64
}

// replicationBatch is how many queued copies one pass reads.
const replicationBatch = 1000

// idlePoll is how often an idle worker looks at its queue without being
// woken (copies queued by another process, e.g. an index rebuild).
const idlePoll = 30 * time.Second

func newReplicator(s *Set) *replicator {
	r := &replicator{s: s, wakes: map[string]chan struct{}{}, jitter: rand.Float64}
	for name := range s.stores {
		r.wakes[name] = make(chan struct{}, 1)
	}
	return r
}

func (r *replicator) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	for name, st := range r.s.stores {
		wake := r.wakes[name]
		r.wg.Go(func() { r.run(ctx, st, wake) })
	}
}

// close stops the workers; copies in flight fail and stay queued.
func (r *replicator) close() {
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
}

// wake tells backend's worker that its queue grew.
func (r *replicator) wake(backend string) {
	if ch, ok := r.wakes[backend]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (r *replicator) run(ctx context.Context, st *store, wake chan struct{}) {
	for {
		wait := r.pass(ctx, st)
		r.s.log.Debug("replication pass", "backend", st.name, "next", wait)
		if ctx.Err() != nil {
			return
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// pass claims the due entries of st's queue, copies them and returns how
// long to wait before the next pass. Entries it claimed but did not finish
// (the gateway is stopping) are released for another gateway at once.
func (r *replicator) pass(ctx context.Context, st *store) time.Duration {
	s := r.s
	lease := s.cfg.Replication.ClaimLease
	claimed, due, err := s.catalog.ClaimCopies(st.name, s.Owner, replicationBatch, lease)
	if err != nil {
		s.log.Error("claiming replication copies", "backend", st.name, "err", err)
		return idlePoll
	}
	next := idlePoll
	if !due.IsZero() {
		next = min(next, max(time.Until(due), minPass))
	}
	var (
		mu       sync.Mutex
		left     = map[uint64]index.Copy{} // claimed, neither done nor retried
		progress bool                      // a copy was done: a sentinel may be claimable now
		wg       sync.WaitGroup
		sem      = make(chan struct{}, s.cfg.Replication.Concurrency)
	)
	for _, cp := range claimed {
		left[cp.Seq] = cp
	}
	stopRenew := r.renew(st, &mu, left, lease)
	for _, cp := range claimed {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := r.copy(ctx, st, cp)
			if err == nil {
				mu.Lock()
				delete(left, cp.Seq)
				progress = true
				mu.Unlock()
				return
			}
			if ctx.Err() != nil {
				return
			}
			delay := r.backoff(cp.Attempts)
			if errors.Is(err, errNoGoodCopy) {
				// Reported once; looked at again rarely, in case a good
				// copy was put back by hand.
				s.reportLost(cp)
				delay = lostRetry
			}
			st.fail(err)
			s.log.Warn("replication copy failed; will retry", "backend", st.name, "key", cp.Key, "attempt", cp.Attempts+1, "retry_in", delay.Round(time.Millisecond), "err", err)
			if rerr := s.catalog.RetryCopy(cp, time.Now().Add(delay), err.Error()); rerr != nil {
				s.log.Error("recording a failed copy", "backend", st.name, "key", cp.Key, "err", rerr)
			}
			mu.Lock()
			delete(left, cp.Seq)
			next = min(next, delay)
			mu.Unlock()
		})
	}
	wg.Wait()
	stopRenew()
	if len(left) > 0 {
		if err := s.catalog.ReleaseCopies(s.Owner, slices.Collect(maps.Values(left))); err != nil {
			s.log.Warn("releasing claimed copies; they pass to another gateway when the claims end", "backend", st.name, "count", len(left), "err", err)
		}
	}
	if len(claimed) == replicationBatch || progress {
		return 0
	}
	return next
}

// minPass is the shortest wait for an entry that becomes claimable (the
// clocks of gateway and catalog database may differ a little).
const minPass = 10 * time.Millisecond

// renew extends the claims on the entries in left (under mu) every third
// of lease until the returned stop is called: a large backup part may take
// longer than one lease to copy.
func (r *replicator) renew(st *store, mu *sync.Mutex, left map[uint64]index.Copy, lease time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			mu.Lock()
			held := slices.Collect(maps.Values(left))
			mu.Unlock()
			if err := r.s.catalog.RenewCopies(r.s.Owner, held, lease); err != nil {
				r.s.log.Warn("renewing claims on copies; another gateway may make them too", "backend", st.name, "err", err)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// backoff is the delay before attempt n+1: RetryMin doubling up to
// RetryMax, with +-20% jitter so that many copies do not retry at once.
func (r *replicator) backoff(attempts int) time.Duration {
	cfg := r.s.cfg.Replication
	d := cfg.RetryMin
	for i := 0; i < attempts && d < cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, cfg.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*r.jitter()))
}

// copy makes st hold cp's object, then records it in the catalog.
func (r *replicator) copy(ctx context.Context, st *store, cp index.Copy) error {
	s := r.s
	if !cp.Repair {
		info, err := st.b.Stat(ctx, cp.Key)
		switch {
		case err == nil && info.Size == cp.Size && info.Metadata["sha256"] == cp.SHA256:
			// Already there (a copy done before a crash, or by a stand-in).
			return r.done(st, cp)
		case err != nil && !errors.Is(err, backends.ErrNotFound):
			return err
		}
	}
	md := maps.Clone(cp.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	md["sha256"] = cp.SHA256
	opts := backends.PutOptions{Metadata: md}
	g, _ := s.GroupFor(cp.Cluster)
	var errs []error
	transient := false // a source failed for a reason other than a bad or missing copy
	for _, src := range s.readOrder(g, nil) {
		if src == st || s.isBad(src.name, cp.Key) {
			continue
		}
		err := copyObject(ctx, src, st, cp.Key, cp.Size, cp.SHA256, opts)
		if err == nil {
			return r.done(st, cp)
		}
		var se *sourceError
		if !errors.As(err, &se) {
			return err // the destination failed
		}
		if se.bad {
			s.markBad(cp, src.name)
		}
		if !errors.Is(err, backends.ErrNotFound) {
			errs = append(errs, err)
		}
		transient = transient || !se.bad && !errors.Is(err, backends.ErrNotFound)
	}
	if !transient {
		return fmt.Errorf("%w: %s", errNoGoodCopy, cp.Key)
	}
	return errors.Join(errs...)
}

func (r *replicator) done(st *store, cp index.Copy) error {
	if err := r.s.catalog.CompleteCopy(cp); err != nil {
		return fmt.Errorf("copied, but recording it failed: %w", err)
	}
	r.s.clearBad(st.name, cp.Key)
	st.ok()
	r.s.log.Debug("replicated", "backend", st.name, "key", cp.Key, "bytes", cp.Size)
	return nil
}

// QueueMissingCopies queues, for every cataloged object, a copy to each
// backend of its cluster's group that the catalog does not list as a
// holder. After `walgate index rebuild --from NAME` the catalog knows only
// NAME; the replicator then checks each other backend (an object already
// there with the right SHA-256 costs one Stat) and fills in what is
// missing. It returns how many copies were queued.
func QueueMissingCopies(cat index.Interface, cfg config.Config) (int, error) {
	cfg.Defaults()
	clusters, err := cat.Clusters()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, cl := range clusters {
		gc := cfg.GroupOf(cl.Name)
		if gc == nil || len(gc.Backends) == 0 {
			continue
		}
		members := gc.Backends
		var copies []index.Copy
		if err := cat.ListWAL(cl.Name, "", func(o index.WALObject) error {
			for _, b := range members {
				if !slices.Contains(o.Holders(), b) {
					cp := WALCopy(cl.Name, o)
					cp.Backend = b
					copies = append(copies, cp)
				}
			}
			return nil
		}); err != nil {
			return total, err
		}
		backups, err := cat.Backups(cl.Name, index.BackupCommitted)
		if err != nil {
			return total, err
		}
		g := &Group{}
		for _, b := range members {
			g.stores = append(g.stores, &store{name: b})
		}
		for _, b := range backups {
			copies = append(copies, BackupCopies(g, b, SentinelCopy(cl.Name, b))...)
		}
		if err := cat.Enqueue(copies); err != nil {
			return total, err
		}
		total += len(copies)
	}
	return total, nil
}
