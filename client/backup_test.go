package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

const (
	bkName   = "base_000000010000000000000004"
	sentinel = `{"LSN":67108904,"FinishLSN":67109120,"StartTime":"2026-11-25T01:00:00Z","FinishTime":"2026-11-25T01:05:00Z","UncompressedSize":123,"PgVersion":150018,"SystemIdentifier":7711916313960645312,"Hostname":"db1","ChkpNum":null,"Version":2}`
)

func upload(t *testing.T, u *client.BackupUpload, file string, data []byte) {
	t.Helper()
	comp := "none"
	if strings.HasSuffix(file, ".zst") {
		comp = "zstd"
	}
	if _, err := u.Upload(context.Background(), file, comp, "none", bytes.NewReader(data)); err != nil {
		t.Fatalf("upload %s: %v", file, err)
	}
}

// A backup session: invisible until committed, then listed, described
// and fetchable object by object with verified hashes.
func TestBackupSession(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	u, err := c.BeginBackup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	part := randBytes(t, 3<<20)
	upload(t, u, "tar_partitions/part_001.tar.zst", part)
	upload(t, u, "tar_partitions/pg_control.tar.zst", []byte("control"))
	upload(t, u, "metadata.json", []byte(`{"start_lsn":1}`))

	if list, err := c.ListBackups(ctx); err != nil || len(list) != 0 {
		t.Fatalf("open backup listed: %v %v", list, err)
	}
	if _, err := c.Backup(ctx, "LATEST"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("LATEST before commit: %v", err)
	}
	if _, err := c.BeginBackup(ctx, bkName); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("second begin of one name: %v", err)
	}
	sum, err := u.Commit(ctx, []byte(sentinel))
	if err != nil {
		t.Fatal(err)
	}
	if sum.StartLSN != 67108904 || sum.SystemIdentifier != 7711916313960645312 || sum.Timeline != 1 || sum.Kind != "full" {
		t.Fatalf("summary: %+v", sum)
	}
	list, err := c.ListBackups(ctx)
	if err != nil || len(list) != 1 || list[0].Name != bkName {
		t.Fatalf("list: %+v %v", list, err)
	}
	d, err := c.Backup(ctx, "LATEST")
	if err != nil || d.Name != bkName || string(d.Sentinel) != sentinel || len(d.Files) != 3 {
		t.Fatalf("detail: %+v %v", d, err)
	}
	rc, err := c.OpenBackupFile(ctx, bkName, "tar_partitions/part_001.tar.zst", d.Files["tar_partitions/part_001.tar.zst"])
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, part) {
		t.Fatalf("fetched part differs (%d bytes, %v)", len(got), err)
	}
	// The store holds WAL-G's layout, sentinel included.
	assertStore(t, g,
		"db/basebackups_005/"+bkName+"/metadata.json",
		"db/basebackups_005/"+bkName+"/tar_partitions/part_001.tar.zst",
		"db/basebackups_005/"+bkName+"/tar_partitions/pg_control.tar.zst",
		"db/basebackups_005/"+bkName+"_backup_stop_sentinel.json")
	// A committed backup takes no more uploads and cannot be aborted.
	if _, err := u.Upload(ctx, "tar_partitions/part_002.tar.zst", "zstd", "none", strings.NewReader("x")); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("upload after commit: %v", err)
	}
	if err := u.Abort(ctx); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("abort after commit: %v", err)
	}
	// A fetch-only token cannot begin a backup; another cluster's token sees nothing.
	fc := newClient(t, g.URL, g.Token("db", "fetch"), nil)
	if _, err := fc.BeginBackup(ctx, "base_000000010000000000000009"); !errors.Is(err, client.ErrAuth) {
		t.Fatalf("fetch token began a backup: %v", err)
	}
	oc := newClient(t, g.URL, g.Token("other", "push", "fetch"), nil)
	if list, err := oc.ListBackups(ctx); err != nil || len(list) != 0 {
		t.Fatalf("other cluster lists %v %v", list, err)
	}
	// A drill report is kept and shows in the status with the backup.
	if err := c.SendDrillReport(ctx, protocol.DrillReport{Backup: bkName, Passed: true, Finished: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st, err := g.Server.FleetStatus(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var db *gateway.ClusterStatus
	for i := range st {
		if st[i].Cluster == "db" {
			db = &st[i]
		}
	}
	if db == nil || db.Backups != 1 || db.LastBackup != bkName || db.LastBackupS == nil || db.LastBackupS.Name != bkName ||
		db.LastDrill == nil || !db.LastDrill.Passed || db.LastDrillR == nil || db.LastDrillR.Cluster != "db" {
		t.Fatalf("status: %+v", db)
	}
}

func TestBackupAbortAndBadCommit(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)

	u, err := c.BeginBackup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, u, "tar_partitions/part_001.tar.zst", randBytes(t, 100000))
	if err := u.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	assertStore(t, g)

	// The name is free again after an abort.
	u, err = c.BeginBackup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, u, "tar_partitions/part_001.tar.zst", []byte("part"))
	if _, err := u.Commit(ctx, []byte(sentinel)); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("commit without pg_control: %v", err)
	}
	upload(t, u, "tar_partitions/pg_control.tar.zst", []byte("control"))
	if _, err := u.Commit(ctx, []byte(`{"LSN":1}`)); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("commit with an incomplete sentinel: %v", err)
	}
	for _, bad := range []string{"../x", "tar_partitions/../../x", "tar_partitions/part_1.tar.zst", "tar_partitions/evil.tar", "x.json", "tar_partitions/part_001.tar.gz"} {
		if _, err := u.Upload(ctx, bad, "none", "none", strings.NewReader("x")); err == nil {
			t.Errorf("object name %q accepted", bad)
		}
	}
	if _, err := u.Upload(ctx, "metadata.json", "none", "libsodium", strings.NewReader("{}")); !errors.Is(err, client.ErrRejected) {
		t.Errorf("encrypted metadata.json accepted: %v", err)
	}
	if _, err := c.BeginBackup(ctx, "base_../../000000010000000000"); err == nil {
		t.Error("traversing backup name accepted")
	}
	if list, _ := c.ListBackups(ctx); len(list) != 0 {
		t.Fatalf("failed commits made a backup visible: %v", list)
	}
}

// An abandoned session (a client killed mid-backup) is removed with its
// objects after the session timeout.
func TestBackupAbandoned(t *testing.T) {
	ctx := context.Background()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{BackupSessionTimeout: 500 * time.Millisecond}}})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	u, err := c.BeginBackup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, u, "tar_partitions/part_001.tar.zst", randBytes(t, 50000))
	if len(storeFiles(t, g)) != 1 {
		t.Fatal("part not stored")
	}
	assertStore(t, g) // waits up to 5 s for the janitor
	if _, err := u.Commit(ctx, []byte(sentinel)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("commit of an abandoned backup: %v", err)
	}
}
