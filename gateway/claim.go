package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// walClaimLease is how long a WAL name's claim lasts without renewal: a
// gateway that dies mid-push holds the name at most this long. A push
// renews its claim every third of it while the object is written.
const walClaimLease = 30 * time.Second

// newInstanceID names this gateway process in claims and leases: host,
// process and a random part, unique across restarts.
func newInstanceID() string {
	host, _ := os.Hostname()
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// claimWAL waits until this gateway holds the claim on a WAL name (then
// the name has no record and release must be called) or the name has a
// record (returned; nothing is held). Another gateway storing the name
// holds its claim until it commits or fails; past twice the lease it
// answers 503 so the client retries.
func (s *Server) claimWAL(cluster, name string) (release func(), prev *index.WALObject, err error) {
	unavailable := func(err error) error {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable; nothing was acknowledged, retry later", Err: err}
	}
	deadline := time.Now().Add(2 * walClaimLease)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		held, err := s.catalog.ClaimWAL(cluster, name, s.instance, walClaimLease)
		if err != nil {
			return nil, nil, unavailable(err)
		}
		// The record is read after the claim: a holder that committed and
		// released just before is seen here.
		obj, rerr := s.catalog.WAL(cluster, name)
		switch {
		case rerr == nil:
			if held {
				_ = s.catalog.ReleaseWAL(cluster, name, s.instance)
			}
			return nil, &obj, nil
		case !errors.Is(rerr, index.ErrNotFound):
			if held {
				_ = s.catalog.ReleaseWAL(cluster, name, s.instance)
			}
			return nil, nil, unavailable(rerr)
		case held:
			return func() {
				if err := s.catalog.ReleaseWAL(cluster, name, s.instance); err != nil {
					s.log.Warn("releasing a WAL claim (it expires by itself)", "cluster", cluster, "name", name, "err", err)
				}
			}, nil, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, apiErr(protocol.CodeUnavailable, "another gateway is storing %s of cluster %s and has not finished; nothing was acknowledged, retry later", name, cluster)
		}
		time.Sleep(wait)
	}
}

// keepWALClaim renews the claim every third of its lease until stop is
// called; when a renewal fails or finds the claim taken, it cancels the
// write (cancel), and stop then reports the claim lost: the name may be
// another gateway's by now, so the push must not touch its key again.
func (s *Server) keepWALClaim(cluster, name string, cancel context.CancelFunc) (stop func() (lost bool)) {
	done := make(chan struct{})
	var lost atomic.Bool
	go func() {
		tick := time.NewTicker(walClaimLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				held, err := s.catalog.ClaimWAL(cluster, name, s.instance, walClaimLease)
				if err != nil || !held {
					s.log.Warn("lost the claim on a WAL name mid-write; abandoning the push", "cluster", cluster, "name", name, "err", err)
					lost.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	return func() bool {
		close(done)
		return lost.Load()
	}
}

// walWatcher is a catalog that announces WAL records other gateways add
// (the PostgreSQL catalog; bbolt has no other writers).
type walWatcher interface {
	WatchWAL(ctx context.Context, added func(cluster, name string), resync func())
}

// followPeers keeps the per-cluster WAL summaries current with pushes made
// through the other gateways of a fleet, until ctx ends.
func (s *Server) followPeers(ctx context.Context) {
	w, ok := s.catalog.(walWatcher)
	if !ok {
		return
	}
	go w.WatchWAL(ctx, func(cluster, name string) {
		obj, err := s.catalog.WAL(cluster, name)
		if err != nil {
			s.log.Warn("reading a WAL record another gateway added", "cluster", cluster, "name", name, "err", err)
			return
		}
		s.fleet.Add(cluster, obj)
	}, func() {
		clusters, err := s.catalog.Clusters()
		if err != nil {
			s.log.Warn("re-reading the WAL summaries on (re)connecting to the catalog", "err", err)
			return
		}
		for _, cl := range clusters {
			if err := s.fleet.Rescan(cl.Name); err != nil {
				s.log.Warn("re-reading a WAL summary", "cluster", cl.Name, "err", err)
			}
		}
	})
}
