package lifecycle

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustPlan(t *testing.T, cs []Cluster, p Policy) Result {
	t.Helper()
	r, err := Plan(cs, testBackends(), p, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWALTiering(t *testing.T) {
	// 40 days of WAL, one segment a day, on s3, azure, gcs and fs.
	wal := segments("db", 1, 1, 40, now.Add(-40*day), day, "s3", "az", "gcs", "local")
	c := Cluster{Name: "db", WAL: WALSlice(wal), Backups: []Backup{backup("db", "base_1", true, "", 1, 1, 1, now.Add(-40*day+time.Hour), "s3")}}
	p := Policy{Tiers: []Tier{{Kind: WAL, After: 7 * day, Class: Warm}, {Kind: WAL, After: 30 * day, Class: Archive}}}
	r := mustPlan(t, []Cluster{c}, p)
	// Segment 1 is 40 days old: archive, with no window allowed anywhere.
	got := map[string]string{}
	for _, a := range actionsFor(r.Actions, SetClass, SegmentName(1, 1, 0)) {
		got[a.Backend] = a.From + "->" + a.To
	}
	want := map[string]string{"s3": "->GLACIER", "az": "->Archive", "gcs": "->ARCHIVE"}
	if len(got) != len(want) {
		t.Fatalf("segment 1: %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("segment 1 on %s: %s, want %s", k, got[k], v)
		}
	}
	// Segment 35 (6 days old) stays hot; segment 20 (21 days) goes warm.
	if n := len(actionsFor(r.Actions, SetClass, SegmentName(1, 35, 0))); n != 0 {
		t.Errorf("young segment moved (%d actions)", n)
	}
	if as := actionsFor(r.Actions, SetClass, SegmentName(1, 20, 0)); len(as) != 3 || !strings.Contains(as[0].Reason, "older than 168h") {
		t.Errorf("segment 20: %+v", as)
	}
	if len(actionsFor(r.Actions, Delete, "")) != 0 {
		t.Error("retention off, yet deletes")
	}
	// Moving again changes nothing: a plan is idempotent once applied.
	applied := apply(t, wal, r.Actions)
	c.WAL = WALSlice(applied)
	if r2 := mustPlan(t, []Cluster{c}, p); len(r2.Actions) != 0 {
		t.Fatalf("second plan: %d actions, first %+v", len(r2.Actions), r2.Actions[0])
	}
}

// apply applies actions to WAL files (tests only).
func apply(t *testing.T, wal []WALFile, as []Action) []WALFile {
	byKey := map[string]map[string]Action{}
	for _, a := range as {
		if byKey[a.Key] == nil {
			byKey[a.Key] = map[string]Action{}
		}
		byKey[a.Key][a.Backend] = a
	}
	var out []WALFile
	for _, f := range wal {
		var cs []Copy
		for _, c := range f.Copies {
			a, ok := byKey[f.Key][c.Backend]
			switch {
			case !ok:
				cs = append(cs, c)
			case a.Kind == SetClass:
				if a.From != c.Class {
					t.Fatalf("%s on %s: action from %q, stored %q", f.Name, c.Backend, a.From, c.Class)
				}
				cs = append(cs, Copy{Backend: c.Backend, Class: a.To})
			}
		}
		if len(cs) > 0 {
			f.Copies = cs
			out = append(out, f)
		}
	}
	return out
}

func TestRehydrationGuard(t *testing.T) {
	// 20 days of WAL; window of 14 days; the WAL tier says archive after 1 day.
	wal := segments("db", 1, 1, 20, now.Add(-20*day), day, "s3", "az", "gcs")
	c := Cluster{Name: "db", WAL: WALSlice(wal), Backups: []Backup{backup("db", "base_1", true, "", 1, 1, 1, now.Add(-20*day+time.Hour), "s3")}}
	p := Policy{Tiers: []Tier{{Kind: WAL, After: day, Class: Archive}, {Kind: BackupData, After: day, Class: Archive}}, PITRWindow: 14 * day}
	r := mustPlan(t, []Cluster{c}, p)
	for _, a := range actionsFor(r.Actions, SetClass, "") {
		if a.To == "GLACIER" || a.To == "Archive" {
			t.Fatalf("moved into a rehydration class inside the window: %+v", a)
		}
		if a.Backend == "s3" && a.To != "GLACIER_IR" || a.Backend == "gcs" && a.To != "ARCHIVE" {
			t.Fatalf("%+v", a)
		}
		if a.Backend == "s3" && !strings.Contains(a.Reason, "needs rehydration") {
			t.Fatalf("clamped move without saying why: %s", a.Reason)
		}
	}
	p.AllowRehydrationInWindow = true
	r = mustPlan(t, []Cluster{c}, p)
	if as := actionsFor(r.Actions, SetClass, SegmentName(1, 5, 0)); len(as) != 3 {
		t.Fatalf("%+v", as)
	} else {
		for _, a := range as {
			if a.Backend == "s3" && a.To != "GLACIER" {
				t.Fatalf("allowed, yet %+v", a)
			}
		}
	}
}

// chainCluster: fulls every 10 days (segments 1, 11, 21, 31), a delta after
// each at +5 days, a segment a day, on s3.
func chainCluster() (Cluster, []WALFile) {
	start := now.Add(-40 * day)
	wal := segments("db", 1, 1, 40, start, day, "s3")
	var bs []Backup
	for i := uint64(0); i < 4; i++ {
		f := 1 + 10*i
		bs = append(bs, backup("db", baseName(1, f), true, "", 1, f, f, start.Add(time.Duration(f-1)*day+time.Hour), "s3"))
		d := f + 5
		bs = append(bs, backup("db", baseName(1, d)+"_D_"+SegmentName(1, f, 0), false, baseName(1, f), 1, d, d, start.Add(time.Duration(d-1)*day+time.Hour), "s3"))
	}
	return Cluster{Name: "db", Backups: bs, WAL: WALSlice(wal)}, wal
}

func TestRetainFull(t *testing.T) {
	c, _ := chainCluster()
	r := mustPlan(t, []Cluster{c}, Policy{RetainFull: 2})
	cp := r.Clusters[0]
	if len(cp.Retained) != 4 || len(cp.DeletedBackups) != 4 {
		t.Fatalf("retained %+v deleted %v", cp.Retained, cp.DeletedBackups)
	}
	for _, name := range cp.DeletedBackups {
		if !strings.HasPrefix(name, baseName(1, 1)) && !strings.HasPrefix(name, baseName(1, 6)) &&
			!strings.HasPrefix(name, baseName(1, 11)) && !strings.HasPrefix(name, baseName(1, 16)) {
			t.Errorf("deleted %s", name)
		}
	}
	// WAL before segment 21 (start of the oldest retained full) goes.
	if cp.WALDeleted != 20 || cp.WALKeptFrom[1] != SegmentName(1, 21, 0) {
		t.Fatalf("WAL deleted %d, kept from %s", cp.WALDeleted, cp.WALKeptFrom[1])
	}
	del := actionsFor(r.Actions, Delete, baseName(1, 1))
	if len(del) != 3 || !strings.HasSuffix(del[0].Key, "_backup_stop_sentinel.json") {
		t.Fatalf("a backup's sentinel goes first: %+v", del)
	}
	if as := actionsFor(r.Actions, Delete, SegmentName(1, 3, 0)); len(as) != 1 || !strings.Contains(as[0].Reason, "oldest retained backup") {
		t.Fatalf("%+v", as)
	}
}

func TestNewestFullNeverDeleted(t *testing.T) {
	c, _ := chainCluster()
	// A one-day window: the anchor is the delta at segment 36, built on the
	// full at 31, which is the newest full anyway; but with only old fulls:
	c.Backups = c.Backups[:1] // one full, 40 days old
	r := mustPlan(t, []Cluster{c}, Policy{PITRWindow: day})
	if len(r.Clusters[0].DeletedBackups) != 0 || len(r.Clusters[0].Retained) != 1 {
		t.Fatalf("%+v", r.Clusters[0])
	}
	if r.Clusters[0].WALDeleted != 0 {
		t.Fatal("WAL of the only backup deleted")
	}
}

func TestPITRWindowKeepsAnchorChain(t *testing.T) {
	c, _ := chainCluster()
	// Window 12 days: starts at day 28 (segment 29's time); the anchor is
	// the delta at 26 built on the full at 21.
	r := mustPlan(t, []Cluster{c}, Policy{PITRWindow: 12 * day})
	cp := r.Clusters[0]
	kept := map[string][]string{}
	for _, k := range cp.Retained {
		kept[k.Name] = k.Reasons
	}
	delta26 := baseName(1, 26) + "_D_" + SegmentName(1, 21, 0)
	if _, ok := kept[delta26]; !ok {
		t.Fatalf("anchor missing: %v", kept)
	}
	if rs := kept[baseName(1, 21)]; len(rs) == 0 || !strings.Contains(strings.Join(rs, ";"), "chain of "+delta26) {
		t.Fatalf("anchor's full: %v", rs)
	}
	// The chain parent pins only its own WAL; the anchor pins from 26 on.
	if cp.WALKeptFrom[1] != SegmentName(1, 26, 0) {
		t.Fatalf("kept from %s", cp.WALKeptFrom[1])
	}
	for _, a := range actionsFor(r.Actions, Delete, SegmentName(1, 21, 0)) {
		if a.Object == SegmentName(1, 21, 0) {
			t.Fatal("deleted the WAL the anchor's full needs")
		}
	}
}

func TestPermanentPinsItsWAL(t *testing.T) {
	c, _ := chainCluster()
	c.Backups[0].Permanent = true
	c.Backups[0].FinishSegment = 3
	r := mustPlan(t, []Cluster{c}, Policy{RetainFull: 1})
	cp := r.Clusters[0]
	if len(actionsFor(r.Actions, Delete, baseName(1, 1))) != 0 {
		t.Fatal("permanent backup deleted")
	}
	for n := uint64(1); n <= 3; n++ {
		if len(actionsOn(r.Actions, Delete, SegmentName(1, n, 0))) != 0 {
			t.Fatalf("segment %d of the permanent backup deleted", n)
		}
	}
	if len(actionsOn(r.Actions, Delete, SegmentName(1, 4, 0))) != 1 || cp.WALDeleted != 30-3 {
		t.Fatalf("WAL after the permanent backup's finish kept: %d deleted", cp.WALDeleted)
	}
}

func TestGuardRails(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Cluster)
		want string
	}{
		{"pending", func(c *Cluster) { c.PendingReplication = 3 }, "3 copies are still to be replicated"},
		{"disagree", func(c *Cluster) { c.Disagreement = "s3 lacks 2 objects" }, "s3 lacks 2 objects"},
	} {
		c, _ := chainCluster()
		tc.set(&c)
		r := mustPlan(t, []Cluster{c}, Policy{RetainFull: 1, Tiers: []Tier{{Kind: WAL, After: day, Class: Warm}}})
		if len(actionsFor(r.Actions, Delete, "")) != 0 {
			t.Errorf("%s: deletes", tc.name)
		}
		if len(r.Refusals) != 1 || !strings.Contains(r.Refusals[0].Reason, tc.want) || !strings.Contains(r.Refusals[0].Reason, "would delete 6 backups") {
			t.Errorf("%s: refusals %+v", tc.name, r.Refusals)
		}
		if len(actionsFor(r.Actions, SetClass, "")) == 0 {
			t.Errorf("%s: tiering stopped too", tc.name)
		}
		if r.Before.Bytes[Hot] != r.After.Bytes[Hot]+r.After.Bytes[Warm] {
			t.Errorf("%s: refused deletes still counted as savings: %+v %+v", tc.name, r.Before, r.After)
		}
	}
}

