package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestArchiveRestoreRoundTrip runs the whole life of an archive test: a
// cluster archiving with cp, a base backup taken before any data exists,
// pgbench load, WAL archived, then two clusters recovered from the backup
// and the archive alone, one to the end and one to a named restore point,
// each compared table by table with the original. It also checks that
// Options.Env, and only it, reaches archive_command.
//
// Not parallel: it uses t.Setenv to plant a variable that must not leak.
func TestArchiveRestoreRoundTrip(t *testing.T) {
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Setenv("WALGATE_PGTEST_LEAK", "leaked from the test process")
	archive := SharedDir(t)
	side := SharedDir(t)
	envFile := filepath.Join(side, "env.txt")
	archiveCommand := fmt.Sprintf(
		`echo "mark=$WALGATE_PGTEST_MARK leak=$WALGATE_PGTEST_LEAK user=$(id -un) tz=$TZ" >> %s && test ! -f %s/%%f && cp %%p %s/%%f`,
		envFile, archive, archive)
	restoreCommand := fmt.Sprintf("cp %s/%%f %%p", archive)

	src := New(t, Options{
		Conf: []string{
			"archive_mode = on",
			"archive_command = " + QuoteConf(archiveCommand),
		},
		Env:           []string{"WALGATE_PGTEST_MARK=hello 'world'"},
		DataChecksums: true,
	})
	t.Logf("source cluster up on port %d after %v", src.Port, time.Since(start))

	backup := filepath.Join(t.TempDir(), "base")
	if err := src.BaseBackup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(backup, "backup_label")); err != nil {
		t.Fatalf("base backup has no backup_label: %v", err)
	}

	if _, err := src.Pgbench(ctx, "-i", "-s", "1", "-q"); err != nil {
		t.Fatal(err)
	}
	// Identifiers that need quoting, and an unlogged table that recovery
	// empties and AllUserTables must therefore skip.
	if _, err := src.Psql(ctx, `
		CREATE SCHEMA "Mixed Case";
		CREATE TABLE "Mixed Case"."it's" (id int PRIMARY KEY, v text);
		INSERT INTO "Mixed Case"."it's" SELECT g, repeat('x', g % 7) FROM generate_series(1, 1000) g;
		CREATE UNLOGGED TABLE scratch AS SELECT 1 AS x;`); err != nil {
		t.Fatal(err)
	}
	atInit, err := src.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Exec(ctx, "SELECT pg_create_restore_point('after_init')"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Pgbench(ctx, "-n", "-c", "2", "-t", "100"); err != nil {
		t.Fatal(err)
	}
	stats, err := src.WaitArchived(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if stats.FailedCount != 0 {
		t.Errorf("archiver failures: %v", stats)
	}
	t.Logf("archived through %s (%v)", stats.LastArchivedWAL, stats)

	final, err := src.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTables := []string{"Mixed Case.it's", "public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_history", "public.pgbench_tellers"}
	if got := sortedKeys(final); strings.Join(got, "|") != strings.Join(wantTables, "|") {
		t.Errorf("AllUserTables = %q, want %q", got, wantTables)
	}
	if n := final["public.pgbench_accounts"]; !strings.HasSuffix(string(n), " 100000") {
		t.Errorf("pgbench_accounts checksum %q, want 100000 rows", n)
	}
	if d := DiffChecksums(atInit, final); !strings.Contains(d, "pgbench_history") {
		t.Errorf("pgbench run changed nothing visible:\n%s", d)
	}

	checkEnv(t, envFile)

	// Recover to the end of the archive: promoted on timeline 2, same data.
	full := NewFromBackup(t, backup, Recovery{RestoreCommand: restoreCommand}, Options{})
	outcome, err := full.WaitRecoveryEnd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != RecoveryPromoted {
		t.Errorf("full recovery ended %s, want %s", outcome, RecoveryPromoted)
	}
	compare(ctx, t, "full recovery", final, full)
	if tli, err := full.QueryString(ctx, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"); err != nil {
		t.Error(err)
	} else if tli != "00000002" {
		t.Errorf("recovered cluster is on timeline %s, want 00000002", tli)
	}
	if n, err := os.ReadDir(filepath.Join(full.DataDir, "pg_wal", "archive_status")); err == nil {
		for _, e := range n {
			if strings.HasSuffix(e.Name(), ".done") && !strings.HasPrefix(e.Name(), "00000001") {
				t.Errorf("recovered cluster archived %s although archive_mode is off", e.Name())
			}
		}
	}

	// Recover to the named restore point: pauses there, data as it was.
	point := NewFromBackup(t, backup, Recovery{RestoreCommand: restoreCommand, TargetName: "after_init"}, Options{})
	outcome, err = point.WaitRecoveryEnd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != RecoveryPaused {
		t.Errorf("recovery to a named point ended %s, want %s", outcome, RecoveryPaused)
	}
	compare(ctx, t, "recovery to restore point", atInit, point)

	// Crash and restart the source: crash recovery keeps every commit.
	if err := src.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if src.Running() {
		t.Fatal("source still running after Kill")
	}
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	compare(ctx, t, "after crash recovery", final, src)

	t.Logf("round trip took %v", time.Since(start))
}

// checkEnv checks what archive_command saw of its environment.
func checkEnv(t *testing.T, envFile string) {
	t.Helper()
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("archive_command wrote no environment report: %v", err)
	}
	user := ServerUserName
	if os.Geteuid() != 0 {
		user = ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "mark=hello 'world' leak= user="+user) || !strings.HasSuffix(l, " tz=UTC") {
			t.Errorf("archive_command saw %q; want mark=hello 'world', an empty leak, user %q, tz=UTC", l, user)
			return
		}
	}
	t.Logf("archive_command ran %d times with the expected environment", len(lines))
}

