package client_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/pgname"
)

// walDirWith makes a pg_wal directory holding each name with distinct
// contents, and archive_status/NAME.ready for each name in ready.
func walDirWith(t *testing.T, names, ready []string) (string, map[string][]byte) {
	t.Helper()
	return walDirSized(t, names, ready, 64<<10)
}

// walDirSized is walDirWith with files of size bytes.
func walDirSized(t *testing.T, names, ready []string, size int) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pg_wal")
	if err := os.MkdirAll(filepath.Join(dir, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{}
	for _, n := range names {
		data[n] = walLike(t, size)
		writeFile(t, dir, n, data[n])
	}
	for _, n := range ready {
		writeFile(t, filepath.Join(dir, "archive_status"), n+".ready", nil)
	}
	return dir, data
}

// pushedRecords lists the records in pg_wal/walgate/pushed, and the
// temporary files of records being written, but not the locks.
func pushedRecords(t *testing.T, walDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(walDir, client.StateDir, "pushed"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); !strings.HasSuffix(n, ".lock") && n != ".ahead" {
			names = append(names, n)
		}
	}
	return names
}

// aheadNow is an AheadStarter that runs the background push-ahead with c
// in the calling goroutine, to its end, as "wal-push-ahead" would.
func aheadNow(t *testing.T, c *client.Client, lookahead int) client.AheadStarter {
	client.SetAheadTiming(t, 50*time.Millisecond, time.Minute)
	return func(walDir, name string) bool {
		c.PushAhead(context.Background(), walDir, name, lookahead, lookahead, 2)
		return true
	}
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

	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 3, aheadNow(t, c, 3)); err != nil {
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
	// That call also starts a push-ahead (none runs, and beyond waits
	// unrecorded), though its own segment needs none.
	started := ""
	res, err := c.PushWALLookahead(ctx, filepath.Join(dir, next1), 3, func(_, name string) bool { started = name; return true })
	if err != nil || res.Status != "pushed ahead" {
		t.Fatalf("push of a recorded segment: %+v, %v", res, err)
	}
	if started != next1 {
		t.Fatalf("the call answered from a record started a push-ahead from %q, want %q", started, next1)
	}
	if slices.Contains(pushedRecords(t, dir), next1) {
		t.Fatal("a used record stays")
	}
	// Asked again (the archiver crashed before marking it done): no
	// record, so it is archived again, which fails with the gateway gone.
	_, err = c.PushWALLookahead(ctx, filepath.Join(dir, next1), 0, nil)
	wantKind(t, "push again without a record", err, client.ErrUnavailable)

	// The same name, another file (new inode): archived normally.
	repl := filepath.Join(dir, ".repl")
	if err := os.WriteFile(repl, data[next2], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repl, filepath.Join(dir, next2)); err != nil {
		t.Fatal(err)
	}
	_, err = c.PushWALLookahead(ctx, filepath.Join(dir, next2), 0, nil)
	wantKind(t, "push of a replaced file", err, client.ErrUnavailable)
	if slices.Contains(pushedRecords(t, dir), next2) {
		t.Fatal("the record of a replaced file stays")
	}

	// The same file, written to since (new modification time).
	if err := os.Chtimes(filepath.Join(dir, gap), time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = c.PushWALLookahead(ctx, filepath.Join(dir, gap), 0, nil)
	wantKind(t, "push of a changed file", err, client.ErrUnavailable)
}

// With thousands of segments waiting (the archiver catching up after the
// gateway was away), neither the archiver's call nor the push-ahead lists
// archive_status: the segments after the current one are looked up by
// name. 1 MiB segments, PostgreSQL's smallest wal_segment_size.
func TestLookaheadLargeBacklog(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), nil)
	const size = pgname.SegmentSize(1 << 20)
	const first = 0xFFE // two segments before a log boundary
	var files, ready []string
	for seg := uint64(first); seg < first+5000; seg++ {
		if seg < first+4 {
			files = append(files, size.Name(1, seg))
		}
		ready = append(ready, size.Name(1, seg))
	}
	dir, data := walDirSized(t, files, ready, 1<<20)
	before := client.StatusListings()
	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, files[0]), 3, aheadNow(t, c, 3)); err != nil {
		t.Fatal(err)
	}
	for _, n := range files {
		wantFetched(t, c, n, data[n])
	}
	if got, want := pushedRecords(t, dir), files[1:]; !slices.Equal(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if n := client.StatusListings() - before; n != 0 {
		t.Fatalf("archive_status listed %d times", n)
	}
	// The archiver hands over the next one: answered from its record.
	res, err := c.PushWALLookahead(ctx, filepath.Join(dir, files[1]), 3, func(string, string) bool { return true })
	if err != nil || res.Status != "pushed ahead" {
		t.Fatalf("push of a recorded segment: %+v, %v", res, err)
	}
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
	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 8, aheadNow(t, c, 8)); err != nil {
		t.Fatal(err)
	}
	if got := pushedRecords(t, dir); !slices.Equal(got, []string{a, b, d}) {
		t.Fatalf("records %q", got)
	}

	// Another gateway (same cluster name) has none of them.
	g2 := gatewaytest.Start(t, gatewaytest.Options{})
	c2 := newClient(t, g2.URL, g2.Token(cluster, "push", "fetch"), nil)
	res, err := c2.PushWALLookahead(ctx, filepath.Join(dir, a), 0, nil)
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
	if _, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 8, aheadNow(t, c, 8)); err != nil {
		t.Fatal(err)
	}
	if got, want := pushedRecords(t, dir), []string{".tmp-" + d + "-2", d}; !slices.Equal(got, want) {
		t.Fatalf("records after cleaning %q, want %q", got, want)
	}
}

