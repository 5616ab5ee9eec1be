package stores_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/stores"
)

// logRecords keeps every record logged through it.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// find returns the records at level or above with message msg.
func (l *logRecords) find(level slog.Level, msg string) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.recs {
		if r.Level >= level && r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

// The replicator's log tells an operator what failed and nothing else: a
// failed copy is logged with its attempt number, and the catalog calls
// that succeed (recording the failure, renewing and releasing claims) log
// no warning or error.
func TestReplicatorLogsOnlyFailures(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{Data: dir, Replication: config.ReplicationConfig{RetryMin: time.Hour, RetryMax: 24 * time.Hour, ClaimLease: 300 * time.Millisecond}}
	for _, n := range []string{"a", "b"} {
		cfg.Backends = append(cfg.Backends, config.BackendConfig{Name: n, Type: "fs", Path: filepath.Join(dir, "store-"+n)})
	}
	cfg.Groups = []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"a", "b"}, Ack: "primary"}}
	cat := openCatalog(t, &cfg)
	logs := &logRecords{}
	faults := map[string]*backendtest.Faulty{}
	set, err := stores.Open(context.Background(), cfg, cat, stores.Options{Log: slog.New(logs), Wrap: func(name string, b backends.Backend) backends.Backend {
		faults[name] = backendtest.NewFaulty(b)
		return faults[name]
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	set.Owner = "gateway-1"
	pushWAL(t, set, cat, "000000010000000000000001", []byte("segment one"))
	pushWAL(t, set, cat, "000000010000000000000002", []byte("segment two"))

	// A pass stopped before it copies releases its claims.
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	stores.Pass(stopped, set, "b")
	// A copy slower than a third of the lease, then failing: the claim is
	// renewed meanwhile and the failure recorded.
	faults["b"].SetLatency(400 * time.Millisecond)
	faults["b"].SetDown(true)
	stores.Pass(context.Background(), set, "b")

	failed := logs.find(slog.LevelWarn, "replication copy failed; will retry")
	if len(failed) != 2 {
		t.Fatalf("%d failed copies logged, want 2", len(failed))
	}
	for _, r := range failed {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "attempt" && a.Value.Int64() != 1 {
				t.Errorf("a first failed attempt logged as attempt %v", a.Value)
			}
			return true
		})
	}
	for _, msg := range []string{"recording a failed copy", "releasing claimed copies; they pass to another gateway when the claims end", "renewing claims on copies; another gateway may make them too"} {
		if rs := logs.find(slog.LevelWarn, msg); len(rs) > 0 {
			t.Errorf("logged %q although the catalog call succeeded", msg)
		}
	}
	if q := queueOf(t, cat, "b"); len(q) != 2 || q[0].Attempts != 1 || q[1].Attempts != 1 {
		t.Errorf("queue after the passes: %+v", q)
	}
}