func compare(ctx context.Context, t *testing.T, what string, want map[string]Checksum, c *Cluster) {
	t.Helper()
	got, err := c.AllTableChecksums(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if d := DiffChecksums(want, got); d != "" {
		t.Errorf("%s: tables differ from the source:\n%s", what, d)
	}
}

func sortedKeys(m map[string]Checksum) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestDiffChecksums(t *testing.T) {
	want := map[string]Checksum{"a.x": "1 1", "a.y": "2 2", "a.z": "3 3"}
	got := map[string]Checksum{"a.x": "1 1", "a.y": "9 2", "a.w": "4 4"}
	d := DiffChecksums(want, got)
	wantDiff := "a.w: unexpected table (got 4 4)\na.y: want 2 2, got 9 2\na.z: missing (want 3 3)\n"
	if d != wantDiff {
		t.Errorf("DiffChecksums =\n%s\nwant\n%s", d, wantDiff)
	}
	if d := DiffChecksums(want, want); d != "" {
		t.Errorf("DiffChecksums of equal maps = %q", d)
	}
}

func TestRecoveryLines(t *testing.T) {
	if _, err := recoveryLines(Recovery{}); err == nil {
		t.Error("empty RestoreCommand accepted")
	}
	if _, err := recoveryLines(Recovery{RestoreCommand: "x", TargetName: "a", TargetLSN: "0/1"}); err == nil {
		t.Error("two targets accepted")
	}
	lines, err := recoveryLines(Recovery{RestoreCommand: "cp '/a b/%f' %p", TargetTime: "2026-01-01 00:00:00+00", TargetAction: "promote"})
	if err != nil {
		t.Fatal(err)
	}
	want := "restore_command = 'cp ''/a b/%f'' %p'|recovery_target_time = '2026-01-01 00:00:00+00'|recovery_target_action = 'promote'"
	if got := strings.Join(lines, "|"); got != want {
		t.Errorf("lines = %s\nwant    %s", got, want)
	}
}

// TestLifecycle covers the rest of the helper: 1 MB segments, an archive
// program installed with InstallExecutable, settings changed with
// AppendConf + Reload and Restart, Env changed across a restart,
// pg_controldata, and recovery that shuts down at an LSN target.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The archive program lives in a root-only test directory; the server
	// can run it only once installed, so install before the first start.
	c := New(t, Options{WALSegmentSizeMB: 1, Env: []string{"WALGATE_PGTEST_MARK=first"}, NoStart: true})
	archive := SharedDir(t)
	script := filepath.Join(t.TempDir(), "archive-wal")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nset -e\necho \"$WALGATE_PGTEST_MARK\" >> \"$3/marks\"\ncp \"$1\" \"$3/$2\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	exe, err := c.InstallExecutable(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AppendConf("archive_mode = on", "archive_command = "+QuoteConf(exe+" %p %f "+archive)); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cd, err := c.ControlData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := cd["Bytes per WAL segment"]; got != "1048576" {
		t.Errorf("Bytes per WAL segment = %q, want 1048576", got)
	}
	if got := cd["Data page checksum version"]; got != "0" {
		t.Errorf("Data page checksum version = %q, want 0 (checksums off)", got)
	}
	if _, err := c.WaitArchived(ctx, ""); err != nil {
		t.Fatal(err)
	}
	checkMarks(t, archive, "first")

	// A new Env takes effect at the next start.
	c.Env = []string{"WALGATE_PGTEST_MARK=second"}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := c.QueryString(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid()"); err != nil || n != "1" {
		t.Fatalf("QueryString of a bigint = %q, %v; want \"1\"", n, err)
	}
	backup := filepath.Join(t.TempDir(), "base")
	if err := c.BaseBackup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, "CREATE TABLE t AS SELECT g FROM generate_series(1, 5000) g"); err != nil {
		t.Fatal(err)
	}
	want, err := c.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lsn, err := c.QueryString(ctx, "SELECT pg_current_wal_lsn()::text")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, "INSERT INTO t VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitArchived(ctx, ""); err != nil {
		t.Fatal(err)
	}
	checkMarks(t, archive, "second")

	if err := c.AppendConf("archive_command = 'false'"); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := c.QueryString(ctx, "SHOW archive_command")
		if err != nil {
			t.Fatal(err)
		}
		if got == "false" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Reload archive_command = %q, want false", got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Stop right after the table was created, before the extra row.
	r := NewFromBackup(t, backup, Recovery{
		RestoreCommand: fmt.Sprintf("cp %s/%%f %%p", archive),
		TargetLSN:      lsn,
		TargetAction:   "shutdown",
	}, Options{})
	outcome, err := r.WaitRecoveryEnd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != RecoveryShutdown {
		t.Fatalf("recovery ended %s, want %s", outcome, RecoveryShutdown)
	}
	// Start it again to pause at the same target, and look at the data.
	if err := r.SetRecovery(Recovery{
		RestoreCommand: fmt.Sprintf("cp %s/%%f %%p", archive),
		TargetLSN:      lsn,
		TargetAction:   "pause",
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if outcome, err := r.WaitRecoveryEnd(ctx); err != nil || outcome != RecoveryPaused {
		t.Fatalf("restart at target: %s, %v; want %s", outcome, err, RecoveryPaused)
	}
	compare(ctx, t, "recovery to an LSN", want, r)
}

// checkMarks checks that the last archive_command run saw want.
func checkMarks(t *testing.T, archive, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(archive, "marks"))
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Fields(string(b))
	if len(m) == 0 || m[len(m)-1] != want {
		t.Errorf("archive program saw marks %q, want the last one %q", m, want)
	}
}

// An ordinary SQL error comes alone; a session the server ended (here an
// immediate stop while a query runs) comes with the end of the server log,
// which says why.
func TestSQLErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := New(t, Options{})
	err := c.Exec(ctx, "SELECT 1/0")
	if err == nil || !strings.Contains(err.Error(), "division by zero") || strings.Contains(err.Error(), "--- server log ---") {
		t.Fatalf("SQL error: %v", err)
	}
	const sleep = "SELECT pg_sleep(60)"
	errc := make(chan error, 1)
	go func() { errc <- c.Exec(ctx, sleep) }()
	for {
		n, err := c.QueryString(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", sleep)
		if err != nil {
			t.Fatal(err)
		}
		if n == "1" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	if err == nil || !strings.Contains(err.Error(), "--- server log ---") || !strings.Contains(err.Error(), "immediate shutdown") {
		t.Fatalf("the session the server ended: %v", err)
	}
}