func TestTimelines(t *testing.T) {
	// Timeline 1: segments 1..20; promotion in segment 21 (21.partial on
	// timeline 1), timeline 2 from 21 to 40. Backups: full on 1 at 5, full
	// on 2 at 30.
	start := now.Add(-40 * day)
	var wal []WALFile
	wal = append(wal, segments("db", 1, 1, 20, start, day, "s3")...)
	wal = append(wal, partialFile("db", 1, 21, start.Add(20*day), "s3"), historyFile("db", 2, start.Add(20*day), "s3"))
	wal = append(wal, segments("db", 2, 21, 40, start.Add(20*day), day, "s3")...)
	c := Cluster{Name: "db", WAL: WALSlice(wal), Timelines: []Timeline{{ID: 2, Parent: 1, SwitchLSN: 21*(16<<20) + 100}},
		Backups: []Backup{backup("db", baseName(1, 5), true, "", 1, 5, 5, start.Add(5*day), "s3"),
			backup("db", baseName(2, 30), true, "", 2, 30, 30, start.Add(30*day), "s3")}}
	r := mustPlan(t, []Cluster{c}, Policy{RetainFull: 1})
	cp := r.Clusters[0]
	// Timeline 1 entirely, with its partial, and timeline 2 before 30 go;
	// the history file stays.
	if cp.WALKeptFrom[1] != "none" || cp.WALKeptFrom[2] != SegmentName(2, 30, 0) || cp.WALDeleted != 21+9 {
		t.Fatalf("%+v", cp)
	}
	if len(actionsFor(r.Actions, Delete, ".history")) != 0 {
		t.Fatal("history file deleted")
	}
	// With both retained, timeline 1 from 5 and all of timeline 2 stay.
	r = mustPlan(t, []Cluster{c}, Policy{RetainFull: 2})
	if cp := r.Clusters[0]; cp.WALKeptFrom[1] != SegmentName(1, 5, 0) || cp.WALKeptFrom[2] != SegmentName(2, 0, 0) || cp.WALDeleted != 4 {
		t.Fatalf("%+v", cp)
	}
	// A timeline missing from the list fails the plan.
	c.Timelines = nil
	if _, err := Plan([]Cluster{c}, testBackends(), Policy{RetainFull: 1}, now); err == nil || !strings.Contains(err.Error(), "timeline 2") {
		t.Fatalf("unlisted timeline: %v", err)
	}
	// Without timeline 2's history, timeline 1 may be its ancestor: a
	// backup on 1 keeps all of 2; one on 2 only keeps 2 from its start.
	c.Timelines = []Timeline{{ID: 2}}
	r = mustPlan(t, []Cluster{c}, Policy{RetainFull: 1})
	if cp := r.Clusters[0]; cp.WALKeptFrom[2] != SegmentName(2, 30, 0) || cp.WALKeptFrom[1] != "none" || len(cp.Warnings) == 0 {
		t.Fatalf("%+v", cp)
	}
	r = mustPlan(t, []Cluster{c}, Policy{RetainFull: 2})
	if cp := r.Clusters[0]; cp.WALKeptFrom[2] != SegmentName(2, 0, 0) || cp.WALKeptFrom[1] != SegmentName(1, 5, 0) {
		t.Fatalf("%+v", cp)
	}
	// A 12-day window: the backup on 2 finished inside it; the one on 1
	// could anchor it only through timeline 2's history, which is
	// unknown: so no backup anchors the window and every backup is kept.
	r = mustPlan(t, []Cluster{c}, Policy{PITRWindow: 12 * day})
	if cp := r.Clusters[0]; len(cp.Retained) != 2 || cp.WALKeptFrom[1] != SegmentName(1, 5, 0) {
		t.Fatalf("%+v", cp)
	}
	// A 5-day window: the backup on 2 anchors it.
	r = mustPlan(t, []Cluster{c}, Policy{PITRWindow: 5 * day})
	if cp := r.Clusters[0]; len(cp.Retained) != 1 || cp.Retained[0].Name != baseName(2, 30) {
		t.Fatalf("%+v", cp)
	}
}

