package client_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// walDirWith makes a pg_wal directory holding each name with distinct
// contents, and archive_status/NAME.ready for each name in ready.
func walDirWith(t *testing.T, names, ready []string) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pg_wal")
	if err := os.MkdirAll(filepath.Join(dir, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{}
	for _, n := range names {
		data[n] = walLike(t, 64<<10)
		writeFile(t, dir, n, data[n])
	}
	for _, n := range ready {
		writeFile(t, filepath.Join(dir, "archive_status"), n+".ready", nil)
	}
	return dir, data
}

// pushedRecords lists the records in pg_wal/walgate/pushed.
func pushedRecords(t *testing.T, walDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(walDir, client.StateDir, "pushed"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func wantFetched(t *testing.T, c *client.Client, name string, want []byte) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	if err := c.FetchWAL(context.Background(), name, dest); err != nil {
		t.Fatalf("fetch %s: %v", name, err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: fetched bytes differ from the pushed file", name)
	}
}

func wantNotArchived(t *testing.T, c *client.Client, name string) {
	t.Helper()
	err := c.FetchWAL(context.Background(), name, filepath.Join(t.TempDir(), "x"))
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("%s: fetch gave %v, want not archived", name, err)
	}
}

// One push archives its own file and the next ready full segments of its
// timeline, no more than asked, and nothing else: not history files,
// partial segments, other timelines, older segments or files not ready.
// archive_status stays as PostgreSQL left it. A later push of a recorded
// segment returns at once (even with the gateway gone) only while the
// file is the one archived.
func TestLookahead(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	const (
		old     = "000000010000000000000001"
		cur     = "000000010000000000000003"
		next1   = "000000010000000000000004"
		next2   = "000000010000000000000005"
		gap     = "000000010000000100000000" // next log: after next2
		beyond  = "000000010000000100000001"
		notRdy  = "000000010000000000000006"
		partial = "000000010000000000000007.partial"
		hist    = "00000002.history"
		tl2     = "000000020000000000000007"
	)
	names := []string{old, cur, next1, next2, gap, beyond, notRdy, partial, hist, tl2}
	ready := []string{old, cur, next1, next2, gap, beyond, partial, hist, tl2}
	dir, data := walDirWith(t, names, ready)
	writeFile(t, dir, hist, []byte("1\t0/7000000\tno recovery target specified\n"))
	data[hist] = []byte("1\t0/7000000\tno recovery target specified\n")

	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 3); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{cur, next1, next2, gap} {
		wantFetched(t, c, n, data[n])
	}
	for _, n := range []string{old, beyond, notRdy, partial, hist, tl2} {
		wantNotArchived(t, c, n)
	}
	if got, want := pushedRecords(t, dir), []string{next1, next2, gap}; !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	for _, n := range ready {
		if _, err := os.Stat(filepath.Join(dir, "archive_status", n+".ready")); err != nil {
			t.Fatalf("archive_status changed: %v", err)
		}
	}

	// With the gateway gone, only a push that a record proves returns 0.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	g.Server.Shutdown(sctx)
	res, err := c.PushWALLookahead(ctx, filepath.Join(dir, next1), 3)
	if err != nil || res.Status != "pushed ahead" {
		t.Fatalf("push of a recorded segment: %+v, %v", res, err)
	}
	if slices.Contains(pushedRecords(t, dir), next1) {
		t.Fatal("a used record stays")
	}
	// Asked again (the archiver crashed before marking it done): no
	// record, so it is archived again, which fails with the gateway gone.
	_, err = c.PushWALLookahead(ctx, filepath.Join(dir, next1), 0)
	wantKind(t, "push again without a record", err, client.ErrUnavailable)

	// The same name, another file (new inode): archived normally.
	repl := filepath.Join(dir, ".repl")
	if err := os.WriteFile(repl, data[next2], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repl, filepath.Join(dir, next2)); err != nil {
		t.Fatal(err)
	}
	_, err = c.PushWALLookahead(ctx, filepath.Join(dir, next2), 0)
	wantKind(t, "push of a replaced file", err, client.ErrUnavailable)
	if slices.Contains(pushedRecords(t, dir), next2) {
		t.Fatal("the record of a replaced file stays")
	}

	// The same file, written to since (new modification time).
	if err := os.Chtimes(filepath.Join(dir, gap), time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = c.PushWALLookahead(ctx, filepath.Join(dir, gap), 0)
	wantKind(t, "push of a changed file", err, client.ErrUnavailable)
}

// A record proves nothing for another cluster or gateway, and records are
// cleaned once PostgreSQL marked their file done or removed it, as are
// temporary files a killed push left.
func TestLookaheadStaleRecords(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), nil)
	const (
		cur = "000000010000000000000001"
		a   = "000000010000000000000002"
		b   = "000000010000000000000003"
		d   = "000000010000000000000004"
	)
	dir, _ := walDirWith(t, []string{cur, a, b, d}, []string{cur, a, b, d})
	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 8); err != nil {
		t.Fatal(err)
	}
	if got := pushedRecords(t, dir); !slices.Equal(got, []string{a, b, d}) {
		t.Fatalf("records %q", got)
	}

	// Another gateway (same cluster name) has none of them.
	g2 := gatewaytest.Start(t, gatewaytest.Options{})
	c2 := newClient(t, g2.URL, g2.Token(cluster, "push", "fetch"), nil)
	res, err := c2.PushWALLookahead(ctx, filepath.Join(dir, a), 0)
	if err != nil || res.Status != "stored" {
		t.Fatalf("push to another gateway: %+v, %v", res, err)
	}

	// a: marked done by PostgreSQL; b: removed; stale and fresh temp files.
	status := filepath.Join(dir, "archive_status")
	if err := os.Rename(filepath.Join(status, a+".ready"), filepath.Join(status, a+".done")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(status, b+".ready"))
	os.Remove(filepath.Join(dir, b))
	state := filepath.Join(dir, client.StateDir, "pushed")
	stale := writeFile(t, state, ".tmp-"+d+"-1", []byte("{"))
	long := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, long, long); err != nil {
		t.Fatal(err)
	}
	writeFile(t, state, ".tmp-"+d+"-2", []byte("{"))
	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 8); err != nil {
		t.Fatal(err)
	}
	if got, want := pushedRecords(t, dir), []string{".tmp-" + d + "-2", d}; !slices.Equal(got, want) {
		t.Fatalf("records after cleaning %q, want %q", got, want)
	}
}
