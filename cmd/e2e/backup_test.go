package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/gateway/protocol"
)

const testKey = "ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d"

// backupEnv is a gateway, a token and a source cluster archiving through
// walgate-client, with the environment the client binary runs with.
type backupEnv struct {
	g      *gatewaytest.Gateway
	src    *pgtest.Cluster
	bin    string   // walgate-client installed for the server user
	env    []string // WALGATE_* for the client
	pgEnv  []string // PG* to reach src
	ctx    context.Context
	cancel context.CancelFunc
}

func newBackupEnv(t *testing.T, g *gatewaytest.Gateway, archive bool) *backupEnv {
	t.Helper()
	return newBackupEnvWith(t, g, archive, pgtest.Options{})
}

// newBackupEnvWith is newBackupEnv with initdb options (data checksums).
func newBackupEnvWith(t *testing.T, g *gatewaytest.Gateway, archive bool, pgOpts pgtest.Options) *backupEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	env := []string{"WALGATE_URL=" + g.URL, "WALGATE_TOKEN=" + g.Token("db", "push", "fetch"), "WALGATE_RETRIES=3",
		"WALGATE_ENCRYPTION_KEY=" + testKey, "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex"}
	archiveCmd := "/bin/true" // archive_mode on, but WAL never reaches walgate
	pgOpts.Env, pgOpts.NoStart = env, true
	pgOpts.Conf = append([]string{"archive_mode = on"}, pgOpts.Conf...)
	src := pgtest.New(t, pgOpts)
	bin, err := src.InstallExecutable(walgateClient(t))
	if err != nil {
		t.Fatal(err)
	}
	if archive {
		archiveCmd = bin + " wal-push %p"
	}
	if err := src.AppendConf("archive_command = " + pgtest.QuoteConf(archiveCmd)); err != nil {
		t.Fatal(err)
	}
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &backupEnv{g: g, src: src, bin: bin, env: env, ctx: ctx, cancel: cancel,
		pgEnv: []string{"PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", src.Port), "PGUSER=postgres", "PGDATABASE=postgres"}}
}

