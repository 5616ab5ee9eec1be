package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// backup-push refuses, each with its reason and nothing committed: a
// server with archive_mode off, one with wal_level minimal, and a
// standby (a server still in recovery).
func TestBackupPushRefusals(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "1", "-q"); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, c *pgtest.Cluster, want string) {
		t.Helper()
		before := len(e.list(t))
		pg := []string{"PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", c.Port), "PGUSER=postgres", "PGDATABASE=postgres"}
		out, code := e.client(t, pg, "backup-push", "--full", c.DataDir)
		if code != 6 || !strings.Contains(out, want) {
			t.Fatalf("backup-push: exit %d, want 6 and %q:\n%s", code, want, out)
		}
		if n := len(e.list(t)); n != before {
			t.Fatalf("a refused backup was committed (%d backups, was %d)", n, before)
		}
	}
	t.Run("archive_mode off", func(t *testing.T) {
		c := pgtest.New(t, pgtest.Options{})
		refused(t, c, "archive_mode is off")
	})
	t.Run("wal_level minimal", func(t *testing.T) {
		c := pgtest.New(t, pgtest.Options{Conf: []string{"wal_level = minimal", "max_wal_senders = 0"}})
		refused(t, c, "wal_level is minimal")
	})
	t.Run("standby", func(t *testing.T) {
		e.pushKind(t, "full", "backup-push", "--full")
		e.archiveAll(t)
		dir := filepath.Join(pgtest.SharedDir(t), "standby")
		e.mustClient(t, "backup-fetch", dir, "LATEST")
		c := pgtest.NewFromBackup(t, dir, pgtest.Recovery{
			RestoreCommand: e.bin + " wal-fetch %f %p", Target: "immediate", TargetAction: "pause",
		}, pgtest.Options{Env: e.env})
		if outcome, err := c.WaitRecoveryEnd(ctx); err != nil || outcome != pgtest.RecoveryPaused {
			t.Fatalf("recovery ended %s (%v), want paused in recovery", outcome, err)
		}
		refused(t, c, "the server is a standby")
	})
}

// A cluster archives one WAL segment size: wal-push of a segment of
// another size (a server re-initialised with another --wal-segsize under
// the same cluster name) is refused by the gateway, and backup-push of
// such a server by the client, both saying why.
func TestWALSegmentSizeMix(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnv(t, g, true)
	e.pushKind(t, "full", "backup-push", "--full")
	e.archiveAll(t) // 16 MiB segments under cluster "db"
	other := pgtest.New(t, pgtest.Options{WALSegmentSizeMB: 1, Conf: []string{"archive_mode = on", "archive_command = '/bin/true'"}})
	pg := []string{"PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", other.Port), "PGUSER=postgres", "PGDATABASE=postgres"}
	out, code := e.client(t, pg, "backup-push", "--full", other.DataDir)
	if code != 6 || !strings.Contains(out, "this server's WAL segments are 1 MiB, but cluster db archives 16 MiB segments") {
		t.Fatalf("backup-push of a 1 MiB-segment server into a 16 MiB archive: exit %d\n%s", code, out)
	}
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("%d backups after the refusal, want 1", n)
	}
	entries, err := os.ReadDir(filepath.Join(other.DataDir, "pg_wal"))
	if err != nil {
		t.Fatal(err)
	}
	var seg string
	for _, en := range entries {
		if len(en.Name()) == 24 {
			seg = filepath.Join(other.DataDir, "pg_wal", en.Name())
		}
	}
	if seg == "" {
		t.Fatalf("no WAL segment in %s/pg_wal", other.DataDir)
	}
	// A name beyond what "db" archived, so that it is new to the gateway.
	fresh := filepath.Join(t.TempDir(), "0000000100000000000000F0")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 1<<20 {
		t.Fatalf("segment %s is %d bytes, want 1 MiB", seg, len(data))
	}
	if err := os.WriteFile(fresh, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = e.client(t, nil, "wal-push", fresh)
	if code == 0 || !strings.Contains(out, "archives 16 MiB segments") || !strings.Contains(out, "wal_segment_size") {
		t.Fatalf("wal-push of a 1 MiB segment into a 16 MiB archive: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(g.Data, "store", "db", "wal_005")); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(g.Data, "store", "db", "wal_005", "0000000100000000000000F0*"))
	if len(matches) != 0 {
		t.Fatalf("the refused segment was stored: %v", matches)
	}
}
