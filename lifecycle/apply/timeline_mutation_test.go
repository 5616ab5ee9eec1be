package apply_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle/apply"
)

// The planner learns a timeline's parent and switch point from the
// catalog's history record: with timeline 2 branching from 1 in segment
// 8, the backups of timeline 1 restore through timeline 2, the plan has
// no warning, and timeline 2's WAL is kept whole.
func TestPlanFollowsTimelineHistory(t *testing.T) {
	a := newArchive(t)
	now := time.Now().UTC()
	id := "sha256:" + hex.EncodeToString(make([]byte, 32))
	objs := []index.WALObject{{Name: "00000002.history", Key: cluster + "/wal_005/00000002.history", Backend: "a", Backends: holders, Size: 1,
		SHA256: hex.EncodeToString(make([]byte, 32)), ContentID: id, Compression: "none", Encryption: "none", StoredAt: now.Add(-time.Hour),
		TimelineParent: 1, SwitchLSN: 8<<24 | 0x100}}
	for seg := uint64(8); seg <= 9; seg++ {
		name := fmt.Sprintf("00000002%016X", seg)
		objs = append(objs, index.WALObject{Name: name, Key: cluster + "/wal_005/" + name, Backend: "a", Backends: holders, Size: 1,
			SHA256: hex.EncodeToString(make([]byte, 32)), ContentID: id, Compression: "none", Encryption: "none", StoredAt: now.Add(-time.Hour)})
	}
	if err := a.cat.AddWALBatch(cluster, objs); err != nil {
		t.Fatal(err)
	}
	res, err := a.exec.Run(context.Background(), apply.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cp := res.Plan.Clusters[0]
	if len(cp.Warnings) != 0 || cp.Refused || cp.Error != "" || cp.WALKeptFrom[1] != walName(5) || cp.WALKeptFrom[2] != "000000020000000000000000" {
		t.Fatalf("plan: %+v", cp)
	}
}

// A backup's timeline is part of the snapshot even before any WAL of it
// is cataloged: the first segment of timeline 2, archived while the run
// reads the catalog (after its timelines, before its WAL), belongs to a
// timeline the plan knows, from the committed backup taken on it. The
// run succeeds: it keeps that segment and the backup of timeline 2, and
// deletes the older backups and timeline 1's WAL, which the newest full
// backup does not need. (A segment of a timeline neither listed nor
// backed up when the run began fails the cluster's plan, nothing done,
// until the next run.)
func TestWALOfABackupsTimelineArchivedDuringTheRun(t *testing.T) {
	a := newArchive(t)
	tl2 := a.addFull(t, 2, 9, time.Now().Add(-10*time.Minute))
	name := fmt.Sprintf("00000002%016X", 9)
	key := cluster + "/wal_005/" + name
	cat := &watchedCatalog{Interface: a.cat, beforeBackups: func() {
		// As a push does, on a goroutine of the run: errors, not t.Fatal.
		body := []byte("segment " + name)
		for _, n := range holders {
			be, _ := a.set.Backend(n)
			if _, err := be.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{}); err != nil {
				t.Error(err)
			}
		}
		sum := sha256.Sum256(body)
		obj := index.WALObject{Name: name, Key: key, Backend: "a", Backends: holders, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]),
			ContentID: "sha256:" + hex.EncodeToString(make([]byte, 32)), Compression: "none", Encryption: "none", StoredAt: time.Now().UTC()}
		if err := a.cat.AddWALBatch(cluster, []index.WALObject{obj}); err != nil {
			t.Error(err)
		}
	}}
	exec := apply.New(apply.Config{Catalog: cat, Stores: a.set, Backends: mustBackends(t, a),
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil }})
	res, err := exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatalf("run: %v (plan %+v)", err, res.Plan.Clusters)
	}
	cp := res.Plan.Clusters[0]
	if cp.Error != "" || cp.Refused || cp.WALKeptFrom[2] != name || res.Done.Failures != 0 ||
		!slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name, a.new.Name}) || res.Done.Deleted != 2*4+8*2 {
		t.Fatalf("plan %+v, done %+v", cp, res.Done)
	}
	if _, err := a.cat.WAL(cluster, name); err != nil {
		t.Errorf("WAL %s: %v", name, err)
	}
	if b, err := a.cat.Backup(cluster, tl2.Name); err != nil || b.State != index.BackupCommitted {
		t.Errorf("backup %s: %v %v", tl2.Name, b.State, err)
	}
	for _, k := range []string{key, tl2.SentinelKey} {
		for _, n := range holders {
			be, _ := a.set.Backend(n)
			if _, err := be.Stat(context.Background(), k); err != nil {
				t.Errorf("%s on backend %s: %v", k, n, err)
			}
		}
	}
	for seg := uint64(1); seg <= 8; seg++ {
		if _, err := a.cat.WAL(cluster, walName(seg)); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("WAL %s of timeline 1 is still cataloged: %v", walName(seg), err)
		}
	}
}
