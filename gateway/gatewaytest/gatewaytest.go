// Package gatewaytest runs a real walgate gateway in-process on a loopback
// port for tests: a real catalog, a real fs backend, a real HTTP listener.
// It is test support, never imported by the binaries.
package gatewaytest

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

// Gateway is a running test gateway.
type Gateway struct {
	URL    string // http(s)://127.0.0.1:port
	Data   string // data directory (catalog.db, store/)
	Server *gateway.Server
	t      testing.TB
}

// Options tune Start.
type Options struct {
	// Config is the base config; Data and Listen are filled in.
	Config gateway.Config
	// Log receives the gateway's log; nil discards it.
	Log io.Writer
	// Wrap, when set, wraps each backend (fault injection).
	Wrap stores.Wrap
}

// Start runs a gateway until the test ends.
func Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	cfg := opts.Config
	if cfg.Data == "" {
		cfg.Data = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	w := opts.Log
	if w == nil {
		w = io.Discard
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := gateway.Open(cfg, log, opts.Wrap)
	if err != nil {
		t.Fatalf("gateway.Open: %v", err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go srv.Serve(ln)
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	g := &Gateway{URL: scheme + "://" + ln.Addr().(*net.TCPAddr).String(), Data: cfg.Data, Server: srv, t: t}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return g
}

// Token creates a token for cluster with the given scopes
// ("push", "fetch", "admin").
func (g *Gateway) Token(cluster string, scopes ...string) string {
	g.t.Helper()
	a, err := admin.Dial(g.Data)
	if err != nil {
		g.t.Fatalf("admin socket: %v", err)
	}
	sc := make([]index.Scope, len(scopes))
	for i, s := range scopes {
		sc[i] = index.Scope(s)
	}
	tok, _, err := a.AddToken(cluster, sc, "test")
	if err != nil {
		g.t.Fatalf("token add: %v", err)
	}
	return tok
}

// FleetToken creates a fleet-wide admin token (every cluster's pages,
// the fleet page, the audit log).
func (g *Gateway) FleetToken() string {
	g.t.Helper()
	a, err := admin.Dial(g.Data)
	if err != nil {
		g.t.Fatalf("admin socket: %v", err)
	}
	tok, _, err := a.IssueToken(admin.TokenSpec{AllClusters: true, Scopes: []index.Scope{index.ScopeAdmin}, Comment: "test"})
	if err != nil {
		g.t.Fatalf("token add --all-clusters: %v", err)
	}
	return tok
}

// ListFiles lists every file (not directory) under dir, temp files
// included, relative to dir and in lexical order; a missing dir is empty.
// Tests use it to check what a store holds, e.g. ListFiles(t,
// filepath.Join(g.Data, "store")).
func ListFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// OpenStores opens the catalog at catalogPath and the stores cfg lists
// (its defaults applied, validated; each wrapped by wrap when set),
// without a gateway and without starting the replicator. Both are closed, and the catalog checked, when the test
// ends.
func OpenStores(t testing.TB, cfg gateway.Config, catalogPath string, wrap stores.Wrap) (*stores.Set, *index.Catalog) {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cat, err := index.Open(catalogPath, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	set, err := stores.Open(context.Background(), cfg, cat, stores.Options{Wrap: wrap})
	if err != nil {
		cat.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		set.Close()
		if err := cat.Check(); err != nil {
			t.Errorf("catalog check: %v", err)
		}
		cat.Close()
	})
	return set, cat
}

// WaitReplicated waits, at most for within, until no backend of set has
// copies queued.
func WaitReplicated(t testing.TB, set *stores.Set, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := set.BackendsStatus()
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, b := range st {
			pending += b.PendingObjects
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replication did not finish: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
