package stores

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/walgate/walgate/index"
)

// ErrEveryCopyDamaged: every backend that could serve an object holds a
// copy found damaged (or none at all). Serving one of them again would only
// fail the client's check; the client is told so instead, and stops.
var ErrEveryCopyDamaged = errors.New("every stored copy fails its size or SHA-256 check")

// errNoGoodCopy: a repair found no backend with a good copy to copy from.
var errNoGoodCopy = errors.New("no backend holds a good copy")

// lostObjects remembers, per backend and key, objects whose repair found no
// good copy anywhere: each is logged and counted once, and its repair
// leaves the queue instead of being retried forever.
type lostObjects struct {
	mu sync.Mutex
	m  map[string]index.Copy // backend + "\x00" + key
}

// reportLost records that cp's repair found no good copy to copy from.
// It reports true the first time for this backend and key.
func (s *Set) reportLost(cp index.Copy) bool {
	s.lost.mu.Lock()
	defer s.lost.mu.Unlock()
	if s.lost.m == nil {
		s.lost.m = map[string]index.Copy{}
	}
	k := cp.Backend + "\x00" + cp.Key
	if _, ok := s.lost.m[k]; ok {
		return false
	}
	s.lost.m[k] = cp
	s.log.Error("no good copy of an object is left on any backend: it cannot be repaired; restore it from elsewhere or take a new backup",
		slog.String("backend", cp.Backend), slog.String("cluster", cp.Cluster), slog.String("kind", cp.Kind),
		slog.String("name", cp.Name), slog.String("file", cp.File), slog.String("key", cp.Key))
	if s.OnLost != nil {
		s.OnLost(cp)
	}
	return true
}

// LostObjects lists the objects found without a good copy anywhere since
// the gateway started, as (backend, copy) pairs.
func (s *Set) LostObjects() []index.Copy {
	s.lost.mu.Lock()
	defer s.lost.mu.Unlock()
	out := make([]index.Copy, 0, len(s.lost.m))
	for _, cp := range s.lost.m {
		out = append(out, cp)
	}
	return out
}

// queueRepair marks backend's copy of obj damaged or missing and queues
// one repair from a good copy: a copy already marked is not queued again,
// and the catalog keeps one repair entry per object and backend.
func (s *Set) queueRepair(obj index.Copy, backend, why string) {
	s.bad.mu.Lock()
	if s.bad.m == nil {
		s.bad.m = map[string]bool{}
	}
	k := backend + "\x00" + obj.Key
	already := s.bad.m[k]
	s.bad.m[k] = true
	s.bad.mu.Unlock()
	if already {
		return
	}
	s.log.Error(why+"; reads use other backends and a repair is queued", "backend", backend, "key", obj.Key)
	obj.Backend = backend
	obj.Repair = true
	if _, err := s.catalog.EnqueueRepair(obj); err != nil {
		s.log.Error("queueing the repair", "backend", backend, "key", obj.Key, "err", err)
	}
	s.repl.wake(backend)
}

// lostRetry is how long a copy without a good source waits before it is
// tried again: rarely, not forever in a tight loop.
const lostRetry = 24 * time.Hour

// recheck reads st's copy of obj, marked damaged or missing, to its end and
// clears the mark if it now matches the catalog (an operator put a good
// copy back). It runs only when no other copy is left to serve.
func (s *Set) recheck(ctx context.Context, st *store, obj index.Copy) bool {
	rc, err := st.b.Get(ctx, obj.Key, 0, -1)
	if err != nil {
		return false
	}
	defer rc.Close()
	vr := &verifyingReader{r: rc, size: obj.Size, want: obj.SHA256, h: sha256.New(), src: st.name, withhold: true}
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return false
	}
	s.clearBad(st.name, obj.Key)
	s.log.Info("a copy found damaged or missing before now matches the catalog; serving it again", "backend", st.name, "key", obj.Key)
	return true
}

// IsBad reports whether backend's copy of key was found damaged or missing
// and not yet repaired.
func (s *Set) IsBad(backend, key string) bool { return s.isBad(backend, key) }

// BadKeys lists the keys under prefix of which some backend's copy was
// found damaged or missing and not yet repaired, each once, in no order.
func (s *Set) BadKeys(prefix string) []string {
	s.bad.mu.Lock()
	defer s.bad.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for k := range s.bad.m {
		_, key, _ := strings.Cut(k, "\x00")
		if strings.HasPrefix(key, prefix) && !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	return out
}
