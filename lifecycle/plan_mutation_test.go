package lifecycle

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// movedTo is the class the plan moves object's copy on backend to ("" when
// it is not moved); more than one move of the same copy fails the test.
func movedTo(t *testing.T, as []Action, object, backend string) string {
	t.Helper()
	to := ""
	for _, a := range actionsOn(as, SetClass, object) {
		if a.Backend != backend {
			continue
		}
		if to != "" {
			t.Fatalf("%s on %s moved twice: to %s and %s", object, backend, to, a.To)
		}
		to = a.To
	}
	return to
}

// A backup's metadata (metadata.json and the sentinel) follows the
// metadata rules, its data the backup rules: each by its own kind.
func TestMetadataTieredByItsOwnRules(t *testing.T) {
	b := backup("db", "base_1", true, "", 1, 1, 1, now.Add(-40*day), "s3")
	c := Cluster{Name: "db", Backups: []Backup{b}}
	for _, tc := range []struct {
		name           string
		tiers          []Tier
		data, metadata string // s3 class names, "" = not moved
	}{
		{"data only", []Tier{{Kind: BackupData, After: 7 * day, Class: Cold}}, "GLACIER_IR", ""},
		{"metadata only", []Tier{{Kind: Metadata, After: 7 * day, Class: Warm}}, "", "STANDARD_IA"},
		{"each its own", []Tier{{Kind: BackupData, After: 7 * day, Class: Cold}, {Kind: Metadata, After: 7 * day, Class: Warm}}, "GLACIER_IR", "STANDARD_IA"},
	} {
		r := mustPlan(t, []Cluster{c}, Policy{Tiers: tc.tiers})
		got := map[string]string{}
		for _, a := range actionsOn(r.Actions, SetClass, "base_1") {
			got[a.Key[strings.LastIndex(a.Key, "/")+1:]] = a.To
		}
		want := map[string]string{}
		for _, o := range b.Objects {
			to := tc.data
			if o.Kind == Metadata {
				to = tc.metadata
			}
			if to != "" {
				want[o.Key[strings.LastIndex(o.Key, "/")+1:]] = to
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: moves %v, want %v", tc.name, got, want)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s to %q, want %q", tc.name, k, got[k], v)
			}
		}
	}
}

// Without a backup, the newest timeline's WAL is all kept and all of it
// may serve the PITR window: none of it goes into a class that needs
// rehydration, however old.
func TestWindowCoversTheNewestTimelineWithoutBackups(t *testing.T) {
	wal := segments("db", 1, 1, 20, now.Add(-20*day), day, "s3")
	c := Cluster{Name: "db", WAL: WALSlice(wal)}
	r := mustPlan(t, []Cluster{c}, Policy{PITRWindow: 5 * day, Tiers: []Tier{{Kind: WAL, After: day, Class: Archive}}})
	for n := uint64(1); n <= 19; n++ { // segment 20 is younger than a day
		if to := movedTo(t, r.Actions, SegmentName(1, n, 0), "s3"); to != "GLACIER_IR" {
			t.Errorf("segment %d (%d days old) to %q, want GLACIER_IR: the window may need it", n, 20-n, to)
		}
	}
	if cp := r.Clusters[0]; cp.WALDeleted != 0 || cp.WALKeptFrom[1] != "" {
		t.Errorf("WAL deleted %d, kept from %q; want all kept", cp.WALDeleted, cp.WALKeptFrom[1])
	}
}

// windowTimelines: timeline 1 from segment 1 (40 days ago) to 20,
// promotion in segment 21 twenty days ago, timeline 2 from 21 to 40 (the
// newest a day old). A full backup on timeline 1 at segment 5 (35 days
// ago) and one on timeline 2 at 30 (10 days ago). Timeline 1's partial
// segment 21 was archived late, two days ago.
func windowTimelines() Cluster {
	start := now.Add(-40 * day)
	var wal []WALFile
	wal = append(wal, segments("db", 1, 1, 20, start, day, "s3")...)
	wal = append(wal, partialFile("db", 1, 21, now.Add(-2*day), "s3"), historyFile("db", 2, start.Add(20*day), "s3"))
	wal = append(wal, segments("db", 2, 21, 40, start.Add(20*day), day, "s3")...)
	return Cluster{Name: "db", WAL: WALSlice(wal), Timelines: []Timeline{{ID: 2, Parent: 1, SwitchLSN: 21*(16<<20) + 100}},
		Backups: []Backup{backup("db", baseName(1, 5), true, "", 1, 5, 5, start.Add(5*day), "s3"),
			backup("db", baseName(2, 30), true, "", 2, 30, 30, start.Add(30*day), "s3")}}
}