func TestCost(t *testing.T) {
	wal := segments("db", 1, 1, 10, now.Add(-10*day), day, "s3", "local")
	c := Cluster{Name: "db", WAL: WALSlice(wal), Backups: []Backup{backup("db", "base_1", true, "", 1, 1, 1, now.Add(-10*day), "s3")}}
	p := Policy{Tiers: []Tier{{Kind: WAL, After: 5 * 24 * time.Hour, Class: Warm}}, Prices: map[Class]float64{Hot: 0.023, Warm: 0.0125}}
	r := mustPlan(t, []Cluster{c}, p)
	walBytes := int64(10 * 4 << 20)
	backupBytes := int64(1<<30 + 2<<10)
	if r.Before.Bytes[Hot] != 2*walBytes+backupBytes {
		t.Fatalf("before %+v", r.Before)
	}
	// Segments 1..6 (5+ days old) on s3 go warm; fs has no classes.
	if r.After.Bytes[Warm] != 6*(4<<20) || r.After.Monthly >= r.Before.Monthly {
		t.Fatalf("after %+v before %+v", r.After, r.Before)
	}
	if moves := len(actionsFor(r.Actions, SetClass, "")); r.Clusters[0].Moves != moves {
		t.Errorf("plan counts %d moves, emitted %d", r.Clusters[0].Moves, moves)
	}
	// The monthly price is per GiB.
	gib := float64(int64(1) << 30)
	want := float64(2*walBytes+backupBytes) / gib * 0.023
	// Compared so that NaN fails too (a price of 0 divided into 0 bytes).
	if !(math.Abs(r.Before.Monthly-want) <= 1e-9) {
		t.Errorf("monthly cost before %v, want %v", r.Before.Monthly, want)
	}
	want = float64(r.After.Bytes[Hot])/gib*0.023 + float64(6*(4<<20))/gib*0.0125
	if !(math.Abs(r.After.Monthly-want) <= 1e-9) {
		t.Errorf("monthly cost after %v, want %v", r.After.Monthly, want)
	}
}

