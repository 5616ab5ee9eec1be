package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/pgname"
)

// wal-fetch into pg_wal starts a detached background process that restores
// the next segments; it returns without waiting for it, and a later
// wal-fetch is served from what it left, also with the gateway gone.
func TestWALFetchPrefetches(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch"), "WALGATE_PREFETCH", "2"), keyHex)
	src := t.TempDir()
	size := pgname.SegmentSize(1 << 20)
	data := map[string][]byte{}
	for i := 1; i <= 4; i++ {
		n := size.Name(1, uint64(i))
		data[n] = randBytes(t, 1<<20)
		expectExit(t, "wal-push", walClient(t, env, "wal-push", writeFile(t, src, n, data[n])), 0)
	}
	// Not t.TempDir: a background process wal-fetch started may still be
	// ending (within client.PrefetchLifetime) when the test is over.
	root, err := os.MkdirTemp("", "walgate-prefetch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	walDir := filepath.Join(root, "pg_wal")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	expectExit(t, "wal-fetch", walClient(t, env, "wal-fetch", size.Name(1, 1), dest), 0)
	pd := client.PrefetchDir(walDir)
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range []string{size.Name(1, 2), size.Name(1, 3)} {
		for {
			if _, err := os.Stat(filepath.Join(pd, n+".verified")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				entries, _ := os.ReadDir(pd)
				t.Fatalf("%s not prefetched within 30s; %s holds %v", n, pd, entries)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := os.Stat(filepath.Join(pd, size.Name(1, 4))); err == nil {
		t.Fatal("prefetched beyond WALGATE_PREFETCH")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.Server.Shutdown(sctx)
	for _, n := range []string{size.Name(1, 2), size.Name(1, 3)} {
		expectExit(t, "wal-fetch of a prefetched segment with the gateway gone", walClient(t, env, "wal-fetch", n, dest), 0)
		if !bytes.Equal(readAll(t, dest), data[n]) {
			t.Fatalf("%s restored wrong", n)
		}
	}
	expectExit(t, "wal-fetch of a segment not prefetched with the gateway gone", walClient(t, env, "wal-fetch", size.Name(1, 4), dest), 200)
}
