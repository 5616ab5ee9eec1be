package apply_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// TestRunHonoursItsOptions: a run limited to one cluster touches no other,
// and a one-off retention (walgate-client delete) replaces the group's
// policy: the group keeps one full backup, the one-off keeps two.
func TestRunHonoursItsOptions(t *testing.T) {
	a := newArchive(t)
	if err := a.cat.AddWALBatch("other", []index.WALObject{{Name: walName(1), Key: "other/wal_005/" + walName(1), Backend: "a",
		Backends: holders, Size: 1, SHA256: strings.Repeat("a", 64), ContentID: "sha256:" + strings.Repeat("0", 64), Compression: "none",
		Encryption: "none", StoredAt: time.Now().Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.exec.Run(context.Background(), apply.Options{Cluster: "nosuch"}, time.Now()); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a run for a cluster the catalog lacks: %+v %v", res.Plan.Clusters, err)
	}
	res, err := a.exec.Run(context.Background(), apply.Options{Cluster: "other"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Clusters) != 1 || res.Plan.Clusters[0].Name != "other" {
		t.Fatalf("a run for cluster other planned: %+v", res.Plan.Clusters)
	}
	res, err = a.exec.Run(context.Background(), apply.Options{Retention: &lifecycle.Policy{RetainFull: 2}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Clusters) != 2 || res.Plan.Clusters[0].Name != cluster || len(res.Plan.Clusters[0].DeletedBackups) != 0 {
		t.Fatalf("keeping two full backups, the plan deletes: %+v", res.Plan.Clusters)
	}
	res, err = a.exec.Run(context.Background(), apply.Options{Cluster: cluster}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Clusters) != 1 || len(res.Plan.Clusters[0].DeletedBackups) != 1 || res.Plan.Clusters[0].DeletedBackups[0] != a.old.Name {
		t.Fatalf("the group's policy (one full backup) plans: %+v", res.Plan.Clusters)
	}
}
