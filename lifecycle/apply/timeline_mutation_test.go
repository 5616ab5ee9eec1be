package apply_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

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
