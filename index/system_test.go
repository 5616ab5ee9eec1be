package index

import (
	"errors"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestClaimSystem(t *testing.T) {
	c, path := openTest(t)
	if _, err := c.System("db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("System of an unknown cluster: %v", err)
	}
	// A cluster with WAL but no record (a catalog from before the record).
	if _, _, err := c.AddWAL("db", walObj("000000010000000000000001", "sha256:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.System("db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("System before any claim: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	first := ClusterSystem{SystemIdentifier: 7711916252778549563, Since: now, Source: "WAL 000000010000000000000002"}
	if got, err := c.ClaimSystem("db", first); err != nil || got != first {
		t.Fatalf("first claim: %+v, %v", got, err)
	}
	other := ClusterSystem{SystemIdentifier: 7711916252778549564, Since: now.Add(time.Hour), Source: "backup base_000000010000000000000009"}
	if got, err := c.ClaimSystem("db", other); err != nil || got != first {
		t.Fatalf("a second system's claim: %+v, %v; want the first record kept", got, err)
	}
	if got, err := c.System("db"); err != nil || got != first {
		t.Fatalf("System: %+v, %v", got, err)
	}
	if _, err := c.ClaimSystem("db", ClusterSystem{Since: now}); err == nil {
		t.Fatal("identifier 0 was claimed")
	}
	// Claims of a fresh cluster race: exactly one wins, and all see it.
	var wg sync.WaitGroup
	got := make([]ClusterSystem, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.ClaimSystem("fresh", ClusterSystem{SystemIdentifier: uint64(100 + i), Since: now})
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] || g.SystemIdentifier < 100 {
			t.Fatalf("racing claims saw different records: %+v", got)
		}
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}

	// The record survives a reopen, and Check finds a damaged one.
	c.Close()
	c2, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := c2.System("db"); err != nil || got != first {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if err := c2.db.Update(func(tx *bolt.Tx) error {
		return clusterBucket(tx, "db").Put(keySystem, []byte(`{"system_identifier":0}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := c2.Check(); err == nil {
		t.Fatal("Check passed a system record without an identifier")
	}
}
