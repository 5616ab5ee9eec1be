package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// failCatalogAfterPut wraps a real backend: once armed, a Put of a key
// that arm accepts succeeds and then closes the gateway's catalog, so the
// commit that follows fails as on a full or failed disk.
type failCatalogAfterPut struct {
	backends.Backend
	arm   *atomic.Pointer[func(key string) bool]
	close func()
}

func (f failCatalogAfterPut) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	info, err := f.Backend.Put(ctx, key, r, size, opts)
	if p := f.arm.Load(); err == nil && p != nil && (*p)(key) {
		f.close()
	}
	return info, err
}

// startFailingCommit starts a gateway whose catalog closes after the
// store takes a key for which the returned arm's function says so.
func startFailingCommit(t *testing.T) (*env, *atomic.Pointer[func(string) bool]) {
	var arm atomic.Pointer[func(string) bool]
	var e *env
	e = start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		return failCatalogAfterPut{Backend: b, arm: &arm, close: func() { e.g.Server.Catalog().Close() }}
	}})
	return e, &arm
}

// TestCommitFailureLeavesNothing: when the catalog commit fails after the
// store wrote the object, the push is not acknowledged and no object stays
// under its final name (where a catalog rebuild would adopt it); for a
// backup, its sentinel goes.
func TestCommitFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	t.Run("wal", func(t *testing.T) {
		t.Parallel()
		e, arm := startFailingCommit(t)
		always := func(string) bool { return true }
		arm.Store(&always)
		body := randBytes(t, 64<<10)
		r := e.put(t, seg1, e.pushFetch, body)
		if r.status != 503 || !strings.Contains(r.msg, "catalog commit failed") {
			t.Fatalf("PUT with a failing catalog commit: HTTP %d %s %q, want 503", r.status, r.code, r.msg)
		}
		waitStore(t, e.storeDir())
	})
	t.Run("backup", func(t *testing.T) {
		t.Parallel()
		e, arm := startFailingCommit(t)
		sentinel := func(key string) bool { return strings.HasSuffix(key, "_backup_stop_sentinel.json") }
		arm.Store(&sentinel)
		const name = "base_000000010000000000000002"
		st, msg := beginAndCommit(t, e, cluster, e.push, name, 0, sentinelOf(0))
		if st != http.StatusServiceUnavailable {
			t.Fatalf("commit with a failing catalog: HTTP %d %s, want 503", st, msg)
		}
		for _, f := range storeFiles(t, e.storeDir()) {
			if strings.HasSuffix(f, "_backup_stop_sentinel.json") {
				t.Fatalf("the sentinel of a backup whose commit failed is in the store: %s", f)
			}
		}
	})
}