// client runs walgate-client as this (root) process, with the env.
func (e *backupEnv) client(t *testing.T, extraEnv []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(e.ctx, walgateClient(t), args...)
	cmd.Env = append(append(append(os.Environ(), e.env...), e.pgEnv...), extraEnv...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("walgate-client %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func (e *backupEnv) mustClient(t *testing.T, args ...string) string {
	t.Helper()
	out, code := e.client(t, nil, args...)
	if code != 0 {
		t.Fatalf("walgate-client %s: exit %d\n%s\nserver log:\n%s", strings.Join(args, " "), code, out, e.src.LogTail(20))
	}
	return out
}

func (e *backupEnv) archiveAll(t *testing.T) {
	t.Helper()
	seg, err := e.src.SwitchWAL(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.src.WaitArchived(e.ctx, seg)
	if err != nil {
		t.Fatal(err)
	}
	if st.FailedCount != 0 {
		t.Fatalf("archiving failed %d times; log:\n%s", st.FailedCount, e.src.LogTail(30))
	}
}

// restore fetches backup name and recovers it through walgate-client, to
// the end of the archive or to a target time, and returns the cluster.
func (e *backupEnv) restore(t *testing.T, name string, rec pgtest.Recovery, fetchArgs ...string) *pgtest.Cluster {
	t.Helper()
	dir := filepath.Join(pgtest.SharedDir(t), "restore")
	e.mustClient(t, append([]string{"backup-fetch", dir, name}, fetchArgs...)...)
	// backup-fetch ran as root and, like pg_basebackup, keeps ownership to
	// whoever restores: hand moved tablespaces to the server user (pgtest
	// does the data directory).
	for i, a := range fetchArgs {
		if a == "--tablespace" && i+1 < len(fetchArgs) {
			_, loc, _ := strings.Cut(fetchArgs[i+1], "=")
			if out, err := exec.Command("chown", "-R", "postgres:", loc).CombinedOutput(); err != nil {
				t.Fatalf("chown %s: %v %s", loc, err, out)
			}
		}
	}
	rec.RestoreCommand = e.bin + " wal-fetch %f %p"
	c := pgtest.NewFromBackup(t, dir, rec, pgtest.Options{Env: e.env})
	outcome, err := c.WaitRecoveryEnd(e.ctx)
	if err != nil {
		t.Fatalf("recovery of %s: %v", name, err)
	}
	if rec.TargetTime == "" && outcome != pgtest.RecoveryPromoted {
		t.Fatalf("recovery ended %s", outcome)
	}
	return c
}

func checksums(t *testing.T, ctx context.Context, c *pgtest.Cluster) map[string]pgtest.Checksum {
	t.Helper()
	m, err := c.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) < 5 {
		t.Fatalf("only %d tables", len(m))
	}
	return m
}

func sameTables(t *testing.T, what string, want, got map[string]pgtest.Checksum) {
	t.Helper()
	if d := pgtest.DiffChecksums(want, got); d != "" {
		t.Fatalf("%s: restored tables differ:\n%s", what, d)
	}
}

// A full backup taken under concurrent pgbench writes; LATEST restored
// with full WAL replay equals the final state; a point-in-time recovery
// to a recorded mark equals the state at the mark.
func TestBackupRestoreAndPITR(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "4", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, `CREATE TABLE marks (id int PRIMARY KEY, phase text, at timestamptz)`); err != nil {
		t.Fatal(err)
	}
	// Writes run during the whole backup.
	var wg sync.WaitGroup
	wg.Add(1)
	var loadErr error
	go func() {
		defer wg.Done()
		_, loadErr = e.src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "6", "-n")
	}()
	time.Sleep(500 * time.Millisecond)
	out := e.mustClient(t, "backup-push", e.src.DataDir)
	wg.Wait()
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	t.Logf("backup-push: %s", strings.TrimSpace(out))

	if err := e.src.Exec(ctx, `INSERT INTO marks SELECT g, 'before', clock_timestamp() FROM generate_series(1, 500) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-t", "200", "-n"); err != nil {
		t.Fatal(err)
	}
	atMark := checksums(t, ctx, e.src)
	mark, err := e.src.QueryString(ctx, `SELECT clock_timestamp()::text`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := e.src.Exec(ctx, `INSERT INTO marks SELECT g, 'after', clock_timestamp() FROM generate_series(501, 900) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-t", "200", "-n"); err != nil {
		t.Fatal(err)
	}
	final := checksums(t, ctx, e.src)
	e.archiveAll(t)

	// backup-list, table and JSON.
	var list []protocol.BackupSummary
	if err := json.Unmarshal([]byte(e.mustClient(t, "backup-list", "--json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("backup-list --json: %v %v", list, err)
	}
	if table := e.mustClient(t, "backup-list"); !strings.Contains(table, list[0].Name) {
		t.Fatalf("backup-list table lacks %s:\n%s", list[0].Name, table)
	}

	latest := e.restore(t, "LATEST", pgtest.Recovery{})
	sameTables(t, "LATEST + all WAL", final, checksums(t, ctx, latest))

	pitr := e.restore(t, list[0].Name, pgtest.Recovery{TargetTime: mark, TargetAction: "promote"})
	sameTables(t, "PITR to the mark", atMark, checksums(t, ctx, pitr))
}

// A backup with a tablespace, restored with the tablespace relocated.
func TestBackupTablespace(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	loc := filepath.Join(pgtest.SharedDir(t), "ts")
	if err := os.Mkdir(loc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(loc, uid(t), gid(t)); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE TABLESPACE extra LOCATION '" + loc + "'",
		"CREATE TABLE far (id int PRIMARY KEY, v text) TABLESPACE extra",
		"INSERT INTO far SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
	} {
		if err := e.src.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "1", "-q"); err != nil {
		t.Fatal(err)
	}
	oid, err := e.src.QueryString(ctx, "SELECT oid::text FROM pg_tablespace WHERE spcname = 'extra'")
	if err != nil {
		t.Fatal(err)
	}
	e.mustClient(t, "backup-push", e.src.DataDir)
	if err := e.src.Exec(ctx, "INSERT INTO far SELECT g, 'late' FROM generate_series(20001, 21000) g"); err != nil {
		t.Fatal(err)
	}
	want := checksums(t, ctx, e.src)
	e.archiveAll(t)

	// The original location is in use: restoring there is refused.
	dir := filepath.Join(pgtest.SharedDir(t), "refused")
	if out, code := e.client(t, nil, "backup-fetch", dir, "LATEST"); code == 0 {
		t.Fatalf("backup-fetch into a used tablespace location succeeded:\n%s", out)
	}
	moved := filepath.Join(pgtest.SharedDir(t), "ts-moved")
	c := e.restore(t, "LATEST", pgtest.Recovery{}, "--tablespace", oid+"="+moved)
	sameTables(t, "tablespace restore", want, checksums(t, ctx, c))
	loc2, err := c.QueryString(ctx, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'extra'")
	if err != nil || loc2 != moved {
		t.Fatalf("restored tablespace at %q (%v), want %q", loc2, err, moved)
	}
}

func uid(t *testing.T) int { return lookupID(t, "-u") }
func gid(t *testing.T) int { return lookupID(t, "-g") }

func lookupID(t *testing.T, flag string) int {
	t.Helper()
	out, err := exec.Command("id", flag, "postgres").Output()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(out), &n)
	return n
}

// The drill passes on a good archive and reports, with amcheck's checks
// in every database although the source never installed amcheck; it
// fails, and reports the failure, when the archive lacks the WAL the
// backup needs or a check fails, and the reason reaches the gateway's
// status.
func TestDrill(t *testing.T) {
	requirePostgres(t)
	for _, tc := range []struct {
		name    string
		archive bool
		code    int
		sql     string
	}{{"good", true, 0, "SELECT count(*) FROM pgbench_accounts;"}, {"wal-missing", false, 7, "SELECT 1;"},
		{"check-fails", true, 7, "SELECT count(*) FROM pgbench_accounts;\nSELECT 1/0;"}} {
		t.Run(tc.name, func(t *testing.T) {
			// A gateway each: every case's server is a new system, and a
			// cluster name keeps to one.
			g := gatewaytest.Start(t, gatewaytest.Options{})
			cluster := map[string]string{"good": "db", "wal-missing": "lost", "check-fails": "db"}[tc.name]
			e := newBackupEnv(t, g, tc.archive)
			if cluster != "db" {
				e.env[1] = "WALGATE_TOKEN=" + g.Token(cluster, "push", "fetch")
			}
			if _, err := e.src.Pgbench(e.ctx, "-i", "-s", "1", "-q"); err != nil {
				t.Fatal(err)
			}
			e.mustClient(t, "backup-push", e.src.DataDir)
			if tc.archive {
				e.archiveAll(t)
			}
			check := filepath.Join(t.TempDir(), "check.sql")
			os.WriteFile(check, []byte(tc.sql), 0o644)
			out, code := e.client(t, nil, "drill", "LATEST", "--check-sql", check, "--timeout", "2m")
			t.Logf("drill (exit %d):\n%s", code, out)
			if code != tc.code {
				t.Fatalf("drill exit %d, want %d", code, tc.code)
			}
			recs, err := g.Server.Catalog().Drills(cluster, 0)
			if err != nil || len(recs) != 1 || recs[0].Passed != (tc.code == 0) {
				t.Fatalf("gateway kept %d drill reports (%v), want one with passed=%v", len(recs), err, tc.code == 0)
			}
			var rep protocol.DrillReport
			if err := json.Unmarshal(recs[0].Report, &rep); err != nil {
				t.Fatal(err)
			}
			st, err := g.Server.FleetStatus(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var last *health.Drill
			for _, c := range st {
				if c.Cluster == cluster {
					last = c.LastDrill
				}
			}
			if last == nil {
				t.Fatalf("status has no drill for %s: %+v", cluster, st)
			}
			switch tc.name {
			case "good":
				amchecked := map[string]bool{}
				for _, ch := range rep.Checks {
					if strings.HasPrefix(ch.Name, "amcheck ") && ch.Passed && strings.Contains(ch.Output, "bt_index_check on") {
						amchecked[strings.TrimPrefix(ch.Name, "amcheck ")] = true
					}
				}
				if !amchecked["postgres"] || !amchecked["template1"] {
					t.Fatalf("amcheck did not run in every database: %+v", rep.Checks)
				}
			case "check-fails":
				if !strings.Contains(rep.Error, "check-sql") || !strings.Contains(rep.Error, "division by zero") {
					t.Fatalf("the report's error does not say why: %q", rep.Error)
				}
				if !strings.HasPrefix(last.FailedCheck, "check-sql") || !strings.Contains(last.Error, "division by zero") {
					t.Fatalf("status's last drill: %+v", last)
				}
			case "wal-missing":
				if last.Error == "" || last.Error != rep.Reason() {
					t.Fatalf("status's last drill has no reason: %+v", last)
				}
			}
		})
	}
}

// A client killed mid-backup leaves no visible backup, and the gateway
// removes its parts; the next backup works.
func TestBackupKilledClient(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{BackupSessionTimeout: 2 * time.Second}}})
	e := newBackupEnv(t, g, true)
	if _, err := e.src.Pgbench(e.ctx, "-i", "-s", "8", "-q"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(e.ctx, walgateClient(t), "backup-push", e.src.DataDir)
	cmd.Env = append(append(append(os.Environ(), e.env...), e.pgEnv...), "WALGATE_TAR_SIZE_THRESHOLD=4000000", "WALGATE_UPLOAD_CONCURRENCY=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(g.Data, "store", "db", "basebackups_005")
	deadline := time.Now().Add(30 * time.Second)
	for countFiles(store) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if n := countFiles(store); n < 1 {
		t.Fatalf("killed too early: %d objects", n)
	}
	out := e.mustClient(t, "backup-list", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("a killed backup is listed: %s", out)
	}
	deadline = time.Now().Add(15 * time.Second)
	for countFiles(store) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := countFiles(store); n > 0 {
		t.Fatalf("%d objects of the abandoned backup remain", n)
	}
	e.mustClient(t, "backup-push", e.src.DataDir)
	var list []protocol.BackupSummary
	if err := json.Unmarshal([]byte(e.mustClient(t, "backup-list", "--json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("after a good backup: %v %v", list, err)
	}
}

// The gateway restarts in the middle of a backup: the backup fails
// cleanly, the server leaves backup mode, and nothing is visible.
func TestBackupGatewayRestart(t *testing.T) {
	requirePostgres(t)
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	cfg := gateway.Config{Data: data, Listen: fmt.Sprintf("127.0.0.1:%d", port)}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	e := newBackupEnv(t, g, false)
	if _, err := e.src.Pgbench(e.ctx, "-i", "-s", "8", "-q"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(e.ctx, walgateClient(t), "backup-push", e.src.DataDir)
	cmd.Env = append(append(append(os.Environ(), e.env...), e.pgEnv...), "WALGATE_TAR_SIZE_THRESHOLD=4000000", "WALGATE_UPLOAD_CONCURRENCY=1", "WALGATE_RETRIES=0")
	var outb strings.Builder
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(data, "store", "db", "basebackups_005")
	deadline := time.Now().Add(30 * time.Second)
	for countFiles(store) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	g.Server.Shutdown(sctx)
	cancel()
	err = cmd.Wait()
	if err == nil {
		t.Fatalf("backup-push succeeded across a gateway restart:\n%s", outb.String())
	}
	t.Logf("backup-push failed as it should: %s", strings.TrimSpace(outb.String()))
	g2 := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	_ = g2
	if out := e.mustClient(t, "backup-list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a failed backup is listed: %s", out)
	}
	// The server is not stuck in backup mode: a new backup runs.
	e.mustClient(t, "backup-push", e.src.DataDir)
}

func countFiles(dir string) int {
	n := 0
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}
