package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// testKeyB is the key a rotation moves to (testKey is the first one).
const testKeyB = "5f0c9a1e3b7d2c8e4a6f1b9d0e2c7a5b3d8f1e6a9c2b4d7e0f3a5c8b1d6e9f2a"

// keysReport is the part of 'wal-verify --keys --json' the test reads.
type keysReport struct {
	OldKeys []struct {
		Fingerprint string   `json:"fingerprint"`
		WAL         int      `json:"wal"`
		Backups     []string `json:"backups"`
	} `json:"old_keys"`
	UnrecordedWAL     int `json:"unrecorded_wal"`
	UnrecordedBackups int `json:"unrecorded_backups"`
}

// TestKeyRotation runs the rotation procedure of docs/codec.md on a real
// server: archive and back up under key A; rotate to B with A in
// WALGATE_ENCRYPTION_OLD_KEYS; more WAL and a delta under B; the backup
// taken under A restores with the WAL of both keys to the newest WAL;
// wal-verify --keys names what still needs A; after a full backup under B
// and the deletion of everything before it, nothing needs A and the
// newest backup restores without A. The backups' files_metadata.json
// have WAL-G's shape.
func TestKeyRotation(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	keyA, err := codec.ParseKey(testKey, "hex")
	if err != nil {
		t.Fatal(err)
	}
	fpA := keyA.Fingerprint()
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "2", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, `CREATE TABLE sealed AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	full := e.pushKind(t, "full", "backup-push", "--full")
	checkWALGShape(t, e, full.Name)
	e.archiveAll(t)

	// Rotate: B writes, A still reads. The server's archive_command and
	// every later client run get the new settings.
	e.env = withEnv(e.env, "WALGATE_ENCRYPTION_KEY="+testKeyB, "WALGATE_ENCRYPTION_OLD_KEYS="+testKey, "WALGATE_DELTA_MAX_STEPS=1")
	e.src.Env = e.env
	if err := e.src.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.src.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-t", "300", "-n"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, `INSERT INTO sealed SELECT g, 'under B' FROM generate_series(5001, 6000) g`); err != nil {
		t.Fatal(err)
	}
	delta := e.pushKind(t, "delta", "backup-push")
	checkWALGShape(t, e, delta.Name)
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-t", "200", "-n"); err != nil {
		t.Fatal(err)
	}
	final := checksums(t, ctx, e.src)
	e.archiveAll(t)

	// wal-verify --keys: A is still needed by the first backup and the
	// WAL archived before the rotation.
	rep := keysOf(t, e)
	if len(rep.OldKeys) != 1 || rep.OldKeys[0].Fingerprint != fpA || rep.OldKeys[0].WAL == 0 || !slices.Contains(rep.OldKeys[0].Backups, full.Name) || slices.Contains(rep.OldKeys[0].Backups, delta.Name) {
		t.Fatalf("wal-verify --keys before retiring A: %+v; want A (%s) needed by WAL and by %s only", rep, fpA, full.Name)
	}
	if rep.UnrecordedWAL != 0 || rep.UnrecordedBackups != 0 {
		t.Fatalf("objects without a key fingerprint: %+v", rep)
	}
	text := e.mustClient(t, "wal-verify", "--keys")
	if !strings.Contains(text, "old key 1 ("+fpA+"): still needed by") {
		t.Fatalf("wal-verify --keys does not say A is needed:\n%s", text)
	}

	// The backup taken under A, with the WAL of both keys, to the newest WAL.
	restoredA := e.restoreInto(t, "restore-a", full.Name)
	sameTables(t, "backup under A + WAL under A and B", final, checksums(t, ctx, restoredA))
	if err := restoredA.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Retire A: a full backup under B, then everything before it goes.
	fullB := e.pushKind(t, "full", "backup-push", "--full")
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-t", "100", "-n"); err != nil {
		t.Fatal(err)
	}
	final = checksums(t, ctx, e.src)
	e.archiveAll(t)
	out, code := e.client(t, []string{"WALGATE_TOKEN=" + g.Token("db", "admin")}, "delete", "before", fullB.Name, "--confirm")
	if code != 0 {
		t.Fatalf("delete before %s: exit %d\n%s", fullB.Name, code, out)
	}
	rep = keysOf(t, e)
	if len(rep.OldKeys) != 1 || rep.OldKeys[0].WAL != 0 || len(rep.OldKeys[0].Backups) != 0 || rep.UnrecordedWAL != 0 {
		t.Fatalf("wal-verify --keys after the deletion: %+v; want nothing needing A", rep)
	}
	if text := e.mustClient(t, "wal-verify", "--keys"); !strings.Contains(text, "old key 1 ("+fpA+"): no object records it; it may be retired\n") {
		t.Fatalf("wal-verify --keys does not say A may be retired:\n%s", text)
	}

	// Without A, on the host and in recovery.
	e.env = withEnv(e.env, "WALGATE_ENCRYPTION_OLD_KEYS=")
	restoredB := e.restoreInto(t, "restore-b", "LATEST")
	sameTables(t, "newest backup without A", final, checksums(t, ctx, restoredB))
}

// withEnv returns env with each NAME=value of set replacing NAME's entry
// ("NAME=" removes it).
func withEnv(env []string, set ...string) []string {
	out := slices.Clone(env)
	for _, kv := range set {
		name, value, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, name+"=") })
		if value != "" {
			out = append(out, kv)
		}
	}
	return out
}

// keysOf runs wal-verify --keys --json.
func keysOf(t *testing.T, e *backupEnv) keysReport {
	t.Helper()
	var rep keysReport
	out := e.mustClient(t, "wal-verify", "--keys", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("wal-verify --keys --json: %v\n%s", err, out)
	}
	return rep
}

// restoreInto is restore into a directory of its own, to the end of the
// archive.
func (e *backupEnv) restoreInto(t *testing.T, dirName, name string) *pgtest.Cluster {
	t.Helper()
	dir := filepath.Join(pgtest.SharedDir(t), dirName)
	e.mustClient(t, "backup-fetch", dir, name)
	c := pgtest.NewFromBackup(t, dir, pgtest.Recovery{RestoreCommand: e.bin + " wal-fetch %f %p"}, pgtest.Options{Env: e.env})
	outcome, err := c.WaitRecoveryEnd(e.ctx)
	if err != nil {
		t.Fatalf("recovery of %s: %v", name, err)
	}
	if outcome != pgtest.RecoveryPromoted {
		t.Fatalf("recovery of %s ended %s", name, outcome)
	}
	return c
}

// checkWALGShape compares the files_metadata.json of backup name with the
// one stock WAL-G wrote in testdata/walg: no /global/pg_control in Files,
// no pg_control tar in TarFileSets, and the backup_label set as WAL-G
// orders it.
func checkWALGShape(t *testing.T, e *backupEnv, name string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "walg", "lz4-plain", "archive", "basebackups_005", "base_000000010000000000000004", "files_metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := basebackup.ParseFilesMetadata(f)
	if err != nil {
		t.Fatal(err)
	}
	got := e.filesMetadata(t, name)
	for _, fm := range []struct {
		who string
		m   basebackup.FilesMetadata
	}{{"WAL-G's", want}, {name, got}} {
		if _, ok := fm.m.Files["/global/pg_control"]; ok {
			t.Errorf("%s files_metadata.json lists /global/pg_control in Files", fm.who)
		}
		labels := 0
		for object, members := range fm.m.TarFileSets {
			switch {
			case strings.HasPrefix(object, "pg_control.tar"):
				t.Errorf("%s files_metadata.json lists the pg_control tar %s", fm.who, object)
			case strings.HasPrefix(object, "backup_label.tar"):
				labels++
				if !slices.Equal(members, []string{"tablespace_map", "backup_label"}) {
					t.Errorf("%s files_metadata.json: %s set %q", fm.who, object, members)
				}
			case slices.Contains(members, "/global/pg_control"):
				t.Errorf("%s files_metadata.json: %s lists /global/pg_control", fm.who, object)
			}
		}
		if labels != 1 {
			t.Errorf("%s files_metadata.json: %d backup_label sets", fm.who, labels)
		}
	}
}
