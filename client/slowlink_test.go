package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// slowLink is a gateway whose own timeouts are short, reached through a
// TCP proxy that a test slows down or stalls, and a client with
// WALGATE_TIMEOUT=1s that pushes without compression through it. The
// gateway's header timeout, which also bounds the first 8 KiB of a body,
// is 1s as well (the smaller of the two applies); its keep-alive
// connections are closed after twice 5s, since a gateway cannot tell
// when its last response has left a slow link.
func slowLink(t *testing.T) (*gatewaytest.Gateway, *backendtest.Proxy, *client.Client) {
	t.Helper()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{IdleTimeout: time.Second, HeaderTimeout: 5 * time.Second}}})
	p, err := backendtest.NewProxy(strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c := newClient(t, "http://"+p.Addr(), g.Token(cluster, "push", "fetch"),
		map[string]string{"WALGATE_TIMEOUT": "1s", "WALGATE_COMPRESSION": "none"})
	return g, p, c
}

// A link far slower than every timeout on either side, but always
// progressing: a WAL push and fetch and a backup upload and download
// that take several times the client's WALGATE_TIMEOUT and the gateway's
// idle and header timeouts all succeed.
func TestSlowLinkProgressing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, p, c := slowLink(t)
	p.SetRate(256 << 10)
	dir := t.TempDir()
	data := randBytes(t, 1<<20)

	began := time.Now()
	if _, err := c.PushWAL(ctx, writeFile(t, dir, seg1, data)); err != nil {
		t.Fatalf("wal-push over a slow link (%v): %v", time.Since(began), err)
	}
	if d := time.Since(began); d < 3*time.Second {
		t.Fatalf("the push took %v: the link was not slow enough to prove anything", d)
	}
	dest := filepath.Join(dir, "restored")
	if err := c.FetchWAL(ctx, seg1, dest); err != nil {
		t.Fatalf("wal-fetch over a slow link: %v", err)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched WAL differs (%d bytes, %v)", len(got), err)
	}

	u, err := c.BeginBackup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	upload(t, u, "tar_partitions/part_001.tar", data)
	if d := time.Since(began); d < 3*time.Second {
		t.Fatalf("the upload took %v: the link was not slow enough to prove anything", d)
	}
	upload(t, u, "tar_partitions/pg_control.tar", []byte("control"))
	if _, err := u.Commit(ctx, []byte(sentinel)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	d, err := c.Backup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.OpenBackupFile(ctx, bkName, "tar_partitions/part_001.tar", d.Files["tar_partitions/part_001.tar"])
	if err != nil {
		t.Fatalf("backup-fetch over a slow link: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched backup part differs (%d bytes, %v)", len(got), err)
	}
}

// A link that stalls mid-body: the push fails within a few WALGATE_TIMEOUTs
// with a message naming the setting, the gateway stores and catalogs
// nothing, and a push once the link works again succeeds.
func TestSlowLinkStalledPush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g, p, c := slowLink(t)
	p.SetRate(256 << 10)
	path := writeFile(t, t.TempDir(), seg1, randBytes(t, 1<<20))
	time.AfterFunc(700*time.Millisecond, func() { p.SetStalled(true) })
	began := time.Now()
	_, err := c.PushWAL(ctx, path)
	if err == nil {
		t.Fatal("a push over a stalled link succeeded")
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Fatalf("a stalled push failed only after %v", d)
	}
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "WALGATE_TIMEOUT") {
		t.Fatalf("a stalled push: want an unavailable error naming WALGATE_TIMEOUT, got %v", err)
	}
	// The gateway gave up on the stalled body on its own: nothing under
	// the name, in the store or the catalog.
	time.Sleep(2 * time.Second)
	assertStore(t, g)
	p.SetStalled(false)
	p.SetRate(0)
	if err := c.FetchWAL(ctx, seg1, filepath.Join(t.TempDir(), "x")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("fetch of a push that stalled: %v", err)
	}
	if _, err := c.PushWAL(ctx, path); err != nil {
		t.Fatalf("push after the link recovered: %v", err)
	}
}

// A download whose link stalls fails with a message naming
// WALGATE_TIMEOUT and leaves nothing at the destination.
func TestSlowLinkStalledFetch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, p, c := slowLink(t)
	dir := t.TempDir()
	if _, err := c.PushWAL(ctx, writeFile(t, dir, seg1, randBytes(t, 4<<20))); err != nil {
		t.Fatal(err)
	}
	p.SetRate(256 << 10)
	time.AfterFunc(700*time.Millisecond, func() { p.SetStalled(true) })
	out := t.TempDir()
	began := time.Now()
	err := c.FetchWAL(ctx, seg1, filepath.Join(out, seg1))
	if err == nil {
		t.Fatal("a fetch over a stalled link succeeded")
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Fatalf("a stalled fetch failed only after %v", d)
	}
	if !strings.Contains(err.Error(), "WALGATE_TIMEOUT") {
		t.Fatalf("a stalled fetch: want a message naming WALGATE_TIMEOUT, got %v", err)
	}
	assertDirHolds(t, out)
}
