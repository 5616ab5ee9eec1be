package apply_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle/apply"
)

// watchedCatalog is the archive's catalog, recording the size of each
// non-empty batch of WAL changes written to it, and running beforeBackups
// (once) when the executor lists a cluster's backups.
type watchedCatalog struct {
	index.Interface
	mu            sync.Mutex
	walBatches    []int
	beforeBackups func()
}

func (c *watchedCatalog) ApplyWALChanges(cluster string, changes []index.CopyChange) error {
	if len(changes) > 0 {
		c.mu.Lock()
		c.walBatches = append(c.walBatches, len(changes))
		c.mu.Unlock()
	}
	return c.Interface.ApplyWALChanges(cluster, changes)
}

func (c *watchedCatalog) Backups(cluster string, state index.BackupState) ([]index.Backup, error) {
	c.mu.Lock()
	f := c.beforeBackups
	c.beforeBackups = nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return c.Interface.Backups(cluster, state)
}

// An applied run deleting 512 or 513 WAL copies deletes every one of
// them from the stores and the catalog, and writes the catalog in
// batches of at most 512 changes, not one transaction per change: 512
// changes in one batch, 513 in two. The WAL is 1-8 on both backends,
// 9-256 on both, and for 513 changes 257 on backend a alone; the newest
// full backup starts after it, so every WAL copy and both older backups
// go.
func TestWALDeletionsAtTheBatchBoundary(t *testing.T) {
	for _, c := range []struct {
		changes int
		batches []int
	}{{512, []int{512}}, {513, []int{512, 1}}} {
		t.Run(fmt.Sprintf("%d changes", c.changes), func(t *testing.T) {
			a := newArchive(t)
			a.addWAL(t, 9, 256, holders...)
			last := uint64(256)
			if c.changes == 513 {
				last++
				a.addWAL(t, last, last, "a")
			}
			newest := a.addFull(t, 1, last+1, time.Now().Add(-10*time.Minute))
			cat := &watchedCatalog{Interface: a.cat}
			exec := apply.New(apply.Config{Catalog: cat, Stores: a.set, Backends: mustBackends(t, a),
				SegmentSize: func(string) (uint64, error) { return 16 << 20, nil }})
			res, err := exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			const backupObjects = 2 * 4 // two backups: sentinel and 3 files each
			if res.Done.Deleted != backupObjects+c.changes || res.Done.Failures != 0 ||
				!slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name, a.new.Name}) {
				t.Fatalf("done: %+v, want %d WAL copies and backups %s, %s deleted", res.Done, c.changes, a.old.Name, a.new.Name)
			}
			if !slices.Equal(cat.walBatches, c.batches) {
				t.Errorf("WAL changes written in %d batches %v, want %v", len(cat.walBatches), cat.walBatches[:min(4, len(cat.walBatches))], c.batches)
			}
			for seg := uint64(1); seg <= last; seg++ {
				if _, err := a.cat.WAL(cluster, walName(seg)); !errors.Is(err, index.ErrNotFound) {
					t.Errorf("WAL %s is still cataloged: %v", walName(seg), err)
				}
				for _, n := range holders {
					be, _ := a.set.Backend(n)
					if _, err := be.Stat(context.Background(), cluster+"/wal_005/"+walName(seg)); !errors.Is(err, backends.ErrNotFound) {
						t.Errorf("WAL %s on backend %s: %v, want it deleted", walName(seg), n, err)
					}
				}
			}
			if b, err := a.cat.Backup(cluster, newest.Name); err != nil || b.State != index.BackupCommitted {
				t.Fatalf("the newest backup %s: %v %v", newest.Name, b.State, err)
			}
			keys := []string{newest.SentinelKey}
			for _, f := range newest.Files {
				keys = append(keys, f.Key)
			}
			for _, key := range keys {
				for _, n := range holders {
					be, _ := a.set.Backend(n)
					if _, err := be.Stat(context.Background(), key); err != nil {
						t.Errorf("%s on backend %s: %v", key, n, err)
					}
				}
			}
		})
	}
}