// The PITR window shields from rehydration classes exactly what recovery
// into the window reads: on the newest timeline the WAL from the anchor's
// start on, and the anchor itself; WAL stored inside the window wherever
// it is. The rest of the WAL, an older timeline's included, and backups
// the window does not need may go to the archive class.
func TestWindowShieldsOnlyWhatItNeeds(t *testing.T) {
	p := Policy{PITRWindow: 5 * day, RetainFull: 2, Tiers: []Tier{{Kind: WAL, After: day, Class: Archive}, {Kind: BackupData, After: day, Class: Archive}}}
	r := mustPlan(t, []Cluster{windowTimelines()}, p)
	cp := r.Clusters[0]
	if len(cp.DeletedBackups) != 0 || cp.WALKeptFrom[1] != SegmentName(1, 5, 0) || cp.WALKeptFrom[2] != SegmentName(2, 0, 0) {
		t.Fatalf("deleted %v, WAL kept from %v", cp.DeletedBackups, cp.WALKeptFrom)
	}
	want := map[string]string{
		SegmentName(1, 5, 0):               "GLACIER", // timeline 1: no window backup restores through it
		SegmentName(1, 20, 0):              "GLACIER",
		SegmentName(1, 21, 0) + ".partial": "GLACIER_IR", // stored inside the window
		SegmentName(2, 21, 0):              "GLACIER",    // before the anchor's start
		SegmentName(2, 29, 0):              "GLACIER",
		SegmentName(2, 30, 0):              "GLACIER_IR", // from the anchor's start on
		SegmentName(2, 39, 0):              "GLACIER_IR",
	}
	for name, class := range want {
		if to := movedTo(t, r.Actions, name, "s3"); to != class {
			t.Errorf("%s to %q, want %q", name, to, class)
		}
	}
	for _, a := range actionsFor(r.Actions, SetClass, "") {
		if a.Concerns != ConcernsBackup || !strings.HasSuffix(a.Key, ".tar.zst") {
			continue
		}
		want := "GLACIER" // the older full: kept by the count, not by the window
		if a.Object == baseName(2, 30) {
			want = "GLACIER_IR" // the window's anchor
		}
		if a.To != want {
			t.Errorf("backup %s to %s, want %s", a.Object, a.To, want)
		}
	}
	if n := len(actionsFor(r.Actions, SetClass, "base_")); n != 2 {
		t.Errorf("%d backup objects moved, want the two tars", n)
	}
}

// A backup that finished in the segment where the newest timeline branched
// off its own cannot anchor the PITR window: the older backup on the same
// timeline does, and the one in the switch segment goes.
func TestBackupInTheSwitchSegmentDoesNotAnchor(t *testing.T) {
	start := now.Add(-40 * day)
	var wal []WALFile
	wal = append(wal, segments("db", 1, 1, 20, start, day, "s3")...)
	wal = append(wal, segments("db", 2, 21, 40, start.Add(20*day), day, "s3")...)
	inSwitch := backup("db", baseName(1, 19), true, "", 1, 19, 21, start.Add(21*day), "s3")
	c := Cluster{Name: "db", WAL: WALSlice(wal), Timelines: []Timeline{{ID: 2, Parent: 1, SwitchLSN: 21*(16<<20) + 100}},
		Backups: []Backup{backup("db", baseName(1, 5), true, "", 1, 5, 5, start.Add(5*day), "s3"), inSwitch,
			backup("db", baseName(2, 38), true, "", 2, 38, 38, now.Add(-2*day), "s3")}}
	cp := mustPlan(t, []Cluster{c}, Policy{PITRWindow: 5 * day}).Clusters[0]
	if !slices.Equal(cp.DeletedBackups, []string{inSwitch.Name}) {
		t.Fatalf("deleted %v, want only %s; retained %+v", cp.DeletedBackups, inSwitch.Name, cp.Retained)
	}
	if cp.WALKeptFrom[1] != SegmentName(1, 5, 0) {
		t.Errorf("timeline 1 kept from %q, want the anchor's start", cp.WALKeptFrom[1])
	}
}

