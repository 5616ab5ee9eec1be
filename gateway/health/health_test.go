package health

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// archive builds a timeline from segments archived one per minute from at.
func archive(id uint32, at time.Time, segs ...uint64) Timeline {
	tl := Timeline{ID: id}
	for i, s := range segs {
		tl.AddSegment(s, at.Add(time.Duration(i)*time.Minute))
	}
	return tl
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func fullBackup(name string, tl uint32, start, finish uint64, at time.Time) Backup {
	return Backup{Name: name, Full: true, Timeline: tl, StartSeg: start, FinishSeg: finish, StartTime: at.Add(-time.Minute), FinishTime: at, Stored: 100}
}

func healthy() Cluster {
	return Cluster{Name: "db", SegmentSize: 16 << 20, Timelines: []Timeline{archive(1, t0.Add(-time.Hour), span(10, 60)...)},
		LastPush: t0.Add(-2 * time.Minute), Backups: []Backup{fullBackup("base_1", 1, 12, 13, t0.Add(-50*time.Minute))},
		Drills: []Drill{{Backup: "base_1", Passed: true, Received: t0.Add(-24 * time.Hour)}}}
}

func hasReason(r Report, s string) bool {
	for _, x := range r.Reasons {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func TestHealthy(t *testing.T) {
	r := Evaluate(healthy(), DefaultPolicy(), t0)
	if r.Status != OK || len(r.Gaps) != 0 || !r.RestorableToNow || r.Stalled {
		t.Fatalf("healthy cluster: %+v", r)
	}
	if r.LastSegment != "00000001000000000000003C" {
		t.Fatalf("last segment %s", r.LastSegment)
	}
	if !r.WindowStart.Equal(t0.Add(-50*time.Minute)) || !r.WindowEnd.Equal(t0.Add(-10*time.Minute)) {
		t.Fatalf("window %s .. %s", r.WindowStart, r.WindowEnd)
	}
}

func TestStall(t *testing.T) {
	c := healthy()
	p := DefaultPolicy()
	if r := Evaluate(c, p, t0.Add(2*time.Minute)); r.Stalled {
		t.Fatal("stalled within 5 x archive_timeout")
	}
	r := Evaluate(c, p, t0.Add(time.Hour))
	if !r.Stalled || r.Status != Critical || !hasReason(r, "archiving stalled") {
		t.Fatalf("no stall after 70 minutes: %+v", r)
	}
}

func TestGapsDelayedThenLost(t *testing.T) {
	c := healthy()
	segs := append(span(10, 40), span(44, 60)...)
	c.Timelines = []Timeline{archive(1, t0.Add(-time.Hour), segs...)}
	// Segment 44 arrived at -1h + 31 min = 29 minutes ago.
	p := DefaultPolicy()
	p.DelayedFor = time.Hour
	r := Evaluate(c, p, t0)
	if len(r.Gaps) != 1 || r.Gaps[0].Class != "delayed" || r.Gaps[0].Count != 3 || r.Status != Critical && r.Status != Warning {
		t.Fatalf("recent gap: %+v", r)
	}
	if r.Gaps[0].From != "000000010000000000000029" || r.Gaps[0].To != "00000001000000000000002B" {
		t.Fatalf("gap names %s..%s", r.Gaps[0].From, r.Gaps[0].To)
	}
	p.DelayedFor = 10 * time.Minute
	r = Evaluate(c, p, t0)
	if len(r.Gaps) != 1 || r.Gaps[0].Class != "lost" || r.LostSegments != 3 || r.Status != Critical || r.RestorableToNow {
		t.Fatalf("old gap: %+v", r)
	}
	if !hasReason(r, "wal-push") {
		t.Fatalf("no remedy in %v", r.Reasons)
	}
	// The window ends before the gap.
	if !r.WindowEnd.Equal(t0.Add(-time.Hour + 30*time.Minute)) {
		t.Fatalf("window end %s", r.WindowEnd)
	}
	// Filling the gap clears it.
	for _, s := range []uint64{41, 42, 43} {
		c.Timelines[0].AddSegment(s, t0)
	}
	if r := Evaluate(c, p, t0); len(r.Gaps) != 0 || !r.RestorableToNow || len(c.Timelines[0].Runs) != 1 {
		t.Fatalf("filled gap: %+v runs %+v", r, c.Timelines[0].Runs)
	}
}

// A gap before the oldest backup's start does not matter; one between
// it and the first archived segment does.
func TestGapBoundaries(t *testing.T) {
	c := healthy()
	c.Timelines = []Timeline{archive(1, t0.Add(-time.Hour), append([]uint64{3, 4}, span(12, 60)...)...)}
	if r := Evaluate(c, DefaultPolicy(), t0); len(r.Gaps) != 0 {
		t.Fatalf("gap before the oldest backup reported: %+v", r.Gaps)
	}
	c.Timelines = []Timeline{archive(1, t0.Add(-time.Hour), span(14, 60)...)}
	r := Evaluate(c, DefaultPolicy(), t0)
	if len(r.Gaps) != 1 || r.Gaps[0].Count != 2 || r.RestorableToNow {
		t.Fatalf("missing start of the backup: %+v", r)
	}
}

// A promotion: timeline 2 continues; the backup on timeline 1 restores
// to its end only if timeline 1 is complete; the newest backup must be on
// the newest timeline for "restorable to now".
func TestTimelines(t *testing.T) {
	c := healthy()
	c.Timelines = []Timeline{archive(1, t0.Add(-time.Hour), span(10, 40)...), archive(2, t0.Add(-20*time.Minute), span(40, 50)...)}
	c.Histories = []uint32{2}
	r := Evaluate(c, DefaultPolicy(), t0)
	if len(r.Gaps) != 0 || r.LastSegment != "000000020000000000000032" {
		t.Fatalf("two timelines: %+v", r)
	}
	if r.RestorableToNow {
		t.Fatal("a timeline-1 backup counted as restorable to the newest timeline-2 segment")
	}
	c.Backups = append(c.Backups, fullBackup("base_2", 2, 45, 46, t0.Add(-15*time.Minute)))
	if r := Evaluate(c, DefaultPolicy(), t0); !r.RestorableToNow {
		t.Fatalf("backup on timeline 2: %+v", r)
	}
}

func TestBackupsAndDrills(t *testing.T) {
	c := healthy()
	c.Backups = nil
	if r := Evaluate(c, DefaultPolicy(), t0); r.Status != Critical || !hasReason(r, "no base backup") {
		t.Fatalf("no backups: %+v", r)
	}
	c = healthy()
	c.Backups = append(c.Backups, Backup{Name: "d1", DeltaFrom: "base_1", Depth: 1, Timeline: 1, StartSeg: 20, FinishSeg: 21, FinishTime: t0.Add(-30 * time.Minute)},
		Backup{Name: "d2", DeltaFrom: "d1", Depth: 2, Timeline: 1, StartSeg: 30, FinishSeg: 30, FinishTime: t0.Add(-20 * time.Minute)})
	r := Evaluate(c, DefaultPolicy(), t0)
	if r.ChainLength != 2 || r.LastBackup != "d2" || r.Status != OK {
		t.Fatalf("chain: %+v", r)
	}
	// The middle link gone: d2 is not restorable; the full still is.
	c.Backups = slices.Delete(c.Backups, 1, 2)
	if r := Evaluate(c, DefaultPolicy(), t0); !r.RestorableToNow || !r.WindowStart.Equal(t0.Add(-50*time.Minute)) {
		t.Fatalf("broken chain: %+v", r)
	}
	// Old backups and drills.
	c = healthy()
	later := t0.Add(100 * 24 * time.Hour)
	c.LastPush = later
	c.Timelines[0].AddSegment(61, later)
	r = Evaluate(c, DefaultPolicy(), later)
	for _, w := range []string{"newest backup base_1 is", "newest full backup is older", "last passing restore drill is 101 days old"} {
		if !hasReason(r, w) {
			t.Errorf("missing reason %q in %v", w, r.Reasons)
		}
	}
	c = healthy()
	c.Drills = append([]Drill{{Backup: "base_1", Passed: false, Received: t0.Add(-time.Hour), Error: "amcheck failed"}}, c.Drills...)
	if r := Evaluate(c, DefaultPolicy(), t0); r.Status != Warning || !hasReason(r, "amcheck failed") || r.LastPassedDrill.IsZero() {
		t.Fatalf("failed drill: %+v", r)
	}
}

func TestReplicationLag(t *testing.T) {
	c := healthy()
	c.Backends = []BackendState{{Name: "s3", PendingCount: 5, OldestPending: t0.Add(-time.Hour), LastError: "connection refused"}}
	if r := Evaluate(c, DefaultPolicy(), t0); r.Status != Warning || !hasReason(r, "backend s3 is 1h0m0s behind") {
		t.Fatalf("lag: %+v", r)
	}
}

// Property: over random archives, the runs stay sorted, disjoint and
// non-adjacent whatever the insertion order; the gaps reported are exactly
// the missing segments between the oldest backup's start and the newest.
func TestRandomArchives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 500; iter++ {
		n := 1 + rng.IntN(200)
		present := map[uint64]bool{}
		var segs []uint64
		for i := 0; i < n; i++ {
			s := uint64(rng.IntN(300))
			segs = append(segs, s)
			present[s] = true
		}
		tl := Timeline{ID: 1}
		for _, s := range segs {
			tl.AddSegment(s, t0.Add(-2*time.Hour))
		}
		for i, r := range tl.Runs {
			if r.First > r.Last || (i > 0 && tl.Runs[i-1].Last+1 >= r.First) {
				t.Fatalf("runs not sorted and separated: %+v", tl.Runs)
			}
			for s := r.First; s <= r.Last; s++ {
				if !present[s] {
					t.Fatalf("run %+v holds %d, never added", r, s)
				}
			}
		}
		start := uint64(rng.IntN(300))
		c := Cluster{Name: "x", SegmentSize: 16 << 20, Timelines: []Timeline{tl}, LastPush: t0,
			Backups: []Backup{fullBackup("b", 1, start, start, t0.Add(-time.Hour))}}
		r := Evaluate(c, DefaultPolicy(), t0)
		last := tl.Runs[len(tl.Runs)-1].Last
		var missing uint64
		for s := start; s <= last; s++ {
			if !present[s] {
				missing++
			}
		}
		if r.LostSegments+r.Delayed != missing {
			t.Fatalf("iteration %d: %d missing from %d to %d, report says %d lost + %d delayed", iter, missing, start, last, r.LostSegments, r.Delayed)
		}
		if r.RestorableToNow != (missing == 0 && start <= last) {
			t.Fatalf("iteration %d: restorable %v with %d missing", iter, r.RestorableToNow, missing)
		}
	}
}
