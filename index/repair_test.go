package index

import "testing"

// One repair entry per object and backend, however often the damage is
// seen; a plain copy of the key already queued becomes the repair; other
// keys and other backends get their own entries.
func TestEnqueueRepairOncePerObject(t *testing.T) {
	c, _ := openTest(t)
	cp := Copy{Backend: "a", Cluster: "db", Kind: CopyWAL, Name: "000000010000000000000001",
		Key: "db/wal_005/000000010000000000000001.zst", Size: 10, SHA256: "x"}
	for i := range 5 {
		added, err := c.EnqueueRepair(cp)
		if err != nil || added != (i == 0) {
			t.Fatalf("repair %d: added %v, %v", i, added, err)
		}
	}
	other := cp
	other.Key, other.Name = "db/wal_005/000000010000000000000002.zst", "000000010000000000000002"
	if err := c.Enqueue([]Copy{other}); err != nil { // a plain replication copy
		t.Fatal(err)
	}
	if added, err := c.EnqueueRepair(other); err != nil || added {
		t.Fatalf("repair of a key already queued: added %v, %v", added, err)
	}
	elsewhere := cp
	elsewhere.Backend = "b"
	if added, err := c.EnqueueRepair(elsewhere); err != nil || !added {
		t.Fatalf("repair on another backend: added %v, %v", added, err)
	}
	q, err := c.Pending("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || !q[0].Repair || !q[1].Repair || q[0].Key != cp.Key || q[1].Key != other.Key {
		t.Fatalf("queue of a: %+v", q)
	}
	if q, _ := c.Pending("b", 0); len(q) != 1 {
		t.Fatalf("queue of b: %+v", q)
	}
}
