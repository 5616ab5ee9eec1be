package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// pushAheadPID is the process id written in pg_wal/walgate/pushed/.ahead
// while a background push-ahead holds that lock, and 0 when none does.
func pushAheadPID(walDir string) int {
	path := filepath.Join(walDir, client.StateDir, "pushed", ".ahead")
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil {
		return 0 // free: none runs
	}
	b, _ := os.ReadFile(path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// PostgreSQL's own archiver drains a backlog of ready segments through
// archive_command = 'walgate-client wal-push %p' while the background
// push-ahead that the calls start is killed (SIGKILL) twice in the middle
// of its pushes. No archive_command call fails, PostgreSQL marks every
// segment done, and each one is archived byte for byte as it was in
// pg_wal.
func TestArchiverDrainPushAheadKilled(t *testing.T) {
	requirePostgres(t)
	var store *backendtest.Faulty
	g := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		// Slow enough to kill a push-ahead in the middle of the drain.
		store = backendtest.NewFaulty(b)
		store.SetLatency(150 * time.Millisecond)
		return store
	}})
	e := newBackupEnv(t, g, false)
	ctx := e.ctx
	// A backlog: archive_command unset, so segments stay ready.
	if err := e.src.Exec(ctx, "ALTER SYSTEM SET archive_command = ''"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, `CREATE TABLE rows (id int, label text)`); err != nil {
		t.Fatal(err)
	}
	walDir := filepath.Join(e.src.DataDir, "pg_wal")
	const segments = 24
	want := map[string][]byte{}
	var names []string
	for i := range segments {
		if err := e.src.Exec(ctx, `INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(1, 20000) g`); err != nil {
			t.Fatal(err)
		}
		seg, err := e.src.SwitchWAL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && seg == names[len(names)-1] {
			t.Fatalf("no WAL written between switches")
		}
		names = append(names, seg)
	}
	// Ready segments are kept in pg_wal until archived: the reference.
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(walDir, n))
		if err != nil {
			t.Fatal(err)
		}
		want[n] = b
	}
	before, err := e.src.ArchiverStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, "ALTER SYSTEM SET archive_command = "+pgtest.QuoteConf(e.bin+" wal-push %p")); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Reload(ctx); err != nil {
		t.Fatal(err)
	}

	status := filepath.Join(walDir, "archive_status")
	records := func() int {
		entries, _ := os.ReadDir(filepath.Join(walDir, client.StateDir, "pushed"))
		n := 0
		for _, en := range entries {
			if len(en.Name()) == 24 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for kills := 0; kills < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d push-ahead kills in 2 minutes; server log:\n%s", kills, e.src.LogTail(30))
		}
		pid := pushAheadPID(walDir)
		if pid == 0 || records() == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the push-ahead %d: %v", pid, err)
		}
		kills++
		t.Logf("killed the push-ahead %d with %d records standing", pid, records())
		for pushAheadPID(walDir) == pid && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, n := range names {
		for {
			if _, err := os.Stat(filepath.Join(status, n+".done")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not archived within 2 minutes; server log:\n%s", n, e.src.LogTail(30))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	after, err := e.src.ArchiverStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.FailedCount - before.FailedCount; d != 0 {
		t.Errorf("%d archive_command calls failed; server log:\n%s", d, e.src.LogTail(30))
	}
	store.SetLatency(0)
	for _, n := range names {
		dest := filepath.Join(t.TempDir(), "seg")
		e.mustClient(t, "wal-fetch", n, dest)
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[n]) {
			t.Fatalf("%s: archived bytes differ from pg_wal's", n)
		}
	}
}
