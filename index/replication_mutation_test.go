package index

import (
	"slices"
	"testing"
	"time"
)

// queueWALCopy catalogs a segment of cluster db held by backend a, with
// its copy to backend b queued.
func queueWALCopy(t *testing.T, c *Catalog) WALObject {
	t.Helper()
	seg := walObj("000000010000000000000001", "cid")
	seg.Backend = "a"
	cp := Copy{Backend: "b", Cluster: "db", Kind: CopyWAL, Name: seg.Name, Key: seg.Key, Size: seg.Size, SHA256: seg.SHA256}
	if _, _, err := c.AddWALCopies("db", seg, []Copy{cp}); err != nil {
		t.Fatal(err)
	}
	return seg
}

// TestCompleteCopyRecordsTheHolder: a finished copy leaves the queue and
// its backend becomes a holder of the object; a backup's new holder
// changes the cluster's generation, so views built from the catalog are
// rebuilt.
func TestCompleteCopyRecordsTheHolder(t *testing.T) {
	c, _ := openTest(t)
	seg := queueWALCopy(t, c)
	pending, err := c.Pending("b", 0)
	if err != nil || len(pending) != 1 {
		t.Fatalf("queued: %+v %v", pending, err)
	}
	if err := c.CompleteCopy(pending[0]); err != nil {
		t.Fatal(err)
	}
	if o, err := c.WAL("db", seg.Name); err != nil || !slices.Equal(o.Holders(), []string{"a", "b"}) {
		t.Fatalf("after the copy: %+v %v", o, err)
	}
	if pending, _ := c.Pending("b", 0); len(pending) != 0 {
		t.Fatalf("a finished copy is still queued: %+v", pending)
	}

	name := "base_000000010000000000000002"
	sentinelKey := "db/basebackups_005/" + name + "_backup_stop_sentinel.json"
	if err := c.BeginBackup("db", Backup{Name: name, State: BackupCommitted, Backend: "a", SentinelKey: sentinelKey}); err != nil {
		t.Fatal(err)
	}
	if err := c.Enqueue([]Copy{{Backend: "b", Cluster: "db", Kind: CopySentinel, Name: name, Key: sentinelKey, Enqueued: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	pending, _ = c.Pending("b", 0)
	gen := c.Generation("db")
	if err := c.CompleteCopy(pending[0]); err != nil {
		t.Fatal(err)
	}
	if c.Generation("db") == gen {
		t.Error("a backup's new holder left the cluster's generation unchanged")
	}
	if b, err := c.Backup("db", name); err != nil || !slices.Equal(b.Holders(), []string{"a", "b"}) {
		t.Fatalf("backup after its sentinel's copy: %+v %v", b, err)
	}
}

// TestClusterCreatedOnce: a cluster's creation time is set by its first
// record and kept by the later ones.
func TestClusterCreatedOnce(t *testing.T) {
	c, _ := openTest(t)
	before := time.Now().UTC().Truncate(time.Second)
	if err := c.AddWALBatch("db", []WALObject{walObj("000000010000000000000001", "a")}); err != nil {
		t.Fatal(err)
	}
	created := func() time.Time {
		t.Helper()
		cls, err := c.Clusters()
		if err != nil || len(cls) != 1 || cls[0].Name != "db" {
			t.Fatalf("clusters: %+v %v", cls, err)
		}
		return cls[0].Created
	}
	first := created()
	if first.Before(before) || first.After(time.Now().Add(time.Second)) {
		t.Fatalf("created %v, want about %v", first, before)
	}
	time.Sleep(1100 * time.Millisecond) // the time is kept to the second
	if err := c.AddWALBatch("db", []WALObject{walObj("000000010000000000000002", "b")}); err != nil {
		t.Fatal(err)
	}
	if again := created(); !again.Equal(first) {
		t.Fatalf("created %v after a second record, was %v", again, first)
	}
}
