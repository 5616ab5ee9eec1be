package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/layout"
)

// A full backup and two deltas on a cluster with data checksums, with load
// and DDL between them that stresses the page scan (new, rewritten,
// truncated and dropped relations, a new index, a relation of more than
// 1 GiB spanning two segment files, a table growing during the backup).
// Delta 2 restored with all WAL equals the final state; delta 1 restored to
// a point in time equals that point. The chain limit makes the next backup
// a full one; a corrupt page is reported (and fatal on request); a chain
// with a deleted middle link fails before writing anything.
func TestDeltaChain(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnvWith(t, g, true, pgtest.Options{DataChecksums: true, Conf: []string{"max_wal_size = '2GB'", "checkpoint_timeout = '30min'"}})
	e.env = append(e.env, "WALGATE_DELTA_MAX_STEPS=2")
	ctx := e.ctx
	src := e.src
	exec := func(sql string) {
		t.Helper()
		if err := src.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := src.Pgbench(ctx, "-i", "-s", "4", "-q"); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE marks (id int PRIMARY KEY, phase text, at timestamptz)`)
	exec(`CREATE TABLE dropme AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`)
	exec(`CREATE TABLE rewriteme AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`)
	exec(`CREATE TABLE corruptme AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g`)
	// More than 1 GiB with little data: one ~800-byte row per page.
	exec(`CREATE TABLE big (id int PRIMARY KEY, pad text) WITH (fillfactor = 10, autovacuum_enabled = off)`)
	exec(`ALTER TABLE big ALTER COLUMN pad SET STORAGE PLAIN`)
	exec(`INSERT INTO big SELECT g, repeat('x', 700) FROM generate_series(1, 140000) g`)
	bigFile, err := src.QueryString(ctx, `SELECT pg_relation_filepath('big')`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src.DataDir, bigFile+".1")); err != nil {
		t.Fatalf("table big does not span two segment files: %v", err)
	}

	// Set hint bits now: with data checksums, the first reader to set them
	// WAL-logs the page, and the first delta would hold every page.
	exec(`VACUUM (FREEZE, ANALYZE)`)
	// Flush every page now and let the clock move on: a delta skips only
	// files last written well before its parent started (client/deltaskip.go),
	// so dropme, untouched from here on, must be skipped by the first delta.
	exec(`CHECKPOINT`)
	time.Sleep(2100 * time.Millisecond)
	full := e.pushKind(t, "full", "--full")

	if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "3", "-n"); err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE big SET pad = repeat('y', 700) WHERE id % 1000 = 0`)
	d1 := e.pushKind(t, "delta", "backup-push") // WALGATE_DELTA_MAX_STEPS=2: a delta
	if d1.DeltaFrom != full.Name || d1.DeltaCount != 1 || d1.DeltaFullName != full.Name {
		t.Fatalf("delta 1: %+v", d1)
	}
	if d1.UncompressedSize*5 > full.UncompressedSize {
		t.Fatalf("delta 1 holds %d bytes of data, the full %d: not much of a delta", d1.UncompressedSize, full.UncompressedSize)
	}
	// Files untouched since the full backup are recorded as skipped, not
	// stored; a table no load touched is one of them.
	fm1 := e.filesMetadata(t, d1.Name)
	inTars := map[string]bool{}
	for _, members := range fm1.TarFileSets {
		for _, m := range members {
			inTars[m] = true
		}
	}
	skipped, incremented := 0, 0
	for m, d := range fm1.Files {
		if d.IsSkipped {
			skipped++
			if inTars[m] || d.IsIncremented {
				t.Fatalf("delta 1: %s is skipped and stored", m)
			}
		}
		if d.IsIncremented {
			incremented++
		}
	}
	dropFile, err := src.QueryString(ctx, `SELECT pg_relation_filepath('dropme')`)
	if err != nil {
		t.Fatal(err)
	}
	if !fm1.Files["/"+dropFile].IsSkipped || skipped < incremented {
		t.Fatalf("delta 1: %d files skipped, %d increments; %s: %+v", skipped, incremented, dropFile, fm1.Files["/"+dropFile])
	}
	t.Logf("delta 1: %d files skipped, %d increments", skipped, incremented)
	exec(`INSERT INTO marks SELECT g, 'd1', clock_timestamp() FROM generate_series(1, 300) g`)
	atMark := checksums(t, ctx, src)
	mark, err := src.QueryString(ctx, `SELECT clock_timestamp()::text`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)

	// Load and DDL between delta 1 and delta 2.
	if _, err := src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "3", "-n"); err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE created AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 30000) g`)
	exec(`CREATE INDEX ON pgbench_accounts (abalance)`)
	exec(`TRUNCATE pgbench_history`)
	exec(`DROP TABLE dropme`)
	exec(`VACUUM FULL rewriteme`)
	exec(`UPDATE big SET pad = repeat('z', 700) WHERE id % 997 = 0 OR id > 139000`) // both segment files
	exec(`CREATE TABLE growing (id int, v text)`)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	var growErr error
	go func() { // extends a table while delta 2 runs
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if growErr = src.Exec(ctx, `INSERT INTO growing SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 2000) g`); growErr != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	d2 := e.pushKind(t, "delta", "backup-push")
	close(stop)
	wg.Wait()
	if growErr != nil {
		t.Fatal(growErr)
	}
	if d2.DeltaFrom != d1.Name || d2.DeltaCount != 2 || d2.DeltaFullName != full.Name {
		t.Fatalf("delta 2: %+v", d2)
	}
	exec(`INSERT INTO marks SELECT g, 'final', clock_timestamp() FROM generate_series(301, 400) g`)
	final := checksums(t, ctx, src)
	e.archiveAll(t)

	// The chain limit (2) turns the next backup into a full one.
	out := e.mustClient(t, "backup-push", src.DataDir)
	if !strings.Contains(out, "full backup instead of a delta") || !strings.Contains(out, "WALGATE_DELTA_MAX_STEPS=2") {
		t.Fatalf("third backup-push was not a full one at the chain limit:\n%s", out)
	}
	list := e.list(t)
	if len(list) != 4 || list[3].Kind != "full" {
		t.Fatalf("backup-list: %+v", list)
	}
	table := e.mustClient(t, "backup-list")
	for _, w := range []string{"PARENT", "DEPTH", d2.Name, d1.Name} {
		if !strings.Contains(table, w) {
			t.Fatalf("backup-list table lacks %q:\n%s", w, table)
		}
	}

	// Delta 2 with all WAL; delta 1 to the mark.
	r2 := e.restore(t, d2.Name, pgtest.Recovery{})
	sameTables(t, "delta 2 + all WAL", final, checksums(t, ctx, r2))
	if err := r2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	r1 := e.restore(t, d1.Name, pgtest.Recovery{TargetTime: mark, TargetAction: "promote"})
	sameTables(t, "delta 1 to the mark", atMark, checksums(t, ctx, r1))
	if err := r1.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// A corrupt page (data checksums on) is reported; with
	// --fail-on-corrupt-pages nothing is committed. A delta verifies the
	// pages it stores (block 1, changed since the last backup), not those
	// it leaves to its parent (block 3); a full backup verifies all.
	corruptFile, err := src.QueryString(ctx, `SELECT pg_relation_filepath('corruptme')`)
	if err != nil {
		t.Fatal(err)
	}
	exec(`UPDATE corruptme SET v = upper(v) WHERE ctid = '(1,1)'`)
	exec(`CHECKPOINT`)
	if err := src.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(src.DataDir, corruptFile), basebackup.BlockSize+4000)
	flipByte(t, filepath.Join(src.DataDir, corruptFile), 3*basebackup.BlockSize+4000)
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	out = e.mustClient(t, "backup-push", "--delta", src.DataDir)
	if !strings.Contains(out, "page checksum failures") || !strings.Contains(out, "/"+corruptFile+" blocks [1]") {
		t.Fatalf("corrupt page not reported:\n%s", out)
	}
	list = e.list(t)
	corrupt := list[len(list)-1]
	fm := e.filesMetadata(t, corrupt.Name)
	if cb := fm.Files["/"+corruptFile].CorruptBlocks; cb == nil || cb.CorruptBlocksCount != 1 || cb.SomeCorruptBlocks[0] != 1 {
		t.Fatalf("files_metadata.json of %s: corrupt blocks of %s: %+v", corrupt.Name, corruptFile, fm.Files["/"+corruptFile])
	}
	out, code := e.client(t, nil, "backup-push", "--full", "--fail-on-corrupt-pages", src.DataDir)
	if code != 4 || !strings.Contains(out, "not committed") || !strings.Contains(out, "/"+corruptFile+" blocks [1 3]") {
		t.Fatalf("--fail-on-corrupt-pages: exit %d\n%s", code, out)
	}
	if n := len(e.list(t)); n != len(list) {
		t.Fatalf("a backup with corrupt pages was committed under --fail-on-corrupt-pages (%d backups, was %d)", n, len(list))
	}

	// Delete the middle link of the chain: the restore of delta 2 names it
	// and writes nothing.
	if err := g.Server.Catalog().DeleteBackup("db", d1.Name); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(g.Data, "store", "db", "basebackups_005", d1.Name)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(g.Data, "store", layout.SentinelKey("db", d1.Name)))
	dir := filepath.Join(t.TempDir(), "broken")
	out, code = e.client(t, nil, "backup-fetch", dir, d2.Name)
	if code != 74 || !strings.Contains(out, d1.Name+", which is not in the archive") {
		t.Fatalf("restore of a broken chain: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("restore of a broken chain left %s behind (%v)", dir, err)
	}
}

// pushKind runs backup-push with args (and PGDATA) and returns the new
// backup, checking its kind.
func (e *backupEnv) pushKind(t *testing.T, kind string, args ...string) protocol.BackupSummary {
	t.Helper()
	if args[0] != "backup-push" {
		args = append([]string{"backup-push"}, args...)
	}
	out := e.mustClient(t, append(args, e.src.DataDir)...)
	t.Logf("%s: %s", strings.Join(args, " "), strings.TrimSpace(out))
	list := e.list(t)
	b := list[len(list)-1]
	if b.Kind != kind {
		t.Fatalf("backup-push %v made a %s backup, want %s:\n%s", args, b.Kind, kind, out)
	}
	return b
}

func (e *backupEnv) list(t *testing.T) []protocol.BackupSummary {
	t.Helper()
	var list []protocol.BackupSummary
	if err := json.Unmarshal([]byte(e.mustClient(t, "backup-list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// filesMetadata reads a backup's files_metadata.json from the fs store.
func (e *backupEnv) filesMetadata(t *testing.T, name string) basebackup.FilesMetadata {
	t.Helper()
	f, err := os.Open(filepath.Join(e.g.Data, "store", "db", "basebackups_005", name, "files_metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fm, err := basebackup.ParseFilesMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	return fm
}

// flipByte inverts one byte of a file in place.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
