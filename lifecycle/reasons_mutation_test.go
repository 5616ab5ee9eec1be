package lifecycle

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A move the PITR window holds back from a rehydration class says so with
// the class and the backend of its own copy, on every backend.
func TestClampedReasonNamesItsBackend(t *testing.T) {
	wal := segments("db", 1, 1, 20, now.Add(-20*day), day, "s3", "az")
	c := Cluster{Name: "db", WAL: WALSlice(wal), Backups: []Backup{backup("db", "base_1", true, "", 1, 1, 1, now.Add(-20*day+time.Hour), "s3")}}
	r := mustPlan(t, []Cluster{c}, Policy{PITRWindow: 14 * day, Tiers: []Tier{{Kind: WAL, After: day, Class: Archive}}})
	archive := map[string]string{"s3": "GLACIER", "az": "Archive"}
	n := 0
	for _, a := range actionsFor(r.Actions, SetClass, "") {
		want := fmt.Sprintf("wal older than %s belongs in archive, but the PITR window needs it and %s needs rehydration on %s: cold", day, archive[a.Backend], a.Backend)
		if a.Reason != want {
			t.Fatalf("%s on %s: reason %q, want %q", a.Object, a.Backend, a.Reason, want)
		}
		n++
	}
	if n != 2*20 {
		t.Errorf("%d moves, want 20 segments on each of two backends", n)
	}
}

// A deleted backup's reason names the retention rules the policy sets,
// and only those.
func TestDeletionReasonNamesOnlyTheRulesSet(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{PITRWindow: 12 * day}, "backup not retained: not needed for the 288h0m0s PITR window, not permanent, not the newest full backup"},
		{Policy{RetainFull: 2}, "backup not retained: not among or built on the newest 2 full backups, not permanent, not the newest full backup"},
	} {
		c, _ := chainCluster()
		r := mustPlan(t, []Cluster{c}, tc.p)
		del := actionsFor(r.Actions, Delete, baseName(1, 1))
		if len(del) == 0 {
			t.Fatalf("%+v: the oldest backup is not deleted", tc.p)
		}
		for _, a := range del {
			if a.Reason != tc.want {
				t.Errorf("%+v: reason %q, want %q", tc.p, a.Reason, tc.want)
			}
		}
	}
}

// A timeline whose history is known raises no warning; one whose history
// is not says which.
func TestUnknownHistoryWarnsOnlyWhenUnknown(t *testing.T) {
	start := now.Add(-40 * day)
	var wal []WALFile
	wal = append(wal, segments("db", 1, 1, 20, start, day, "s3")...)
	wal = append(wal, segments("db", 2, 21, 40, start.Add(20*day), day, "s3")...)
	c := Cluster{Name: "db", WAL: WALSlice(wal), Timelines: []Timeline{{ID: 2, Parent: 1, SwitchLSN: 21*(16<<20) + 100}},
		Backups: []Backup{backup("db", baseName(1, 5), true, "", 1, 5, 5, start.Add(5*day), "s3"),
			backup("db", baseName(2, 30), true, "", 2, 30, 30, start.Add(30*day), "s3")}}
	if w := mustPlan(t, []Cluster{c}, Policy{RetainFull: 2}).Clusters[0].Warnings; len(w) != 0 {
		t.Errorf("known history: warnings %q", w)
	}
	c.Timelines = []Timeline{{ID: 2}}
	want := "timeline 2: the history of timeline 2 is unknown: every lower timeline counts as a possible ancestor"
	if w := mustPlan(t, []Cluster{c}, Policy{RetainFull: 2}).Clusters[0].Warnings; !slices.Contains(w, want) || len(w) != 1 {
		t.Errorf("unknown history: warnings %q, want only %q", w, want)
	}
}
