package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// The restore path never ends early in silence: a file that may be archived
// but cannot be restored stops recovery with FATAL (wal-fetch exits 200),
// only the true end of the archive ends it.

const rowsPerPhase = 5000

// archivedRows is a source cluster archiving through walgate, with one base
// backup and then a few phases of rows, each closed by a WAL switch and
// archived.
type archivedRows struct {
	*backupEnv
	segs []string // the segment each phase completed, in order
	want pgtest.Checksum
}

func newArchivedRows(t *testing.T, g *gatewaytest.Gateway, phases int) *archivedRows {
	t.Helper()
	e := newBackupEnv(t, g, true)
	a := &archivedRows{backupEnv: e}
	if err := e.src.Exec(e.ctx, `CREATE TABLE rows (id int PRIMARY KEY, label text)`); err != nil {
		t.Fatal(err)
	}
	e.mustClient(t, "backup-push", e.src.DataDir)
	for range phases {
		a.addPhase(t, e.src)
	}
	a.want = rowsChecksum(t, e.ctx, e.src)
	return a
}

// addPhase writes rowsPerPhase more rows on c, switches WAL and waits
// until the segment is archived.
func (a *archivedRows) addPhase(t *testing.T, c *pgtest.Cluster) string {
	t.Helper()
	if err := c.Exec(a.ctx, `INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(coalesce((SELECT max(id) FROM rows), 0) + 1, coalesce((SELECT max(id) FROM rows), 0) + $1) g`, rowsPerPhase); err != nil {
		t.Fatal(err)
	}
	seg, err := c.SwitchWAL(a.ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitArchived(a.ctx, seg)
	if err != nil {
		t.Fatal(err)
	}
	if st.FailedCount != 0 {
		t.Fatalf("archiving failed %d times; log:\n%s", st.FailedCount, c.LogTail(30))
	}
	a.segs = append(a.segs, seg)
	return seg
}

func rowsChecksum(t *testing.T, ctx context.Context, c *pgtest.Cluster) pgtest.Checksum {
	t.Helper()
	m, err := c.TableChecksums(ctx, []string{"rows"})
	if err != nil {
		t.Fatal(err)
	}
	return m["rows"]
}

// fetchLatest restores the latest backup with backup-fetch and makes a
// cluster of it that recovers through wal-fetch; it is not started.
func (a *archivedRows) fetchLatest(t *testing.T, rec pgtest.Recovery, conf ...string) *pgtest.Cluster {
	t.Helper()
	dir := filepath.Join(pgtest.SharedDir(t), "restore")
	a.mustClient(t, "backup-fetch", dir, "LATEST")
	rec.RestoreCommand = a.bin + " wal-fetch %f %p"
	return pgtest.NewFromBackup(t, dir, rec, pgtest.Options{Env: a.env, NoStart: true, Conf: conf})
}

// start starts c; a server that stops during recovery before it accepts
// connections is not an error here (the caller looks at how it ended).
func (a *archivedRows) start(t *testing.T, c *pgtest.Cluster) {
	t.Helper()
	if err := c.Start(a.ctx); err != nil && c.Running() {
		t.Fatal(err)
	}
}

// wantStopped checks that c's recovery stopped with FATAL because file
// could not be restored, and that nothing was promoted.
func wantStopped(t *testing.T, ctx context.Context, c *pgtest.Cluster, file string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// A promotion fails the test at once; a server still recovering is
	// given until wctx ends to stop.
	go func() {
		for wctx.Err() == nil {
			qctx, qcancel := context.WithTimeout(wctx, 2*time.Second)
			s, err := c.QueryString(qctx, "SELECT pg_is_in_recovery()::text")
			qcancel()
			if err == nil && s == "false" {
				cancel()
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	log, err := c.WaitStopped(wctx)
	if err != nil {
		t.Fatalf("recovery did not stop with FATAL: the server promoted or kept running: %v", err)
	}
	for _, want := range []string{
		"FATAL:  could not restore file \"" + file + "\" from archive: child process exited with exit code 200",
		"walgate-client wal-fetch " + file,
	} {
		if !strings.Contains(log, want) {
			t.Fatalf("the server log lacks %q:\n%s", want, log)
		}
	}
	for _, promoted := range []string{"archive recovery complete", "selected new timeline ID", "database system is ready to accept connections"} {
		if strings.Contains(log, promoted) {
			t.Fatalf("the server promoted (%q):\n%s", promoted, log)
		}
	}
	// PostgreSQL removes recovery.signal when archive recovery ends.
	if _, err := os.Stat(filepath.Join(c.DataDir, "recovery.signal")); err != nil {
		t.Fatalf("recovery.signal is gone: archive recovery ended (%v)", err)
	}
	t.Logf("recovery stopped as it should:\n%s", lastLines(log, 4))
}

// wantPromoted waits until c recovered and promoted, and checks its rows.
func wantPromoted(t *testing.T, ctx context.Context, c *pgtest.Cluster, want pgtest.Checksum) {
	t.Helper()
	outcome, err := c.WaitRecoveryEnd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != pgtest.RecoveryPromoted {
		t.Fatalf("recovery ended %s", outcome)
	}
	if got := rowsChecksum(t, ctx, c); got != want {
		t.Fatalf("restored rows %s, want %s", got, want)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// storeFile finds the one stored object under root whose base name starts
// with prefix.
func storeFile(t *testing.T, root, prefix string) string {
	t.Helper()
	var found []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasPrefix(info.Name(), prefix) {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("objects %s* under %s: %v, want one", prefix, root, found)
	}
	return found[0]
}

// A segment in the middle of the archive is damaged in its only store: the
// restore stops with FATAL naming it, and nothing promotes; the drill
// fails. With the damage undone, the true end of the archive still ends
// recovery: the server promotes with every row.
func TestRecoveryDamagedSegment(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	a := newArchivedRows(t, g, 4)
	bad := a.segs[1]
	obj := storeFile(t, filepath.Join(g.Data, "store", "db", "wal_005"), bad)
	flipByte(t, obj, fileSize(t, obj)/2)

	c := a.fetchLatest(t, pgtest.Recovery{})
	a.start(t, c)
	wantStopped(t, a.ctx, c, bad)

	out, code := a.client(t, nil, "drill", "LATEST", "--timeout", "2m")
	if code != 7 {
		t.Fatalf("drill over the damaged archive: exit %d, want 7\n%s", code, out)
	}
	if !strings.Contains(out, bad) {
		t.Errorf("the drill's report does not name %s:\n%s", bad, out)
	}

	flipByte(t, obj, fileSize(t, obj)/2) // undo
	c = a.fetchLatest(t, pgtest.Recovery{})
	a.start(t, c)
	wantPromoted(t, a.ctx, c, a.want)
	if !c.LogContains("archive recovery complete") {
		t.Fatalf("no promotion at the end of the archive:\n%s", c.LogTail(20))
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// stopOnRead stops the gateway the first time a key containing the armed
// trigger is read, failing that read: the gateway goes away in the middle
// of a recovery.
type stopOnRead struct {
	backends.Backend
	trigger *atomic.Pointer[string]
	stop    func()
	once    *sync.Once
}

func (s stopOnRead) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if tr := s.trigger.Load(); tr != nil && strings.Contains(key, *tr) {
		fired := false
		s.once.Do(func() { fired = true; go s.stop() })
		if fired {
			return nil, errors.New("the gateway is shutting down")
		}
	}
	return s.Backend.Get(ctx, key, off, length)
}

// The gateway stops in the middle of a recovery: recovery stops with FATAL
// instead of promoting short of the archive; started again once the
// gateway is back, it recovers every row.
func TestRecoveryGatewayStopped(t *testing.T) {
	requirePostgres(t)
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{Data: t.TempDir(), Listen: fmt.Sprintf("127.0.0.1:%d", port)}
	var (
		trigger atomic.Pointer[string]
		once    sync.Once
		srv     atomic.Pointer[gateway.Server]
	)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Load().Shutdown(ctx)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg, Wrap: func(name string, b backends.Backend) backends.Backend {
		return stopOnRead{Backend: b, trigger: &trigger, stop: stop, once: &once}
	}})
	srv.Store(g.Server)
	a := newArchivedRows(t, g, 4)
	// The segment whose read stops the gateway must be read by
	// restore_command itself, not ahead of it: no prefetch here.
	a.env = append(a.env, "WALGATE_PREFETCH=0")
	c := a.fetchLatest(t, pgtest.Recovery{})
	stopAt := a.segs[2]
	trigger.Store(&stopAt)
	a.start(t, c)
	wantStopped(t, a.ctx, c, stopAt)

	gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	a.start(t, c)
	wantPromoted(t, a.ctx, c, a.want)
}

// Two stores, the primary's copies of a segment and of a backup partition
// damaged: backup-fetch and recovery read the replica's copies on the first
// run and recover every row; the gateway repairs the primary's copies.
func TestRecoveryThroughReplica(t *testing.T) {
	requirePostgres(t)
	root := t.TempDir()
	cfg := gateway.Config{
		Backends: []config.BackendConfig{
			{Name: "a", Type: "fs", Path: filepath.Join(root, "a")},
			{Name: "b", Type: "fs", Path: filepath.Join(root, "b")},
		},
		Groups:      []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"a", "b"}, Ack: "all"}},
		Replication: config.ReplicationConfig{RetryMin: 100 * time.Millisecond, RetryMax: time.Second},
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	a := newArchivedRows(t, g, 4)
	seg := storeFile(t, filepath.Join(root, "a", "db", "wal_005"), a.segs[1])
	part := storeFile(t, filepath.Join(root, "a", "db", "basebackups_005"), "part_001.tar")
	for _, p := range []string{seg, part} {
		flipByte(t, p, fileSize(t, p)/2)
	}

	c := a.fetchLatest(t, pgtest.Recovery{}) // fails the test unless backup-fetch exits 0 at once
	a.start(t, c)
	wantPromoted(t, a.ctx, c, a.want)

	// The damaged copies are replaced from the replica's.
	waitReplicated(t, g)
	for _, p := range []string{seg, part} {
		rel, _ := filepath.Rel(filepath.Join(root, "a"), p)
		good, err := os.ReadFile(filepath.Join(root, "b", rel))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, good) {
			t.Errorf("%s was not repaired from the replica (%v)", rel, err)
		}
	}
}

// A standby (standby.signal) whose gateway is down for a while keeps
// running, and catches up once the gateway is back.
func TestStandbyGatewayDown(t *testing.T) {
	requirePostgres(t)
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{Data: t.TempDir(), Listen: fmt.Sprintf("127.0.0.1:%d", port)}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	a := newArchivedRows(t, g, 2)
	c := a.fetchLatest(t, pgtest.Recovery{}, "wal_retrieve_retry_interval = '500ms'")
	if err := c.SetStandby(); err != nil {
		t.Fatal(err)
	}
	a.start(t, c)
	waitRows(t, a.ctx, c, a.want)

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	g.Server.Shutdown(sctx)
	cancel()
	// New rows on the primary; its archiver retries until the gateway is back.
	if err := a.src.Exec(a.ctx, `INSERT INTO rows SELECT g, md5(g::text) FROM generate_series(100001, 100000 + $1) g`, rowsPerPhase); err != nil {
		t.Fatal(err)
	}
	seg, err := a.src.SwitchWAL(a.ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := rowsChecksum(t, a.ctx, a.src)
	down := time.Now()
	for time.Since(down) < 8*time.Second {
		if !c.Running() {
			t.Fatalf("the standby stopped while the gateway was down:\n%s", c.LogTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !c.LogContains("walgate-client wal-fetch", "(exit 1)") {
		t.Fatalf("the standby's restore_command did not fail softly while the gateway was down:\n%s", c.LogTail(20))
	}

	gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	if _, err := a.src.WaitArchived(a.ctx, seg); err != nil {
		t.Fatal(err)
	}
	waitRows(t, a.ctx, c, want)
	if !c.Running() {
		t.Fatal("the standby stopped")
	}
}

// waitRows waits until the table rows on c (a standby, read-only) sums to
// want.
func waitRows(t *testing.T, ctx context.Context, c *pgtest.Cluster, want pgtest.Checksum) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var got pgtest.Checksum
	for time.Now().Before(deadline) {
		if m, err := c.TableChecksums(ctx, []string{"rows"}); err == nil {
			if got = m["rows"]; got == want {
				return
			}
		}
		if !c.Running() {
			t.Fatalf("the standby stopped:\n%s", c.LogTail(20))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the standby did not catch up: rows %s, want %s\n%s", got, want, c.LogTail(20))
}

// After a point-in-time recovery promoted onto timeline 2, the archived
// 00000002.history is damaged: a restore to the newest timeline stops with
// FATAL instead of following timeline 1 to its end.
func TestRecoveryDamagedHistory(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	a := newArchivedRows(t, g, 1)
	lsn, err := a.src.QueryString(a.ctx, "SELECT pg_current_wal_lsn()::text")
	if err != nil {
		t.Fatal(err)
	}
	a.addPhase(t, a.src)

	// Timeline 2: recovered to lsn, promoted, archiving through walgate.
	pitr := a.fetchLatest(t, pgtest.Recovery{TargetLSN: lsn, TargetAction: "promote"},
		"archive_mode = on", "archive_command = "+pgtest.QuoteConf(a.bin+" wal-push %p"))
	a.start(t, pitr)
	outcome, err := pitr.WaitRecoveryEnd(a.ctx)
	if err != nil || outcome != pgtest.RecoveryPromoted {
		t.Fatalf("point-in-time recovery: %v %v", outcome, err)
	}
	seg := a.addPhase(t, pitr)
	if !strings.HasPrefix(seg, "00000002") {
		t.Fatalf("timeline 2 archived %s", seg)
	}
	wantTL2 := rowsChecksum(t, a.ctx, pitr)
	if err := pitr.Stop(a.ctx); err != nil {
		t.Fatal(err)
	}

	hist := storeFile(t, filepath.Join(g.Data, "store", "db", "wal_005"), "00000002.history")
	flipByte(t, hist, fileSize(t, hist)/2)
	c := a.fetchLatest(t, pgtest.Recovery{TargetTimeline: "latest"})
	a.start(t, c)
	wantStopped(t, a.ctx, c, "00000002.history")

	flipByte(t, hist, fileSize(t, hist)/2) // undo: timeline 2 is restored
	c = a.fetchLatest(t, pgtest.Recovery{TargetTimeline: "latest"})
	a.start(t, c)
	wantPromoted(t, a.ctx, c, wantTL2)
}

// A segment never reached the archive (archive_command "succeeded" without
// storing it): recovery ends at the gap and promotes, as PostgreSQL must,
// but the drill sees that it ended short of the archive and fails.
func TestDrillEndedEarly(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	a := newArchivedRows(t, g, 1)
	a.setArchiveCommand(t, "/bin/true")
	lost := a.addPhase(t, a.src)
	a.setArchiveCommand(t, a.bin+" wal-push %p")
	a.addPhase(t, a.src)

	out, code := a.client(t, nil, "drill", "LATEST", "--timeout", "2m")
	if code != 7 || !strings.Contains(out, "recovery ended early") {
		t.Fatalf("drill over an archive with %s lost: exit %d, want 7 and \"recovery ended early\"\n%s", lost, code, out)
	}
	t.Logf("the drill failed as it should:\n%s", lastLines(out, 3))
}
