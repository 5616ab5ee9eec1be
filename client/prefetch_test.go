package client_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/pgname"
)

// countGets counts store reads of WAL objects.
type countGets struct {
	backends.Backend
	n *atomic.Int64
}

func (c countGets) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.Contains(key, "wal_") {
		c.n.Add(1)
	}
	return c.Backend.Get(ctx, key, off, length)
}

// prefetchSetup archives segments 1..n of timelines 1 and 2 (1 MiB
// segments) and returns a client, the gateway, the segments' contents and
// a pg_wal directory.
func prefetchSetup(t *testing.T, n int) (*client.Client, *gatewaytest.Gateway, map[string][]byte, string, *atomic.Int64) {
	t.Helper()
	gets := &atomic.Int64{}
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		return countGets{Backend: b, n: gets}
	}})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	src := t.TempDir()
	data := map[string][]byte{}
	for tli := 1; tli <= 2; tli++ {
		for i := 1; i <= n; i++ {
			name := pgname.SegmentSize(1<<20).Name(pgname.Timeline(tli), uint64(i))
			data[name] = walLike(t, 1<<20)
			data[name][0] = byte(tli)
			if _, err := c.PushWAL(context.Background(), writeFile(t, src, name, data[name])); err != nil {
				t.Fatal(err)
			}
		}
	}
	walDir := filepath.Join(t.TempDir(), "pg_wal")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return c, g, data, walDir, gets
}

func seg(tli, i int) string { return pgname.SegmentSize(1<<20).Name(pgname.Timeline(tli), uint64(i)) }

func prefetchDirHolds(t *testing.T, walDir string, want ...string) {
	t.Helper()
	entries, _ := os.ReadDir(client.PrefetchDir(walDir))
	var got []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			got = append(got, e.Name())
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("prefetch directory holds %q, want %q", got, want)
	}
}

func fetchServed(t *testing.T, c *client.Client, name, dest string, want []byte, window int) bool {
	t.Helper()
	served, err := c.FetchWALPrefetched(context.Background(), name, dest, window)
	if err != nil {
		t.Fatalf("fetch %s: %v", name, err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: restored bytes differ", name)
	}
	return served
}

// Segments restored ahead serve later requests of their own names only,
// even with the gateway gone; a request of another timeline's segment of
// the same number is not served from them, and does not throw them away.
func TestPrefetchTimelineSwitch(t *testing.T) {
	ctx := context.Background()
	c, g, data, walDir, _ := prefetchSetup(t, 5)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	if fetchServed(t, c, seg(1, 1), dest, data[seg(1, 1)], 3) {
		t.Fatal("served from an empty prefetch directory")
	}
	dir, next := client.PrefetchPlan(seg(1, 1), dest, 3)
	if dir != walDir || !slices.Equal(next, []string{seg(1, 2), seg(1, 3), seg(1, 4)}) {
		t.Fatalf("plan %s %q", dir, next)
	}
	if plan, _ := client.PrefetchPlan(seg(1, 1), filepath.Join(t.TempDir(), "x"), 3); plan != "" {
		t.Fatal("a prefetch planned for a destination outside pg_wal")
	}
	if !c.PrefetchNeeded(walDir, next) {
		t.Fatal("no prefetch needed before any was made")
	}
	// A restore directory removed meanwhile is not brought back.
	gone := filepath.Join(t.TempDir(), "gone", "pg_wal")
	c.Prefetch(ctx, gone, next)
	if _, err := os.Stat(filepath.Dir(gone)); err == nil {
		t.Fatal("a prefetch made the directory of a removed restore again")
	}
	c.Prefetch(ctx, walDir, next)
	prefetchDirHolds(t, walDir, seg(1, 2), seg(1, 2)+".verified", seg(1, 3), seg(1, 3)+".verified", seg(1, 4), seg(1, 4)+".verified")

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	g.Server.Shutdown(sctx)
	if !fetchServed(t, c, seg(1, 2), dest, data[seg(1, 2)], 3) {
		t.Fatal("a prefetched segment was not served")
	}
	// Recovery now asks for timeline 2 (the archive's newest) first.
	_, err := c.FetchWALPrefetched(ctx, seg(2, 3), dest, 3)
	wantKind(t, "fetch of another timeline's segment", err, client.ErrUnavailable)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data[seg(1, 2)]) {
		t.Fatal("a failed fetch changed the destination")
	}
	prefetchDirHolds(t, walDir, seg(1, 3), seg(1, 3)+".verified", seg(1, 4), seg(1, 4)+".verified")
	if !fetchServed(t, c, seg(1, 3), dest, data[seg(1, 3)], 3) {
		t.Fatal("the parent timeline's segment was not served")
	}
}