// TestBrokenChainWarns: a delta whose parent is gone is reported, naming
// the last backup of the chain that is there.
func TestBrokenChainWarns(t *testing.T) {
	c, _ := chainCluster()
	var bs []Backup
	for _, b := range c.Backups {
		if b.Name != baseName(1, 31) { // the full the newest delta needs
			bs = append(bs, b)
		}
	}
	c.Backups = bs
	delta := baseName(1, 36) + "_D_" + SegmentName(1, 31, 0)
	// Keeping the newest backup keeps the delta, whose chain breaks.
	r := mustPlan(t, []Cluster{c}, Policy{RetainBackups: 1})
	want := "backup " + delta + " cannot be restored: its delta chain is broken after " + delta
	if !slices.Contains(r.Clusters[0].Warnings, want) {
		t.Errorf("warnings %q; want %q", r.Clusters[0].Warnings, want)
	}
}

func TestPlanRejectsBadInput(t *testing.T) {
	if _, err := Plan(nil, testBackends(), Policy{RetainFull: -1}, now); err == nil {
		t.Fatal("invalid policy accepted")
	}
	b := testBackends()
	if _, err := Plan(nil, append(b, b[0]), Policy{}, now); err == nil {
		t.Fatal("duplicate backend accepted")
	}
}

func TestNewestTimelineWithoutBackupKept(t *testing.T) {
	// Timeline 2 branched from 1 at 10 and has a full; timeline 3 branched
	// from 1 at 5 (a restore to an older point) and has none yet.
	start := now.Add(-30 * day)
	var wal []WALFile
	wal = append(wal, segments("db", 1, 1, 12, start, day, "s3")...)
	wal = append(wal, segments("db", 2, 10, 20, start.Add(10*day), day, "s3")...)
	wal = append(wal, segments("db", 3, 5, 14, start.Add(20*day), day, "s3")...)
	c := Cluster{Name: "db", WAL: WALSlice(wal),
		Timelines: []Timeline{{ID: 2, Parent: 1, SwitchLSN: 10 * (16 << 20)}, {ID: 3, Parent: 1, SwitchLSN: 5 * (16 << 20)}},
		Backups:   []Backup{backup("db", baseName(2, 15), true, "", 2, 15, 15, start.Add(15*day), "s3")}}
	r := mustPlan(t, []Cluster{c}, Policy{RetainFull: 1})
	cp := r.Clusters[0]
	if cp.WALKeptFrom[3] != "" || cp.WALKeptFrom[1] != "none" || cp.WALKeptFrom[2] != SegmentName(2, 15, 0) {
		t.Fatalf("%+v", cp.WALKeptFrom)
	}
	if !strings.Contains(strings.Join(cp.Warnings, ";"), "timeline 3 is the newest") {
		t.Fatalf("%v", cp.Warnings)
	}
}

