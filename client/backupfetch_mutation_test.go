package client_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// A backup whose objects cannot make a cluster PostgreSQL recovers (two
// pg_control or two backup_label tars, an empty backup_label) or whose
// metadata is not one JSON document is refused as damaged, and the
// restore leaves nothing behind. Metadata nested deeply restores.
func TestBackupFetchRefusesOddBackups(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	labelTar := func(label string) []byte {
		var b bytes.Buffer
		if err := basebackup.WriteLabelTar(&b, label, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	for i, tc := range []struct {
		what string
		edit func(b *testBackup)
		want string // in the error; "" means the restore succeeds
	}{
		{"two pg_control tars", func(b *testBackup) {
			b.meta = map[string][]byte{"tar_partitions/pg_control.tar": tarOf(t, b.control)}
		}, "the backup has two pg_control tars"},
		{"two backup_label tars", func(b *testBackup) {
			b.meta = map[string][]byte{"tar_partitions/backup_label.tar": labelTar(b.label)}
		}, "the backup has two backup_label tars"},
		{"empty backup_label", func(b *testBackup) { b.label = "" }, "backup_label.tar.zst"},
		// Refused at its first member, with the rest of the part still
		// to read: the refusal is the cause, not the unread bytes.
		{"a refused member first", func(b *testBackup) {
			b.parts[0] = append([]member{{"/base/../../outside", []byte("x")}}, b.parts[0]...)
		}, `refused a tar member (the stored bytes match their recorded SHA-256: the backup itself holds it): extract: unsafe tar member: "/base/../../outside"`},
		{"metadata.json followed by more", func(b *testBackup) {
			b.meta = map[string][]byte{"metadata.json": []byte(`{"start_lsn":67108904} {"finish_lsn":67108960}`)}
		}, "metadata.json"},
		{"metadata.json cut short", func(b *testBackup) {
			b.meta = map[string][]byte{"metadata.json": []byte(`{"start_lsn":67108904,"tablespaces":[{"oid":1}`)}
		}, "metadata.json"},
		{"metadata.json nested", func(b *testBackup) {
			b.meta = map[string][]byte{"metadata.json": []byte(`{"a":{"b":[1,{"c":[]},"}"]},"d":[[],{}]}` + "\n")}
		}, ""},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, g.URL, g.Token("odd"+string(rune('a'+i)), "push", "fetch"), nil)
			b := standardBackup(t, "")
			tc.edit(&b)
			pushBackup(t, c, fetchName, b)
			dir := filepath.Join(t.TempDir(), "pgdata")
			res, err := c.FetchBackup(context.Background(), fetchName, dir, client.RestoreOptions{Concurrency: 1})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Objects != 5 {
					t.Fatalf("%d objects fetched, want 5 (4 tars and metadata.json)", res.Objects)
				}
				checkRestored(t, dir, b.files(), "")
				return
			}
			wantKind(t, tc.what, err, client.ErrIntegrity)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: %v does not say %q", tc.what, err, tc.want)
			}
			absent(t, dir)
		})
	}
}

// Tablespaces go to absolute, distinct directories outside the data
// directory: a relative location, two tablespaces sent to one directory,
// and a location inside, equal to or around the data directory are
// refused before anything is written.
func TestBackupFetchTablespacePlacement(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	root := t.TempDir()
	b := standardBackup(t, "/nonexistent/ts")
	b.parts[0] = append(b.parts[0], member{"/pg_tblspc/16390", nil}, member{"/pg_tblspc/16390/PG_15_202209061", nil},
		member{"/pg_tblspc/16390/PG_15_202209061/x", []byte("second tablespace")})
	b.spcmap += "16390 relative/ts\n"
	pushBackup(t, c, fetchName, b)
	dir := filepath.Join(root, "pgdata")
	moved := filepath.Join(root, "moved")
	for _, tc := range []struct {
		what   string
		places map[string]string
		want   string
	}{
		{"relative location", map[string]string{"16384": moved}, `tablespace 16390 was at "relative/ts", not an absolute path`},
		{"one directory for two", map[string]string{"16384": moved, "16390": moved}, "tablespaces 16384 and 16390 would both go to " + moved},
		{"inside the data directory", map[string]string{"16384": moved, "16390": filepath.Join(dir, "ts")}, "overlaps the data directory"},
		{"the data directory", map[string]string{"16384": moved, "16390": dir}, "overlaps the data directory"},
		{"around the data directory", map[string]string{"16384": root, "16390": moved}, "tablespace 16384 would go to " + root + ", which overlaps"},
	} {
		_, err := c.FetchBackup(context.Background(), fetchName, dir, client.RestoreOptions{Tablespaces: tc.places})
		wantKind(t, tc.what, err, client.ErrRejected)
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v does not say %q", tc.what, err, tc.want)
		}
		absent(t, dir)
		absent(t, moved)
	}
	// A prefix of the data directory's name is no overlap.
	beside := dir + "-ts"
	res, err := c.FetchBackup(context.Background(), fetchName, dir, client.RestoreOptions{Tablespaces: map[string]string{"16384": moved, "16390": beside}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tablespaces) != 2 || res.Tablespaces[0] != (client.RestoredTablespace{OID: "16384", Dir: moved}) ||
		res.Tablespaces[1] != (client.RestoredTablespace{OID: "16390", Dir: beside}) {
		t.Fatalf("tablespaces %+v", res.Tablespaces)
	}
	if got, err := os.ReadFile(filepath.Join(beside, "PG_15_202209061", "x")); err != nil || string(got) != "second tablespace" {
		t.Fatalf("tablespace 16390: %q %v", got, err)
	}
}