// Files no later request can use are removed: segments before the one
// asked for, segments beyond the window, files without their record,
// files changed since they were verified, and temporary files of killed
// processes. A file being fetched (locked) is left alone.
func TestPrefetchStale(t *testing.T) {
	ctx := context.Background()
	c, _, data, walDir, _ := prefetchSetup(t, 8)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	c.Prefetch(ctx, walDir, []string{seg(1, 2), seg(1, 3), seg(1, 4), seg(1, 5), seg(1, 8)})
	pd := client.PrefetchDir(walDir)
	// 4: its record lost; 5: written to after it was verified.
	os.Remove(filepath.Join(pd, seg(1, 4)+".verified"))
	if err := os.Chtimes(filepath.Join(pd, seg(1, 5)), time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	oldTemp := writeFile(t, pd, "."+seg(1, 6)+".walgate-1", nil)
	long := time.Now().Add(-time.Hour)
	os.Chtimes(oldTemp, long, long)
	writeFile(t, pd, "."+seg(1, 7)+".walgate-2", nil)
	// 6 is being fetched by another process: no file of it is touched.
	writeFile(t, pd, seg(1, 6), []byte("partial"))
	lf, err := os.OpenFile(filepath.Join(pd, seg(1, 6)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	if !fetchServed(t, c, seg(1, 3), dest, data[seg(1, 3)], 4) {
		t.Fatal("3 not served")
	}
	// 2: before 3; 8: beyond 3+4; 4, 5: unverified.
	prefetchDirHolds(t, walDir, "."+seg(1, 7)+".walgate-2", seg(1, 6))
	lf.Close()
	if fetchServed(t, c, seg(1, 5), dest, data[seg(1, 5)], 4) {
		t.Fatal("a changed file was served")
	}
	prefetchDirHolds(t, walDir, "."+seg(1, 7)+".walgate-2")
}

// A segment is fetched once: not again while another process holds its
// lock, not again once it is there, and the foreground fetch waits for a
// prefetch under way instead of fetching it a second time.
func TestPrefetchOnce(t *testing.T) {
	ctx := context.Background()
	c, _, data, walDir, gets := prefetchSetup(t, 6)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	pd := client.PrefetchDir(walDir)
	if err := os.MkdirAll(pd, 0o700); err != nil {
		t.Fatal(err)
	}
	lf, err := os.OpenFile(filepath.Join(pd, seg(1, 3)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	names := []string{seg(1, 2), seg(1, 3), seg(1, 4)}
	if !c.PrefetchNeeded(walDir, names) {
		t.Fatal("nothing needed in an empty directory")
	}
	before := gets.Load()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Prefetch(ctx, walDir, names) }()
	}
	wg.Wait()
	if n := gets.Load() - before; n != 2 {
		t.Fatalf("three concurrent prefetches of two free segments read %d objects, want 2", n)
	}
	prefetchDirHolds(t, walDir, seg(1, 2), seg(1, 2)+".verified", seg(1, 4), seg(1, 4)+".verified")
	if c.PrefetchNeeded(walDir, names) {
		t.Fatal("a prefetch is needed although every segment is there or being fetched")
	}
	lf.Close()
	c.Prefetch(ctx, walDir, names)
	if c.PrefetchNeeded(walDir, names) {
		t.Fatal("all there, yet a prefetch is needed")
	}
	before = gets.Load()
	c.Prefetch(ctx, walDir, names)
	if n := gets.Load() - before; n != 0 {
		t.Fatalf("a prefetch of segments already there read %d objects", n)
	}

	// The foreground waits for a prefetch of its segment under way.
	lf, err = os.OpenFile(filepath.Join(pd, seg(1, 5)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() {
		served, err := c.FetchWALPrefetched(ctx, seg(1, 5), dest, 4)
		if err != nil {
			t.Error(err)
		}
		done <- served
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the foreground fetch did not wait for the prefetch under way")
	default:
	}
	// The holder ends without leaving 5: the foreground fetches it.
	lf.Close()
	if <-done {
		t.Fatal("served a segment nobody prefetched")
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data[seg(1, 5)]) {
		t.Fatal("5 restored wrong")
	}
}

// Prefetched files are written without fsync and recorded with the boot
// id: after a crash of the machine (another boot id) a record is never
// believed, since the file or the record may be lost or torn. Such files
// are removed, the segment is fetched again, and with the gateway gone the
// fetch fails rather than hand over an old file. Without a boot id to
// read, files and records are synced and serve as before.
func TestPrefetchOtherBoot(t *testing.T) {
	ctx := context.Background()
	c, g, data, walDir, gets := prefetchSetup(t, 6)
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	bootFile := writeFile(t, t.TempDir(), "boot_id", []byte("0f3c1e0a-6b7d-4c52-9d8e-1a2b3c4d5e6f\n"))
	client.SetBootIDPath(c, bootFile)

	c.Prefetch(ctx, walDir, []string{seg(1, 2), seg(1, 3), seg(1, 4)})
	pd := client.PrefetchDir(walDir)
	rec, err := os.ReadFile(filepath.Join(pd, seg(1, 2)+".verified"))
	if err != nil || !bytes.Contains(rec, []byte(`"boot":"0f3c1e0a-6b7d-4c52-9d8e-1a2b3c4d5e6f"`)) {
		t.Fatalf("record %s (%v) does not name the boot", rec, err)
	}
	if !fetchServed(t, c, seg(1, 2), dest, data[seg(1, 2)], 4) {
		t.Fatal("a segment prefetched in this boot was not served")
	}

	// The machine restarted.
	writeFile(t, filepath.Dir(bootFile), "boot_id", []byte("7a9e2d41-03b5-4f6c-8e1d-2c3b4a5f6e7d\n"))
	if !c.PrefetchNeeded(walDir, []string{seg(1, 3), seg(1, 4)}) {
		t.Fatal("segments prefetched before a restart count as there")
	}
	before := gets.Load()
	if fetchServed(t, c, seg(1, 3), dest, data[seg(1, 3)], 4) {
		t.Fatal("a segment prefetched before a restart was served")
	}
	if gets.Load() == before {
		t.Fatal("the segment was not fetched again")
	}
	// 4 was recorded in the other boot too: removed, not kept.
	prefetchDirHolds(t, walDir)

	// No boot id to read: synced, recorded without one, served.
	client.SetBootIDPath(c, filepath.Join(t.TempDir(), "none"))
	c.Prefetch(ctx, walDir, []string{seg(1, 5)})
	rec, err = os.ReadFile(filepath.Join(pd, seg(1, 5)+".verified"))
	if err != nil || bytes.Contains(rec, []byte(`"boot"`)) {
		t.Fatalf("record %s (%v) names a boot that was not read", rec, err)
	}
	c.Prefetch(ctx, walDir, []string{seg(1, 6)})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	g.Server.Shutdown(sctx)
	if !fetchServed(t, c, seg(1, 5), dest, data[seg(1, 5)], 4) {
		t.Fatal("a synced segment was not served without a boot id")
	}
	// Such a record does not serve once a boot id can be read.
	client.SetBootIDPath(c, bootFile)
	_, err = c.FetchWALPrefetched(ctx, seg(1, 6), dest, 4)
	wantKind(t, "fetch of a segment recorded without a boot id, gateway gone", err, client.ErrUnavailable)
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data[seg(1, 5)]) {
		t.Fatal("a failed fetch changed the destination")
	}
	prefetchDirHolds(t, walDir)
}

// A prefetch is started only once at least half of the window (at least
// one segment) is neither there nor being fetched, so that most
// restore_command calls start no process.
func TestPrefetchNeededHalfWindow(t *testing.T) {
	ctx := context.Background()
	c, _, _, walDir, _ := prefetchSetup(t, 6)
	names := []string{seg(1, 2), seg(1, 3), seg(1, 4), seg(1, 5)}
	if !c.PrefetchNeeded(walDir, names) {
		t.Fatal("no prefetch needed before the prefetch directory exists")
	}
	c.Prefetch(ctx, walDir, names[:3])
	if c.PrefetchNeeded(walDir, names) {
		t.Fatal("a prefetch needed with one of four segments missing")
	}
	os.Remove(filepath.Join(client.PrefetchDir(walDir), seg(1, 2)))
	if !c.PrefetchNeeded(walDir, names) {
		t.Fatal("no prefetch needed with two of four segments missing")
	}
	c.Prefetch(ctx, walDir, names)
	if c.PrefetchNeeded(walDir, names) || c.PrefetchNeeded(walDir, names[:1]) {
		t.Fatal("a prefetch needed with every segment there")
	}
	if !c.PrefetchNeeded(walDir, []string{seg(1, 6)}) {
		t.Fatal("no prefetch needed for a window of one missing segment")
	}
}
