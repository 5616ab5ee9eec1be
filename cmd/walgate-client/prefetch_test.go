package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
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

// stallGets serves the first half of every WAL object whose key contains
// name, then blocks until release is closed and fails: a download in
// progress, for as long as the test wants.
type stallGets struct {
	backends.Backend
	name    string
	release chan struct{}
}

func (s stallGets) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := s.Backend.Get(ctx, key, off, length)
	if err != nil || !strings.Contains(key, s.name) {
		return rc, err
	}
	fi, err := s.Backend.Stat(ctx, key)
	if err != nil {
		rc.Close()
		return nil, err
	}
	half := io.MultiReader(io.LimitReader(rc, fi.Size/2), blockUntil(s.release))
	return struct {
		io.Reader
		io.Closer
	}{half, rc}, nil
}

// blockUntil is a reader that waits for its channel to close, then fails.
type blockUntil chan struct{}

func (b blockUntil) Read([]byte) (int, error) {
	<-b
	return 0, io.ErrUnexpectedEOF
}

// A background prefetch killed (SIGKILL) while it writes a segment leaves
// nothing a later wal-fetch hands to PostgreSQL: with the gateway gone,
// wal-fetch of that segment fails (exit 200) instead of restoring the
// partial file.
func TestWALPrefetchKilledMidWrite(t *testing.T) {
	t.Parallel()
	size := pgname.SegmentSize(1 << 20)
	name := size.Name(1, 2)
	release := make(chan struct{})
	var once bool
	unblock := func() {
		if !once {
			once = true
			close(release)
		}
	}
	defer unblock()
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		return stallGets{Backend: b, name: name, release: release}
	}})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch"), "WALGATE_PREFETCH", "1"), keyHex)
	data := randBytes(t, 1<<20)
	expectExit(t, "wal-push", walClient(t, env, "wal-push", writeFile(t, t.TempDir(), name, data)), 0)

	root := t.TempDir()
	walDir := filepath.Join(root, "pg_wal")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(clientBin, "wal-prefetch", walDir, name)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until the segment is half written.
	pd := client.PrefetchDir(walDir)
	deadline := time.Now().Add(30 * time.Second)
	for written := false; !written; {
		entries, _ := os.ReadDir(pd)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && strings.Contains(e.Name(), name) && !strings.HasSuffix(e.Name(), ".lock") && fi.Size() > 0 {
				written = true
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no partial %s in %s within 30s: %v", name, pd, entries)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	unblock()
	for _, n := range []string{name, name + ".verified"} {
		if _, err := os.Stat(filepath.Join(pd, n)); err == nil {
			t.Fatalf("a prefetch killed mid-write left %s", n)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.Server.Shutdown(sctx)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	expectExit(t, "wal-fetch of a segment whose prefetch was killed, gateway gone", walClient(t, env, "wal-fetch", name, dest), 200)
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("wal-fetch restored something although nothing complete was fetched")
	}
}