// Every action says whether its object is a WAL file or a backup (the
// executor records a move in the catalog's WAL or in the backup by it),
// and names that file or backup.
func TestActionsSayWhatTheyConcern(t *testing.T) {
	c, wal := chainCluster()
	type concerns struct {
		concerns Concern
		object   string
	}
	objects := map[string]concerns{}
	for _, f := range wal {
		objects[f.Key] = concerns{ConcernsWAL, f.Name}
	}
	for _, b := range c.Backups {
		for _, o := range b.Objects {
			objects[o.Key] = concerns{ConcernsBackup, b.Name}
		}
	}
	p := Policy{RetainFull: 2, Tiers: []Tier{{Kind: WAL, After: day, Class: Cold}, {Kind: BackupData, After: day, Class: Cold}, {Kind: Metadata, After: day, Class: Warm}}}
	r := mustPlan(t, []Cluster{c}, p)
	n := map[ActionKind]map[Concern]int{SetClass: {}, Delete: {}}
	for _, a := range r.Actions {
		o, ok := objects[a.Key]
		if !ok {
			t.Fatalf("action on a key the cluster does not hold: %+v", a)
		}
		if a.Concerns != o.concerns || a.Object != o.object {
			t.Errorf("%s %s: concerns %s %s, want %s %s", a.Kind, a.Key, a.Concerns, a.Object, o.concerns, o.object)
		}
		n[a.Kind][a.Concerns]++
	}
	// Each kind of action on each kind of object is checked above.
	for _, k := range []ActionKind{SetClass, Delete} {
		for _, c := range []Concern{ConcernsWAL, ConcernsBackup} {
			if n[k][c] == 0 {
				t.Errorf("no %s action on a %s object: %v", k, c, n)
			}
		}
	}
}

// The plan summary (walgate lifecycle plan --json) counts the WAL files
// read for each cluster: every file of its stream, segments, partial
// segments and history files alike, those deleted and those kept.
func TestPlanSummaryCountsWALScanned(t *testing.T) {
	chain, wal := chainCluster()
	window := windowTimelines()
	window.Name = "db2"
	empty := Cluster{Name: "db3", Backups: chain.Backups[:1]}
	clusters := []Cluster{chain, window, empty}
	want := map[string]int{"db": len(wal), "db2": 20 + 2 + 20, "db3": 0}
	for _, emit := range []func(Action){nil, func(Action) {}} {
		r, err := PlanStream(slices.Values(clusters), testBackends(), Policy{RetainFull: 1}, now, emit)
		if err != nil {
			t.Fatal(err)
		}
		if r.Clusters[0].WALDeleted == 0 {
			t.Fatal("nothing deleted: the count would not cover deleted files")
		}
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var summary struct {
			Clusters []struct {
				Name    string `json:"name"`
				Scanned *int   `json:"wal_scanned"`
			} `json:"clusters"`
		}
		if err := json.Unmarshal(js, &summary); err != nil {
			t.Fatal(err)
		}
		if len(summary.Clusters) != len(want) {
			t.Fatalf("%d clusters in %s", len(summary.Clusters), js)
		}
		for _, cs := range summary.Clusters {
			if cs.Scanned == nil {
				t.Errorf("%s: no wal_scanned in %s", cs.Name, js)
			} else if *cs.Scanned != want[cs.Name] {
				t.Errorf("%s: wal_scanned %d, want %d", cs.Name, *cs.Scanned, want[cs.Name])
			}
		}
	}
}
