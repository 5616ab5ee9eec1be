package apply_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// catalogOnly records WAL segments from..to of timeline 1 on both
// backends without storing them: copies the catalog knows of and the
// stores lost.
func catalogOnly(t *testing.T, a *archive, cl string, from, to uint64) {
	t.Helper()
	var objs []index.WALObject
	for seg := from; seg <= to; seg++ {
		objs = append(objs, index.WALObject{Name: walName(seg), Key: cl + "/wal_005/" + walName(seg), Backend: "a", Backends: holders, Size: 1,
			SHA256: strings.Repeat("a", 64), ContentID: "sha256:" + strings.Repeat("0", 64), Compression: "none", Encryption: "none",
			StoredAt: time.Now().Add(-2 * time.Hour)})
	}
	if err := a.cat.AddWALBatch(cl, objs); err != nil {
		t.Fatal(err)
	}
}

// A run counts every failed action but reports only the first twenty,
// over all clusters: here cluster db fails 24 moves (WAL 9-20 lost from
// both stores) and cluster other 2; what did work is still done.
func TestFailuresReportedUpToTwenty(t *testing.T) {
	a := newArchive(t)
	catalogOnly(t, a, cluster, 9, 20)
	catalogOnly(t, a, "other", 1, 1)
	var lb []lifecycle.Backend
	for _, n := range holders {
		lb = append(lb, lifecycle.Backend{Name: n, Classes: map[lifecycle.Class]string{lifecycle.Hot: "", lifecycle.Cold: "COLD"}})
	}
	policy := lifecycle.Policy{RetainFull: 1, Tiers: []lifecycle.Tier{{Kind: lifecycle.WAL, After: time.Hour, Class: lifecycle.Cold}}}
	exec := apply.New(apply.Config{Catalog: a.cat, Stores: tieredStores{a.set, policy}, Backends: lb,
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil }})
	res, err := exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const failed = 12*2 + 2
	if res.Done.Failures != failed || len(res.Done.Errors) != 20 || res.Done.Moved != 4*2 || !slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name}) {
		t.Fatalf("done: %d failures, %d errors reported, %d moved, backups deleted %v; want %d, 20, 8, %s",
			res.Done.Failures, len(res.Done.Errors), res.Done.Moved, res.Done.BackupsDeleted, failed, a.old.Name)
	}
	for _, e := range res.Done.Errors {
		if !strings.Contains(e, "set-class") {
			t.Errorf("error %q", e)
		}
	}
}

// A cluster that cannot be planned fails the run, named in its error,
// with nothing done there; the other clusters are still planned and
// applied.
func TestClusterWithoutPlanFailsTheRun(t *testing.T) {
	a := newArchive(t)
	catalogOnly(t, a, "other", 1, 1)
	errNoSize := errors.New("segment size not known")
	exec := apply.New(apply.Config{Catalog: a.cat, Stores: a.set, Backends: mustBackends(t, a),
		SegmentSize: func(cl string) (uint64, error) {
			if cl == "other" {
				return 0, errNoSize
			}
			return 16 << 20, nil
		}})
	res, err := exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "no plan for other ") || strings.Contains(err.Error(), cluster) {
		t.Fatalf("run: %v, want the error to name cluster other alone", err)
	}
	if len(res.Plan.Clusters) != 2 || res.Plan.Clusters[0].Error != "" || res.Plan.Clusters[1].Error != errNoSize.Error() {
		t.Fatalf("plans: %+v", res.Plan.Clusters)
	}
	if !slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name}) || res.Done.Failures != 0 {
		t.Fatalf("cluster %s was not applied: %+v", cluster, res.Done)
	}
	if _, err := a.cat.WAL("other", walName(1)); err != nil {
		t.Fatalf("cluster other's WAL: %v", err)
	}
}

func mustBackends(t *testing.T, a *archive) []lifecycle.Backend {
	t.Helper()
	lb, err := a.set.LifecycleBackends()
	if err != nil {
		t.Fatal(err)
	}
	return lb
}

// Log writes one line per refusal and per failed action, then one for
// the run: planned moves and deletions counted from the steps, the
// monthly costs, what an applied run did, and the run's error at level
// ERROR.
func TestLogSummarisesTheRun(t *testing.T) {
	res := apply.Result{Applied: true,
		Plan: lifecycle.Result{Refusals: []lifecycle.Refusal{{Cluster: "x", Reason: "no full backup"}},
			Before: lifecycle.Cost{Monthly: 1.5}, After: lifecycle.Cost{Monthly: 0.25}},
		Steps: []apply.Step{{Kind: lifecycle.Delete, Count: 3}, {Kind: lifecycle.SetClass, Count: 2}, {Kind: lifecycle.Delete, Count: 4}},
		Done:  apply.Done{Moved: 2, Deleted: 6, BackupsDeleted: []string{"b1"}, Failures: 1, Errors: []string{"x: delete w on a: denied"}}}
	for _, runErr := range []error{nil, errors.New("lifecycle: no plan for y")} {
		var buf bytes.Buffer
		apply.Log(slog.New(slog.NewJSONHandler(&buf, nil)), res, runErr)
		var got []string
		for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			delete(m, "time")
			got = append(got, fmt.Sprint(m))
		}
		run := "map[applied:true backups_deleted:1 deleted:6 failures:1 level:INFO monthly_cost_after:0.25 monthly_cost_before:1.50 moved:2 msg:lifecycle run planned_deletions:7 planned_moves:2]"
		if runErr != nil {
			run = strings.Replace(strings.Replace(run, "level:INFO", "level:ERROR", 1), "deleted:6", "deleted:6 err:"+runErr.Error(), 1)
		}
		want := []string{"map[cluster:x level:WARN msg:lifecycle: deletions refused reason:no full backup]",
			"map[err:x: delete w on a: denied level:WARN msg:lifecycle: action failed]", run}
		if !slices.Equal(got, want) {
			t.Errorf("run error %v, logged:\n%s\nwant\n%s", runErr, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
