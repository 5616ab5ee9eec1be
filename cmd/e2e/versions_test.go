package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/layout"
)

// The version matrix: one compact scenario on every supported major, the
// same steps on each. 17 runs with 64 MiB WAL segments; 17 and 18 with
// summarize_wal on. A major whose server build is not installed fails the
// test (pgtest says how to install it).
func TestVersionMatrix(t *testing.T) {
	requirePostgres(t)
	for _, tc := range []struct {
		major, segMB int
	}{{13, 0}, {14, 0}, {15, 0}, {16, 0}, {17, 64}, {18, 0}} {
		name := fmt.Sprintf("pg%d", tc.major)
		if tc.segMB != 0 {
			name += fmt.Sprintf("-wal%dMB", tc.segMB)
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			runVersionScenario(t, tc.major, tc.segMB)
			t.Logf("PostgreSQL %d scenario: %.1fs", tc.major, time.Since(start).Seconds())
		})
	}
}

// runVersionScenario: archive through the gateway, a full backup, load,
// a delta, more load, backup-fetch LATEST --recovery to a target time,
// recovery, every table's checksum equal to the source's at that time, a
// drill that passes, and wal-verify exit 0.
func runVersionScenario(t *testing.T, major, segMB int) {
	if _, err := pgtest.ServerFor(major); err != nil {
		t.Fatal(err)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{})
	conf := []string{"checkpoint_timeout = '30min'", "max_wal_size = '1GB'"}
	if major >= 17 {
		conf = append(conf, "summarize_wal = on")
	}
	e := newBackupEnvWith(t, g, true, pgtest.Options{Major: major, WALSegmentSizeMB: segMB, DataChecksums: true, Conf: conf})
	ctx, src := e.ctx, e.src
	// The npm builds' programs (pg_ctl in the drill, --pg-bin) find their
	// libraries here.
	srv := src.Server()
	var libEnv []string
	if srv.LibDir != "" {
		libEnv = []string{"LD_LIBRARY_PATH=" + srv.LibDir}
	}
	e.env = append(e.env, libEnv...)
	exec := func(sql string) {
		t.Helper()
		if err := src.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if v, err := src.QueryString(ctx, `SELECT current_setting('server_version_num')`); err != nil || !strings.HasPrefix(v, fmt.Sprint(major)) {
		t.Fatalf("server_version_num %q (%v), want PostgreSQL %d", v, err, major)
	}
	if _, err := src.Pgbench(ctx, "-i", "-s", "1", "-q"); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE EXTENSION amcheck`)
	exec(`CREATE TABLE marks (id int PRIMARY KEY, phase text, at timestamptz)`)
	exec(`VACUUM (FREEZE, ANALYZE)`)
	full := e.pushKind(t, "full", "backup-push", "--full")
	if full.PgVersion/10000 != major {
		t.Fatalf("backup %s records PgVersion %d, want PostgreSQL %d", full.Name, full.PgVersion, major)
	}
	sentinel := e.sentinel(t, full.Name)
	wantSeg := int64(16 << 20)
	if segMB != 0 {
		wantSeg = int64(segMB) << 20
	}
	if sentinel.WALSegmentSize != wantSeg || sentinel.PgVersion != full.PgVersion {
		t.Fatalf("sentinel of %s: WalSegmentSize %d, PgVersion %d; want %d, %d", full.Name, sentinel.WALSegmentSize, sentinel.PgVersion, wantSeg, full.PgVersion)
	}

	if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-t", "300", "-n"); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE created AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g`)
	// A database made by copying files: its pages keep the template's old
	// LSNs.
	if major >= 15 {
		exec(`CREATE DATABASE filecopy STRATEGY FILE_COPY`)
	} else {
		exec(`CREATE DATABASE filecopy`)
	}
	out := e.mustClient(t, "backup-push", "--delta", src.DataDir)
	t.Logf("backup-push --delta: %s", strings.TrimSpace(out))
	wantFrom := "found by page scan;"
	if major >= 17 {
		wantFrom = "found by WAL summaries;"
	}
	if !strings.Contains(out, wantFrom) {
		t.Fatalf("delta on PostgreSQL %d: want %q in:\n%s", major, wantFrom, out)
	}
	list := e.list(t)
	delta := list[len(list)-1]
	if delta.Kind != "delta" || delta.DeltaFrom != full.Name {
		t.Fatalf("delta %s has parent %q, want %s", delta.Name, delta.DeltaFrom, full.Name)
	}
	// The new database is copied whole; the rest must be small.
	dbSize, err := src.QueryString(ctx, `SELECT pg_database_size('filecopy')`)
	if err != nil {
		t.Fatal(err)
	}
	var newDB int64
	fmt.Sscan(dbSize, &newDB)
	if newDB == 0 || (delta.UncompressedSize-newDB)*3 > full.UncompressedSize {
		t.Fatalf("delta holds %d bytes (%d of them the new database), the full backup %d: not much of a delta", delta.UncompressedSize, newDB, full.UncompressedSize)
	}

	exec(`INSERT INTO marks SELECT g, 'before', clock_timestamp() FROM generate_series(1, 200) g`)
	if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-t", "200", "-n"); err != nil {
		t.Fatal(err)
	}
	atMark := checksums(t, ctx, src)
	mark, err := src.QueryString(ctx, `SELECT clock_timestamp()::text`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	exec(`INSERT INTO marks SELECT g, 'after', clock_timestamp() FROM generate_series(201, 400) g`)
	if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-t", "200", "-n"); err != nil {
		t.Fatal(err)
	}
	e.archiveAll(t)

	// backup-fetch LATEST --recovery: the client's recovery settings (in
	// postgresql.auto.conf) win over pgtest's.
	r := e.restore(t, "LATEST", pgtest.Recovery{}, "--recovery", "--target-time", mark)
	if r.Major() != major {
		t.Fatalf("restored cluster runs PostgreSQL %d, want %d", r.Major(), major)
	}
	sameTables(t, "LATEST --recovery to the mark", atMark, checksums(t, ctx, r))
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Onto the server programs of another major: refused before anything
	// is written, by backup-fetch and by the drill.
	wrongMajor := 15
	if major == 15 {
		wrongMajor = 17
	}
	wrong, err := pgtest.ServerFor(wrongMajor)
	if err != nil {
		t.Fatal(err)
	}
	var wrongEnv []string
	if wrong.LibDir != "" {
		wrongEnv = []string{"LD_LIBRARY_PATH=" + wrong.LibDir}
	}
	dir := filepath.Join(t.TempDir(), "wrong-major")
	out, code := e.client(t, wrongEnv, "backup-fetch", dir, "LATEST", "--pg-bin", wrong.BinDir)
	want := fmt.Sprintf("holds PostgreSQL %d, but the backup is of PostgreSQL %d", wrongMajor, major)
	if code != 6 || !strings.Contains(out, want) {
		t.Fatalf("backup-fetch --pg-bin of PostgreSQL %d: exit %d, want 6 and %q:\n%s", wrongMajor, code, want, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left %s behind (%v)", dir, err)
	}
	out, code = e.client(t, wrongEnv, "drill", "LATEST", "--pg-bin", wrong.BinDir)
	if code == 0 || !strings.Contains(out, want) {
		t.Fatalf("drill --pg-bin of PostgreSQL %d: exit %d, want a refusal with %q:\n%s", wrongMajor, code, want, out)
	}

	out, code = e.client(t, libEnv, "drill", "LATEST", "--timeout", "3m", "--pg-bin", srv.BinDir)
	if code != 0 {
		t.Fatalf("drill: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "bt_index_check on") || !strings.Contains(out, "connect filecopy") {
		t.Fatalf("drill ran no amcheck:\n%s", out)
	}
	// amcheck's heap check exists from PostgreSQL 14 on.
	if heap := strings.Contains(out, "verify_heapam on"); heap != (major >= 14) {
		t.Fatalf("drill on PostgreSQL %d: verify_heapam ran: %v:\n%s", major, heap, out)
	}
	out, code = e.client(t, nil, "wal-verify")
	if code != 0 {
		t.Fatalf("wal-verify: exit %d\n%s", code, out)
	}
}

// sentinel reads a backup's stop sentinel from the fs store.
func (e *backupEnv) sentinel(t *testing.T, name string) basebackup.Sentinel {
	t.Helper()
	f, err := os.Open(filepath.Join(e.g.Data, "store", layout.SentinelKey("db", name)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := basebackup.ParseSentinel(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// On PostgreSQL 17, a delta whose parent predates the WAL summaries kept
// (summarize_wal turned on after it) falls back to the page scan and says
// why; the next delta uses the summaries; the chain restores equal to the
// source.
func TestDeltaWALSummariesFallback(t *testing.T) {
	requirePostgres(t)
	if _, err := pgtest.ServerFor(17); err != nil {
		t.Fatal(err)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnvWith(t, g, true, pgtest.Options{Major: 17, DataChecksums: true})
	e.env = append(e.env, "LD_LIBRARY_PATH="+e.src.Server().LibDir)
	ctx, src := e.ctx, e.src
	exec := func(sql string) {
		t.Helper()
		if err := src.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := src.Pgbench(ctx, "-i", "-s", "1", "-q"); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE marks AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g`)
	exec(`VACUUM (FREEZE, ANALYZE)`)
	e.pushKind(t, "full", "backup-push", "--full")
	// The summarizer starts at the latest checkpoint: one after the full
	// backup leaves the summaries short of it.
	exec(`CHECKPOINT`)
	exec(`ALTER SYSTEM SET summarize_wal = on`)
	exec(`SELECT pg_reload_conf()`)
	load := func() {
		t.Helper()
		if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-t", "200", "-n"); err != nil {
			t.Fatal(err)
		}
	}
	load()
	out := e.mustClient(t, "backup-push", "--delta", src.DataDir)
	if !strings.Contains(out, "found by page scan (WAL summaries not usable: the WAL summaries kept begin at ") {
		t.Fatalf("delta over a parent the summaries do not reach: want the page scan and the reason:\n%s", out)
	}
	t.Logf("delta 1: %s", strings.TrimSpace(out))
	load()
	exec(`TRUNCATE pgbench_history`)
	exec(`UPDATE marks SET v = 'changed' WHERE id % 10 = 0`)
	out = e.mustClient(t, "backup-push", "--delta", src.DataDir)
	if !strings.Contains(out, "found by WAL summaries;") {
		t.Fatalf("second delta did not use the WAL summaries:\n%s", out)
	}
	t.Logf("delta 2: %s", strings.TrimSpace(out))
	load()
	final := checksums(t, ctx, src)
	e.archiveAll(t)
	r := e.restore(t, "LATEST", pgtest.Recovery{})
	sameTables(t, "delta 2 (WAL summaries) over delta 1 (page scan) + all WAL", final, checksums(t, ctx, r))
}