// The one-off deletions of walgate-client: delete retain N and delete
// before NAME.
func TestRetainBackupsAndKeepFrom(t *testing.T) {
	old := []string{baseName(1, 1), baseName(1, 6), baseName(1, 11), baseName(1, 16)}
	check := func(name string, p Policy, walDeleted int) {
		t.Helper()
		c, _ := chainCluster()
		cp := mustPlan(t, []Cluster{c}, p).Clusters[0]
		if len(cp.DeletedBackups) != 4 {
			t.Fatalf("%s: deleted %v", name, cp.DeletedBackups)
		}
		for i, d := range cp.DeletedBackups {
			if !strings.HasPrefix(d, old[i]) {
				t.Errorf("%s: deleted %s", name, d)
			}
		}
		if cp.WALDeleted != walDeleted {
			t.Errorf("%s: %d WAL files deleted, want %d", name, cp.WALDeleted, walDeleted)
		}
	}
	// The newest three: the delta at 26 (with its full at 21, whose own
	// WAL stays), the full at 31 and its delta at 36.
	check("retain 3", Policy{RetainBackups: 3}, 24)
	check("before 21", Policy{KeepFrom: baseName(1, 21)}, 20)

	c, _ := chainCluster()
	cp := mustPlan(t, []Cluster{c}, Policy{KeepFrom: "base_000000010000000000000099"}).Clusters[0]
	if len(cp.DeletedBackups) != 0 || cp.WALDeleted != 0 || len(cp.Warnings) == 0 {
		t.Fatalf("an unknown backup name must keep everything: %+v", cp)
	}
}