// The archiver's call for a segment that a background push-ahead is
// pushing waits for that push and answers from its record, without
// pushing the segment again; a push ahead that holds a segment longer than
// wal-push waits does not hold up the archiver: the call pushes it itself.
func TestLookaheadWaitsForPushAhead(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		f := backendtest.NewFaulty(b)
		f.SetLatency(300 * time.Millisecond) // a push is caught in flight
		return f
	}})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), nil)
	const (
		cur   = "000000010000000000000001"
		next1 = "000000010000000000000002"
		next2 = "000000010000000000000003"
	)
	dir, data := walDirWith(t, []string{cur, next1, next2}, []string{cur, next1, next2})
	client.SetAheadTiming(t, 50*time.Millisecond, time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.PushAhead(ctx, dir, cur, 1, 1, 1) // the window: cur and next1
	}()
	// Wait until the push ahead holds cur.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(dir, client.StateDir, "pushed", cur+".lock"))
		if err == nil {
			unlock, ok := client.LockPushing(dir, cur)
			if !ok {
				break
			}
			unlock()
		}
		if time.Now().After(deadline) {
			t.Fatal("the push ahead never took the segment")
		}
		time.Sleep(time.Millisecond)
	}
	res, err := c.PushWALLookahead(ctx, filepath.Join(dir, cur), 1, nil)
	if err != nil || res.Status != "pushed ahead" {
		t.Fatalf("the archiver's call during a push ahead of its segment: %+v, %v", res, err)
	}
	<-done
	wantFetched(t, c, cur, data[cur])
	wantFetched(t, c, next1, data[next1])
	wantNotArchived(t, c, next2) // beyond the window

	// A push ahead that holds next2 (here: a lock held by the test) is
	// waited for only so long.
	client.SetAheadTiming(t, 50*time.Millisecond, 200*time.Millisecond)
	unlock, ok := client.LockPushing(dir, next2)
	if !ok {
		t.Fatal("cannot take the lock")
	}
	defer unlock()
	t0 := time.Now()
	res, err = c.PushWALLookahead(ctx, filepath.Join(dir, next2), 1, nil)
	if err != nil || res.Status != "stored" {
		t.Fatalf("the archiver's call past the wait: %+v, %v", res, err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Fatalf("the call returned after %s, before the wait was over", d)
	}
	wantFetched(t, c, next2, data[next2])
}
