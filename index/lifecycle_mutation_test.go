package index

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestCommitQueuesItsReplication: the copies a backup's commit returns are
// queued with it; a committed backup whose replication was never queued
// would stay on one backend for good.
func TestCommitQueuesItsReplication(t *testing.T) {
	c, _ := openTest(t)
	name := "base_000000010000000000000002"
	if err := c.BeginBackup("db", Backup{Name: name, State: BackupOpen, Backend: "a"}); err != nil {
		t.Fatal(err)
	}
	sentinel := Copy{Cluster: "db", Kind: CopySentinel, Name: name, Key: "db/basebackups_005/" + name + "_backup_stop_sentinel.json",
		Size: 10, SHA256: "x", Backend: "b", Enqueued: time.Now().UTC()}
	part := sentinel
	part.Kind, part.File, part.Key = CopyBackupFile, "tar_partitions/part_1.tar.zst", "db/basebackups_005/"+name+"/tar_partitions/part_1.tar.zst"
	partC := part
	partC.Backend = "c"
	if err := c.UpdateBackupCopies("db", name, func(b *Backup) ([]Copy, error) {
		b.State = BackupCommitted
		return []Copy{part, partC, sentinel}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Backup("db", name); err != nil || b.State != BackupCommitted {
		t.Fatalf("after the commit: %+v %v", b, err)
	}
	// Every copy is queued, in order, on its own backend.
	pending, err := c.Pending("b", 0)
	if err != nil || len(pending) != 2 || pending[0].Key != part.Key || pending[1].Key != sentinel.Key {
		t.Fatalf("queued for b: %+v %v", pending, err)
	}
	if first, err := c.Pending("b", 1); err != nil || len(first) != 1 || first[0].Key != part.Key {
		t.Fatalf("first queued for b: %+v %v", first, err)
	}
	if pending, err := c.Pending("c", 0); err != nil || len(pending) != 1 || pending[0].Key != part.Key {
		t.Fatalf("queued for c: %+v %v", pending, err)
	}
	// A failing fn changes nothing and queues nothing.
	boom := errors.New("boom")
	if err := c.UpdateBackupCopies("db", name, func(b *Backup) ([]Copy, error) {
		b.State = BackupDeleting
		return []Copy{sentinel}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if b, _ := c.Backup("db", name); b.State != BackupCommitted {
		t.Fatalf("a failed update changed the record: %s", b.State)
	}
	if pending, _ := c.Pending("b", 0); len(pending) != 2 {
		t.Fatalf("a failed update queued copies: %+v", pending)
	}
}

// TestWALChangesAfterARecordIsDropped: a batch of lifecycle changes that
// drops one WAL record applies the changes after it too, and a copy
// deleted from the primary leaves a primary that still holds the file.
func TestWALChangesAfterARecordIsDropped(t *testing.T) {
	c, _ := openTest(t)
	var objs []WALObject
	for _, name := range []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003"} {
		objs = append(objs, WALObject{Name: name, Key: "db/wal_005/" + name, Backend: "a", Backends: []string{"a", "b"},
			Size: 10, SHA256: "x", ContentID: "y", StoredAt: time.Now().UTC()})
	}
	if err := c.AddWALBatch("db", objs); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyWALChanges("db", []CopyChange{
		{Name: objs[0].Name, Backend: "a", Deleted: true},
		{Name: objs[0].Name, Backend: "b", Deleted: true}, // the record goes
		{Name: objs[1].Name, Backend: "a", Deleted: true}, // the primary's copy goes
		{Name: objs[2].Name, Backend: "b", Deleted: true}, // a replica's copy goes
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WAL("db", objs[0].Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("%s deleted everywhere: %v", objs[0].Name, err)
	}
	o, err := c.WAL("db", objs[1].Name)
	if err != nil || o.Backend != "b" || !slices.Equal(o.Holders(), []string{"b"}) {
		t.Errorf("%s without its primary's copy: %+v %v", objs[1].Name, o, err)
	}
	o, err = c.WAL("db", objs[2].Name)
	if err != nil || o.Backend != "a" || !slices.Equal(o.Holders(), []string{"a"}) {
		t.Errorf("%s without its replica's copy: %+v %v", objs[2].Name, o, err)
	}
}
