package stores

import (
	"context"
	"time"
)

// SetJitter fixes the replicator's backoff jitter (0 gives the shortest
// delay, 0.5 the nominal one, 1 the longest).
func SetJitter(s *Set, f func() float64) { s.repl.jitter = f }

// Backoff is the replicator's delay before attempt attempts+1.
func Backoff(s *Set, attempts int) time.Duration { return s.repl.backoff(attempts) }

// Pass runs one replication pass for backend (as the backend's worker
// does) and returns the wait it chose before the next.
func Pass(ctx context.Context, s *Set, backend string) time.Duration {
	return s.repl.pass(ctx, s.stores[backend])
}
