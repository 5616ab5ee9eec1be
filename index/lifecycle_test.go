package index

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestTimelinesAndWALChanges(t *testing.T) {
	c, _ := openTest(t)
	var objs []WALObject
	add := func(name string, parent uint32, sw uint64) {
		objs = append(objs, WALObject{Name: name, Key: "db/wal_005/" + name, Backend: "a", Backends: []string{"a", "b"},
			Size: 10, SHA256: "x", ContentID: "y", StoredAt: time.Now().UTC(), TimelineParent: parent, SwitchLSN: sw})
	}
	for i := 1; i <= 3; i++ {
		add(fmt.Sprintf("00000001%016X", i), 0, 0)
	}
	add("00000002.history", 1, 0x3000000)
	add("000000020000000000000003", 0, 0)
	add("0000000A0000000000000001", 0, 0) // timeline 10, history not archived
	add("0000000B.history", 10, 0x1000000)
	if err := c.AddWALBatch("db", objs); err != nil {
		t.Fatal(err)
	}
	tls, err := c.Timelines("db")
	if err != nil {
		t.Fatal(err)
	}
	want := []TimelineRecord{{ID: 1}, {ID: 2, Parent: 1, SwitchLSN: 0x3000000, History: true}, {ID: 10}, {ID: 11, Parent: 10, SwitchLSN: 0x1000000, History: true}}
	if !slices.Equal(tls, want) {
		t.Fatalf("timelines %+v, want %+v", tls, want)
	}
	if tls, err := c.Timelines("none"); err != nil || len(tls) != 0 {
		t.Fatalf("unknown cluster: %v %v", tls, err)
	}

	seg1, seg2 := objs[0].Name, objs[1].Name
	if err := c.ApplyWALChanges("db", []CopyChange{
		{Name: seg1, Backend: "a", Class: "STANDARD_IA"},
		{Name: seg1, Backend: "b", Deleted: true},
		{Name: seg2, Backend: "a", Deleted: true},
		{Name: seg2, Backend: "b", Deleted: true},
		{Name: "00000001000000000000FFFF", Backend: "a", Deleted: true}, // not cataloged: ignored
	}); err != nil {
		t.Fatal(err)
	}
	o, err := c.WAL("db", seg1)
	if err != nil || !slices.Equal(o.Holders(), []string{"a"}) || o.Classes["a"] != "STANDARD_IA" {
		t.Fatalf("%s after a class change and one deletion: %+v %v", seg1, o, err)
	}
	if _, err := c.WAL("db", seg2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s deleted from every holder is still cataloged: %v", seg2, err)
	}
	var briefs []string
	if err := c.ListWALBrief("db", func(name string, w WALBrief) error {
		briefs = append(briefs, fmt.Sprintf("%s %v %s", name, w.Holders, w.Classes["a"]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(briefs) != len(objs)-1 || briefs[0] != seg1+" [a] STANDARD_IA" {
		t.Fatalf("brief listing: %q", briefs)
	}

	b := Backup{Name: "base_000000010000000000000002", State: BackupCommitted, Backend: "a", Backends: []string{"a", "b"},
		SentinelKey: "db/basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json",
		Files:       map[string]BackupFile{"tar_partitions/part_001.tar.zst": {Key: "db/basebackups_005/base_000000010000000000000002/tar_partitions/part_001.tar.zst"}}}
	if err := c.BeginBackup("db", b); err != nil {
		t.Fatal(err)
	}
	if err := c.SetBackupClasses("db", b.Name, []CopyChange{{Name: b.SentinelKey, Backend: "b", Class: "Cool"},
		{Name: b.Files["tar_partitions/part_001.tar.zst"].Key, Backend: "a", Class: "STANDARD_IA"}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.MarkBackupDeleting("db", b.Name)
	if err != nil || got.State != BackupDeleting || got.SentinelClasses["b"] != "Cool" || got.Files["tar_partitions/part_001.tar.zst"].Classes["a"] != "STANDARD_IA" {
		t.Fatalf("after class changes and marking: %+v %v", got, err)
	}
	if _, err := c.MarkBackupDeleting("db", b.Name); err != nil {
		t.Fatalf("marking twice: %v", err)
	}
	if list, _ := c.Backups("db", BackupCommitted); len(list) != 0 {
		t.Fatalf("a backup being deleted is listed as committed: %+v", list)
	}
}
