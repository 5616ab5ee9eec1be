package lifecycle

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The PITR window's start decides, to the second, which backup anchors the
// window and so where the WAL that is kept begins. A backup finished at
// the window's start, or a second before, can recover to it: it anchors,
// the older backup goes and the WAL before its start goes, up to the
// segment before it. A second later it lies inside the window: the older
// backup anchors and keeps its WAL. Everything the window needs stays out
// of classes that need rehydration; a permanent backup kept for itself
// and the WAL only it keeps do not.
func TestPITRWindowBoundaryToTheSecond(t *testing.T) {
	const window = 10 * day
	ws := now.Add(-window)
	start := now.Add(-40 * day)
	for _, tc := range []struct {
		offset   time.Duration // of the middle backup's finish from the window's start
		anchor   string
		deleted  []string
		keptFrom uint64 // the first segment kept but the permanent backup's
	}{
		{-time.Second, "mid", []string{"old"}, 20},
		{0, "mid", []string{"old"}, 20},
		{time.Second, "old", nil, 5},
	} {
		t.Run(fmt.Sprint(tc.offset), func(t *testing.T) {
			perm := backup("db", "perm", true, "", 1, 2, 2, start.Add(2*day), "s3")
			perm.Permanent = true
			c := Cluster{Name: "db", WAL: WALSlice(segments("db", 1, 1, 40, start, day, "s3")), Backups: []Backup{
				perm,
				backup("db", "old", true, "", 1, 5, 5, start.Add(5*day), "s3"),
				backup("db", "mid", true, "", 1, 20, 21, ws.Add(tc.offset), "s3"),
				backup("db", "new", true, "", 1, 35, 35, now.Add(-2*day), "s3"),
			}}
			p := Policy{PITRWindow: window, Tiers: []Tier{{Kind: WAL, After: day, Class: Archive}, {Kind: BackupData, After: day, Class: Archive}}}
			r := mustPlan(t, []Cluster{c}, p)
			cp := r.Clusters[0]
			if !slices.Equal(cp.DeletedBackups, tc.deleted) {
				t.Fatalf("deleted %v, want %v; retained %+v", cp.DeletedBackups, tc.deleted, cp.Retained)
			}
			if cp.WALKeptFrom[1] != SegmentName(1, tc.keptFrom, 0) {
				t.Errorf("WAL kept from %q, want segment %d", cp.WALKeptFrom[1], tc.keptFrom)
			}
			// Segments 1 to keptFrom-1 go, but the permanent backup's 2.
			if want := int(tc.keptFrom) - 2; cp.WALDeleted != want {
				t.Errorf("%d WAL files deleted, want %d", cp.WALDeleted, want)
			}
			last, first := SegmentName(1, tc.keptFrom-1, 0), SegmentName(1, tc.keptFrom, 0)
			if len(actionsOn(r.Actions, Delete, last)) != 1 {
				t.Errorf("segment %s, the last before the anchor's start, is not deleted", last)
			}
			if len(actionsOn(r.Actions, Delete, first)) != 0 {
				t.Errorf("segment %s, the anchor's start, is deleted", first)
			}
			for _, rt := range cp.Retained {
				reasons := strings.Join(rt.Reasons, "; ")
				if rt.Name == tc.anchor && (!strings.Contains(reasons, "finished before the PITR window") || strings.Contains(reasons, "inside")) {
					t.Errorf("anchor %s kept for %q", rt.Name, reasons)
				}
				if rt.Name != tc.anchor && strings.Contains(reasons, "finished before the PITR window") {
					t.Errorf("%s kept as the anchor too: %q", rt.Name, reasons)
				}
			}
			// Classes: the window's backups and WAL stop at GLACIER_IR.
			want := map[string]string{"perm": "GLACIER", tc.anchor: "GLACIER_IR", "mid": "GLACIER_IR", "new": "GLACIER_IR",
				SegmentName(1, 2, 0): "GLACIER", first: "GLACIER_IR", SegmentName(1, 30, 0): "GLACIER_IR"}
			for _, a := range actionsFor(r.Actions, SetClass, "") {
				if a.Concerns == ConcernsBackup && !strings.HasSuffix(a.Key, ".tar.zst") {
					continue
				}
				if w, ok := want[a.Object]; ok {
					if a.To != w {
						t.Errorf("%s to %s, want %s", a.Object, a.To, w)
					}
					delete(want, a.Object)
				}
			}
			if len(want) != 0 {
				t.Errorf("not moved: %v", want)
			}
		})
	}
}

// Only a PITR window keeps objects out of classes that need rehydration,
// and only the window warns about copies already in one. Without a window
// nothing does, even for a WAL file or a backup stamped after now (the
// clock of the gateway that stored it ahead of this one's).
func TestNoWindowNoWindowWarnings(t *testing.T) {
	glacier := []Copy{{Backend: "s3", Class: "GLACIER"}}
	wal := segments("db", 1, 1, 10, now.Add(-10*day), day, "s3")
	ahead := segments("db", 1, 11, 11, now.Add(time.Hour), day, "s3")[0]
	ahead.Copies = glacier
	late := backup("db", "late", true, "", 1, 11, 11, now.Add(time.Hour), "s3")
	for i := range late.Objects {
		late.Objects[i].Copies = glacier
	}
	c := Cluster{Name: "db", WAL: WALSlice(append(wal, ahead)), Backups: []Backup{backup("db", "base", true, "", 1, 1, 1, now.Add(-10*day), "s3"), late}}
	tiers := []Tier{{Kind: WAL, After: day, Class: Archive}, {Kind: BackupData, After: day, Class: Archive}}
	windowWarnings := func(p Policy) []string {
		t.Helper()
		r := mustPlan(t, []Cluster{c}, p)
		if as := append(actionsOn(r.Actions, SetClass, ahead.Name), actionsOn(r.Actions, SetClass, "late")...); len(as) != 0 {
			t.Errorf("moved what is younger than every rule: %+v", as)
		}
		var out []string
		for _, w := range r.Clusters[0].Warnings {
			if strings.Contains(w, "PITR window") {
				out = append(out, w)
			}
		}
		return out
	}
	if ws := windowWarnings(Policy{RetainFull: 2, Tiers: tiers}); len(ws) != 0 {
		t.Errorf("no PITR window, yet: %q", ws)
	}
	// The same cluster with a window: both are inside it and warned about.
	ws := windowWarnings(Policy{RetainFull: 2, PITRWindow: 3 * day, Tiers: tiers})
	for _, name := range []string{ahead.Name, "late"} {
		if !slices.ContainsFunc(ws, func(w string) bool { return strings.HasPrefix(w, name+" on s3 is in GLACIER") }) {
			t.Errorf("with a window, no warning about %s in GLACIER: %q", name, ws)
		}
	}
}