// The recovery settings: one target at most, a valid time, no line
// breaks (each refused, leaving nothing); an LSN target with
// --no-archive writes recovery.signal, the target with promote, and
// archive_mode = off, and no tablespace_map for a backup without
// tablespaces. The result counts the objects and their stored bytes.
func TestBackupFetchRecoveryOptions(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	pushBackup(t, c, fetchName, standardBackup(t, ""))
	root := t.TempDir()
	dir := filepath.Join(root, "pgdata")
	const restore = "/usr/bin/walgate-client wal-fetch %f %p"
	for _, tc := range []struct {
		what string
		rs   client.RecoverySettings
		want string
	}{
		{"two targets", client.RecoverySettings{RestoreCommand: restore, TargetTime: "2026-11-25 01:04:00+00", TargetLSN: "0/4000100"}, "not both"},
		{"a bad time", client.RecoverySettings{RestoreCommand: restore, TargetTime: "yesterday"}, "recovery target time"},
		{"a line break", client.RecoverySettings{RestoreCommand: restore + "\nrecovery_target_action = 'shutdown'"}, "line breaks"},
	} {
		_, err := c.FetchBackup(context.Background(), fetchName, dir, client.RestoreOptions{Recovery: &tc.rs})
		wantKind(t, tc.what, err, client.ErrRejected)
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v does not say %q", tc.what, err, tc.want)
		}
		absent(t, dir)
	}
	// A backup without tablespaces names none when asked for one.
	_, err := c.FetchBackup(context.Background(), fetchName, dir, client.RestoreOptions{Tablespaces: map[string]string{"16384": root}})
	wantKind(t, "unknown tablespace", err, client.ErrRejected)
	if !strings.Contains(err.Error(), "the backup has no tablespace 16384 (its tablespaces: none)") {
		t.Fatalf("unknown tablespace: %v", err)
	}
	absent(t, dir)
	res, err := c.FetchBackup(context.Background(), fetchName, dir, client.RestoreOptions{NoArchive: true,
		Recovery: &client.RecoverySettings{RestoreCommand: restore, TargetLSN: "0/4000100"}})
	if err != nil {
		t.Fatal(err)
	}
	readFile(t, filepath.Join(dir, "recovery.signal"))
	absent(t, filepath.Join(dir, "tablespace_map")) // the backup has no tablespace
	auto := string(readFile(t, filepath.Join(dir, "postgresql.auto.conf")))
	for _, w := range []string{"restore_command = '" + restore + "'\n", "recovery_target_lsn = '0/4000100'\n",
		"recovery_target_action = 'promote'\n", "archive_mode = 'off'\n"} {
		if !strings.Contains(auto, w) {
			t.Fatalf("postgresql.auto.conf lacks %q:\n%s", w, auto)
		}
	}
	var stored int64
	objects := 0
	filepath.WalkDir(filepath.Join(g.Data, "store", "db", "basebackups_005", fetchName), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			stored += fi.Size()
			objects++
		}
		return err
	})
	if res.Objects != 4 || objects != 4 || res.StoredBytes != stored {
		t.Fatalf("result: %d objects, %d stored bytes; the store holds %d objects, %d bytes", res.Objects, res.StoredBytes, objects, stored)
	}
}