// TestRefusedPlanDeletesNothing is the planner's side of the guard rails
// with every store healthy: a refused cluster's plan emits no deletion
// (the executor only ever deletes what it is given), says Refused, and
// still lists what would have gone, exactly what the same cluster without
// the guard rail deletes. That last part tells a refusal from a plan that
// merely has nothing to delete.
func TestRefusedPlanDeletesNothing(t *testing.T) {
	policy := Policy{RetainFull: 1, Tiers: []Tier{{Kind: WAL, After: day, Class: Warm}}}
	noFull := func(c *Cluster) {
		// Only the deltas of the newest chain are left, their full gone.
		var bs []Backup
		for _, b := range c.Backups {
			if !b.Full {
				bs = append(bs, b)
			}
		}
		c.Backups = bs
	}
	for _, tc := range []struct {
		name  string
		guard func(*Cluster)
		clear func(*Cluster) // the same cluster without the guard rail
		want  string
	}{
		{"pending replication", func(c *Cluster) { c.PendingReplication = 1 }, func(*Cluster) {}, "1 copies are still to be replicated"},
		{"disagreement", func(c *Cluster) { c.Disagreement = "az lacks 1 object" }, func(*Cluster) {}, "az lacks 1 object"},
		{"no full backup", noFull, nil, "no full backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := chainCluster()
			// Two copies of every backup object, so that the bytes that
			// stay count each copy.
			for i := range c.Backups {
				for j := range c.Backups[i].Objects {
					o := &c.Backups[i].Objects[j]
					o.Copies = append(o.Copies, Copy{Backend: "az"})
				}
			}
			tc.guard(&c)
			var emitted []Action
			r, err := PlanStream(func(yield func(Cluster) bool) { yield(c) }, testBackends(), policy, now,
				func(a Action) { emitted = append(emitted, a) })
			if err != nil {
				t.Fatal(err)
			}
			cp := r.Clusters[0]
			if del := actionsFor(emitted, Delete, ""); len(del) != 0 {
				t.Fatalf("refused plan emitted %d deletions, the first %+v", len(del), del[0])
			}
			if !cp.Refused || len(r.Refusals) != 1 || r.Refusals[0].Cluster != "db" || !strings.Contains(r.Refusals[0].Reason, tc.want) {
				t.Fatalf("refused %v, refusals %+v; want one for db naming %q", cp.Refused, r.Refusals, tc.want)
			}
			if len(actionsFor(emitted, SetClass, "")) == 0 {
				t.Error("tiering stopped too")
			}
			if len(cp.DeletedBackups) == 0 && cp.WALDeleted == 0 {
				t.Fatal("the refused plan would delete nothing: the guard rail is not what stopped anything")
			}
			// The reason counts the bytes that stay: WAL and every copy of
			// the backups' objects.
			bytes := cp.WALDeletedBytes
			for _, b := range c.Backups {
				if slices.Contains(cp.DeletedBackups, b.Name) {
					for _, o := range b.Objects {
						bytes += o.Size * int64(len(o.Copies))
					}
				}
			}
			if want := fmt.Sprintf("would delete %d backups and %d WAL files, %d bytes", len(cp.DeletedBackups), cp.WALDeleted, bytes); !strings.Contains(r.Refusals[0].Reason, want) {
				t.Errorf("refusal %q does not say %q", r.Refusals[0].Reason, want)
			}
			if tc.clear == nil {
				return
			}
			open := c
			tc.clear(&open)
			open.PendingReplication, open.Disagreement = 0, ""
			ro := mustPlan(t, []Cluster{open}, policy)
			op := ro.Clusters[0]
			if op.Refused || len(ro.Refusals) != 0 {
				t.Fatalf("without the guard rail: refusals %+v", ro.Refusals)
			}
			if !slices.Equal(cp.DeletedBackups, op.DeletedBackups) || cp.WALDeleted != op.WALDeleted {
				t.Errorf("refused plan lists %v and %d WAL files as what would go; without the guard rail %v and %d go",
					cp.DeletedBackups, cp.WALDeleted, op.DeletedBackups, op.WALDeleted)
			}
			if n := len(actionsFor(ro.Actions, Delete, "")); n == 0 {
				t.Error("without the guard rail nothing is deleted either")
			}
		})
	}
}

// TestGuardRailWithNothingToDelete: a guard rail that stops nothing is no
// refusal: the plan is not marked refused and no refusal is reported.
func TestGuardRailWithNothingToDelete(t *testing.T) {
	c, _ := chainCluster()
	c.PendingReplication = 2
	// Keeping every full backup keeps every backup and the WAL from the
	// oldest on: nothing to delete.
	r := mustPlan(t, []Cluster{c}, Policy{RetainFull: 4})
	cp := r.Clusters[0]
	if len(cp.DeletedBackups) != 0 || cp.WALDeleted != 0 {
		t.Fatalf("the plan would delete %v and %d WAL files; want nothing", cp.DeletedBackups, cp.WALDeleted)
	}
	if cp.Refused || len(r.Refusals) != 0 {
		t.Errorf("refused %v, refusals %+v; want none", cp.Refused, r.Refusals)
	}
}
