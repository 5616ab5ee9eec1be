package lifecycle

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/index/pgname"
)

// genCluster simulates a cluster's archive: WAL every few hours, full and
// delta backups (some permanent), promotions (a new timeline from the
// current point, with the old timeline's .partial and the history file)
// and point-in-time restores (a new timeline branching at a past point of
// the current one, whose old future stays archived). Copies land on s3
// always, on azure, gcs and fs sometimes, in hot or warm classes.
func genCluster(rng *rand.Rand, name string) (Cluster, []WALFile) {
	start := now.Add(-time.Duration(2+rng.IntN(60)) * day)
	every := time.Duration(60+rng.IntN(11*60)) * time.Minute
	c := Cluster{Name: name}
	var wal []WALFile
	backendsFor := func() []Copy {
		cs := []Copy{{Backend: "s3"}}
		if rng.IntN(10) < 7 {
			cs = append(cs, Copy{Backend: "az"})
		}
		if rng.IntN(10) < 3 {
			cs = append(cs, Copy{Backend: "gcs"})
		}
		if rng.IntN(10) < 5 {
			cs = append(cs, Copy{Backend: "local"})
		}
		warm := map[string]string{"s3": "STANDARD_IA", "az": "Cool", "gcs": "NEARLINE"}
		for i := range cs {
			if w := warm[cs[i].Backend]; w != "" && rng.IntN(10) == 0 {
				cs[i].Class = w
			}
		}
		return cs
	}
	tl, seg, maxTL := uint32(1), uint64(1+rng.IntN(100)), uint32(1)
	begin := map[uint32]uint64{1: seg} // first segment of each timeline
	t := start
	archive := func() {
		n := SegmentName(tl, seg, 0)
		wal = append(wal, WALFile{Name: n, Key: name + "/wal_005/" + n + ".zst", Kind: pgname.Segment, Timeline: tl, Segment: seg,
			Size: int64(1+rng.IntN(16)) << 20, StoredAt: t, Copies: backendsFor()})
		seg++
		t = t.Add(every)
	}
	newTimeline := func(at uint64) {
		maxTL++
		switchLSN := at*(16<<20) + uint64(rng.IntN(16<<20))
		c.Timelines = append(c.Timelines, Timeline{ID: maxTL, Parent: tl, SwitchLSN: switchLSN})
		h := fmt.Sprintf("%08X.history", maxTL)
		wal = append(wal, WALFile{Name: h, Key: name + "/wal_005/" + h, Kind: pgname.History, Timeline: maxTL, Size: 100, StoredAt: t, Copies: backendsFor()})
		tl, seg = maxTL, at
		begin[tl] = at
	}
	var last *Backup
	for t.Before(now) {
		r := rng.Float64()
		switch {
		case r < 0.04:
			b := Backup{Timeline: tl, StartSegment: seg, Full: last == nil || rng.IntN(3) == 0, Permanent: rng.IntN(12) == 0}
			for k := rng.IntN(3); k >= 0; k-- {
				archive()
			}
			b.FinishSegment, b.FinishTime = seg-1, t.Add(-every)
			b.Name = baseName(tl, b.StartSegment)
			if !b.Full {
				b.DeltaFrom = last.Name
				b.Name += "_D_" + SegmentName(last.Timeline, last.StartSegment, 0)
			}
			p := name + "/basebackups_005/" + b.Name
			b.Objects = []Object{
				{Key: p + "_backup_stop_sentinel.json", Kind: Metadata, Size: 2 << 10, Copies: backendsFor(), Sentinel: true},
				{Key: p + "/metadata.json", Kind: Metadata, Size: 1 << 10, Copies: backendsFor()},
				{Key: p + "/tar_partitions/part_001.tar.zst", Kind: BackupData, Size: int64(1+rng.IntN(1000)) << 20, Copies: backendsFor()},
			}
			c.Backups = append(c.Backups, b)
			last = &c.Backups[len(c.Backups)-1]
		case r < 0.05:
			// Promotion: the old timeline's switch segment is archived as .partial.
			n := SegmentName(tl, seg, 0) + ".partial"
			wal = append(wal, WALFile{Name: n, Key: name + "/wal_005/" + n + ".zst", Kind: pgname.Partial, Timeline: tl, Segment: seg,
				Size: 1 << 20, StoredAt: t, Copies: backendsFor()})
			newTimeline(seg)
		case r < 0.055 && seg > begin[tl]+2:
			// Point-in-time restore to a past point of this timeline.
			newTimeline(begin[tl] + 1 + uint64(rng.IntN(int(seg-begin[tl]-1))))
		default:
			archive()
		}
	}
	if rng.IntN(10) == 0 {
		c.PendingReplication = 1 + rng.IntN(5)
	}
	if rng.IntN(20) == 0 {
		c.Disagreement = "s3 lacks 1 object"
	}
	c.WAL = WALSlice(wal)
	return c, wal
}

func genPolicy(rng *rand.Rand) Policy {
	p := Policy{Prices: map[Class]float64{Hot: 0.023, Warm: 0.0125, Cold: 0.004, Archive: 0.0036}}
	for _, kind := range []ObjectKind{WAL, BackupData, Metadata} {
		after := time.Duration(0)
		for _, c := range []Class{Warm, Cold, Archive} {
			if rng.IntN(2) == 0 {
				after += time.Duration(1+rng.IntN(10)) * day
				p.Tiers = append(p.Tiers, Tier{Kind: kind, After: after, Class: c})
			}
		}
	}
	if rng.IntN(4) > 0 {
		p.RetainFull = rng.IntN(4)
	}
	if rng.IntN(4) > 0 {
		p.PITRWindow = time.Duration(1+rng.IntN(20*24)) * time.Hour
	}
	if rng.IntN(6) == 0 {
		p.RetainBackups = 1 + rng.IntN(4)
	}
	p.AllowRehydrationInWindow = rng.IntN(4) == 0
	return p
}

// store is an applied snapshot: per key, per backend, the class.
type store map[string]map[string]string

func newStore(c Cluster, wal []WALFile) store {
	s := store{}
	add := func(key string, cs []Copy) {
		s[key] = map[string]string{}
		for _, cp := range cs {
			s[key][cp.Backend] = cp.Class
		}
	}
	for _, f := range wal {
		add(f.Key, f.Copies)
	}
	for _, b := range c.Backups {
		for _, o := range b.Objects {
			add(o.Key, o.Copies)
		}
	}
	return s
}

// checkPlan applies the plan to the snapshot and checks guarantee 7 and
// the guard rails, with its own reading of the rules.
func checkPlan(t *testing.T, c Cluster, wal []WALFile, p Policy, at time.Time, r Result) {
	t.Helper()
	views := map[string]*backendView{}
	for _, b := range testBackends() {
		views[b.Name] = newBackendView(b)
	}
	st := newStore(c, wal)
	history := map[string]bool{}
	for _, f := range wal {
		if f.Kind == pgname.History {
			history[f.Key] = true
		}
	}
	deletes := 0
	for _, a := range r.Actions {
		cls, ok := st[a.Key][a.Backend]
		if !ok {
			t.Fatalf("action on a copy that is not there: %+v", a)
		}
		if history[a.Key] {
			t.Fatalf("action on a history file: %+v", a)
		}
		if a.Reason == "" {
			t.Fatalf("action without a reason: %+v", a)
		}
		switch a.Kind {
		case Delete:
			deletes++
			delete(st[a.Key], a.Backend)
		case SetClass:
			v := views[a.Backend]
			from, _ := v.classOf(cls)
			to, ok := v.classOf(a.To)
			if a.From != cls || !ok || to.rank() <= from.rank() {
				t.Fatalf("set-class %s -> %s on a copy in %q: not a move to a colder class of the backend", a.From, a.To, cls)
			}
			st[a.Key][a.Backend] = a.To
		default:
			t.Fatalf("unknown action %+v", a)
		}
	}
	blocked := !p.RetentionOn() || c.PendingReplication > 0 || c.Disagreement != ""
	if blocked && deletes > 0 {
		t.Fatalf("%d deletes though retention is off, replication pending or the catalog disagrees", deletes)
	}
	if p.RetentionOn() && (c.PendingReplication > 0 || c.Disagreement != "") && (r.Clusters[0].WALDeleted > 0 || len(r.Clusters[0].DeletedBackups) > 0) && len(r.Refusals) != 1 {
		t.Fatalf("deletes stopped without a refusal: %+v", r.Refusals)
	}

	present := func(key string) bool { return len(st[key]) > 0 }
	intact := func(b *Backup) bool { // every copy of every object still there
		for _, o := range b.Objects {
			if len(st[o.Key]) != len(o.Copies) {
				return false
			}
		}
		return true
	}
	rehydrating := func(key string) string {
		for be, cls := range st[key] {
			if views[be].rehyd[cls] {
				return be + ":" + cls
			}
		}
		return ""
	}
	byName := map[string]*Backup{}
	for i := range c.Backups {
		byName[c.Backups[i].Name] = &c.Backups[i]
	}
	chain := func(b *Backup) ([]*Backup, bool) {
		var out []*Backup
		for cur := b; cur != nil; cur = byName[cur.DeltaFrom] {
			out = append(out, cur)
			if cur.Full {
				return out, true
			}
		}
		return out, false
	}
	walKey := map[[2]uint64]string{} // (timeline, segment) -> key of the full segment
	for _, f := range wal {
		if f.Kind == pgname.Segment {
			walKey[[2]uint64{uint64(f.Timeline), f.Segment}] = f.Key
		}
	}
	retained := map[string]bool{}
	for _, k := range r.Clusters[0].Retained {
		retained[k.Name] = true
	}
	// Every retained backup is intact, with its chain and its own WAL.
	for name := range retained {
		b := byName[name]
		links, complete := chain(b)
		for _, l := range links {
			if !intact(l) || !retained[l.Name] {
				t.Fatalf("retained backup %s: chain link %s not intact or not retained", name, l.Name)
			}
		}
		if !complete {
			continue
		}
		for n := b.StartSegment; n <= b.FinishSegment; n++ {
			k := walKey[[2]uint64{uint64(b.Timeline), n}]
			if k == "" || !present(k) {
				t.Fatalf("retained backup %s: segment %s is gone", name, SegmentName(b.Timeline, n, 0))
			}
		}
	}
	// The rules the planner must have followed.
	var bs []*Backup
	for i := range c.Backups {
		bs = append(bs, &c.Backups[i])
	}
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].FinishTime.Before(bs[j].FinishTime) })
	var fulls []*Backup
	for _, b := range bs {
		if b.Full {
			fulls = append(fulls, b)
		}
		if b.Permanent && !retained[b.Name] {
			t.Fatalf("permanent backup %s not retained", b.Name)
		}
		if !retained[b.Name] && !blocked && intact(b) && len(b.Objects) > 0 {
			t.Fatalf("backup %s neither retained nor deleted", b.Name)
		}
		if !p.RetentionOn() && !retained[b.Name] {
			t.Fatalf("retention off, yet %s is not retained", b.Name)
		}
	}
	if len(fulls) > 0 && !retained[fulls[len(fulls)-1].Name] {
		t.Fatal("newest full backup not retained")
	}
	for i := max(0, len(fulls)-p.RetainFull); p.RetainFull > 0 && i < len(fulls); i++ {
		if !retained[fulls[i].Name] {
			t.Fatalf("full backup %s is among the newest %d but not retained", fulls[i].Name, p.RetainFull)
		}
	}

	// The PITR window: from a backup finished before it starts (if there
	// was one) along the newest timeline's history to its last segment.
	if p.PITRWindow == 0 || len(bs) == 0 {
		return
	}
	ws := at.Add(-p.PITRWindow)
	tlMap := map[uint32]Timeline{}
	newest := uint32(1)
	for _, tli := range c.Timelines {
		tlMap[tli.ID] = tli
		newest = max(newest, tli.ID)
	}
	type step struct {
		tli   uint32
		begin uint64
	}
	var path []step // root first
	for x := newest; ; x = tlMap[x].Parent {
		if x == 1 {
			path = append([]step{{1, 0}}, path...)
			break
		}
		path = append([]step{{x, tlMap[x].SwitchLSN / (16 << 20)}}, path...)
	}
	applicable := func(n uint64) uint32 {
		tli := path[0].tli
		for _, s := range path {
			if s.begin <= n {
				tli = s.tli
			}
		}
		return tli
	}
	var head uint64
	for _, f := range wal {
		if f.Kind == pgname.Segment && applicable(f.Segment) == f.Timeline && f.Segment > head {
			head = f.Segment
		}
	}
	onPath := func(b *Backup) bool {
		return applicable(b.StartSegment) == b.Timeline && applicable(b.FinishSegment) == b.Timeline
	}
	reaches := func(b *Backup, strict bool) string { // "" when b restores to the head
		links, ok := chain(b)
		if !ok {
			return "chain broken"
		}
		for _, l := range links {
			if !intact(l) {
				return "chain link " + l.Name + " gone"
			}
			for _, o := range l.Objects {
				if rh := rehydrating(o.Key); strict && rh != "" {
					return "chain object " + o.Key + " in " + rh
				}
			}
		}
		for n := b.StartSegment; n <= head; n++ {
			k := walKey[[2]uint64{uint64(applicable(n)), n}]
			if k == "" || !present(k) {
				return "segment " + SegmentName(applicable(n), n, 0) + " gone"
			}
			if rh := rehydrating(k); strict && rh != "" {
				return "segment " + SegmentName(applicable(n), n, 0) + " in " + rh
			}
		}
		return ""
	}
	strict := !p.AllowRehydrationInWindow
	var candidates []*Backup
	for _, b := range bs {
		if _, ok := chain(b); ok && onPath(b) && !b.FinishTime.After(ws) {
			candidates = append(candidates, b)
		}
		if b.FinishTime.After(ws) && !retained[b.Name] {
			t.Fatalf("backup %s finished inside the window and is not retained", b.Name)
		}
	}
	if len(candidates) == 0 {
		// The window starts at the oldest backup on the path.
		for _, b := range bs {
			if _, ok := chain(b); ok && onPath(b) {
				if why := reaches(b, strict); why != "" {
					t.Fatalf("no backup before the window; the oldest on the path, %s, no longer reaches the head: %s", b.Name, why)
				}
				return
			}
		}
		return
	}
	var whys []string
	for _, b := range slices.Backward(candidates) {
		why := reaches(b, strict)
		if why == "" {
			return
		}
		whys = append(whys, b.Name+": "+why)
	}
	t.Fatalf("no point before the window start %s is reachable any more: %s", ws.Format(time.RFC3339), strings.Join(whys, "; "))
}

func TestPlanProperty(t *testing.T) {
	seeds := 400
	if s := os.Getenv("LIFECYCLE_SEEDS"); s != "" {
		seeds, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		seeds = 50
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		c, wal := genCluster(rng, fmt.Sprintf("c%d", seed))
		p := genPolicy(rng)
		at := now.Add(time.Duration(rng.IntN(5*24)) * time.Hour)
		// The planner may not know every timeline's history (the
		// checker does).
		given := c
		if rng.IntN(3) == 0 {
			given.Timelines = nil
			for _, tl := range c.Timelines {
				if rng.IntN(3) == 0 {
					tl.Parent, tl.SwitchLSN = 0, 0
				}
				given.Timelines = append(given.Timelines, tl)
			}
		}
		ok := t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r, err := Plan([]Cluster{given}, testBackends(), p, at)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, c, wal, p, at, r)
			// The plan once applied, planning again at the same time
			// changes nothing.
			if len(r.Refusals) == 0 && c.PendingReplication == 0 && c.Disagreement == "" {
				c2, wal2 := applyAll(given, wal, r.Actions)
				r2, err := Plan([]Cluster{c2}, testBackends(), p, at)
				if err != nil {
					t.Fatal(err)
				}
				if len(r2.Actions) != 0 {
					t.Fatalf("second plan not empty: %d actions, first %+v", len(r2.Actions), r2.Actions[0])
				}
				c2.Timelines = c.Timelines
				checkPlan(t, c2, wal2, p, at, r2)
			}
		})
		if !ok {
			t.Logf("seed %d: policy %+v; %d backups, %d WAL files, timelines %+v, given %+v", seed, p, len(c.Backups), len(wal), c.Timelines, given.Timelines)
			return
		}
	}
}

// applyAll applies actions to a snapshot: copies deleted or re-classed,
// objects without copies and backups without objects dropped.
func applyAll(c Cluster, wal []WALFile, as []Action) (Cluster, []WALFile) {
	type kb struct{ key, backend string }
	acts := map[kb]Action{}
	for _, a := range as {
		acts[kb{a.Key, a.Backend}] = a
	}
	copiesAfter := func(key string, cs []Copy) []Copy {
		var out []Copy
		for _, cp := range cs {
			a, ok := acts[kb{key, cp.Backend}]
			switch {
			case !ok:
				out = append(out, cp)
			case a.Kind == SetClass:
				out = append(out, Copy{Backend: cp.Backend, Class: a.To})
			}
		}
		return out
	}
	var wal2 []WALFile
	for _, f := range wal {
		if f.Copies = copiesAfter(f.Key, f.Copies); len(f.Copies) > 0 {
			wal2 = append(wal2, f)
		}
	}
	c2 := c
	c2.Backups = nil
	for _, b := range c.Backups {
		var objs []Object
		for _, o := range b.Objects {
			if o.Copies = copiesAfter(o.Key, o.Copies); len(o.Copies) > 0 {
				objs = append(objs, o)
			}
		}
		if len(objs) > 0 {
			b.Objects = objs
			c2.Backups = append(c2.Backups, b)
		}
	}
	c2.WAL = WALSlice(wal2)
	return c2, wal2
}

// TestPlanIsPureAndPerCluster: planning twice gives the same result, and
// planning clusters together gives each cluster what planning it alone
// gives.
func TestPlanIsPureAndPerCluster(t *testing.T) {
	rng := rand.New(rand.NewPCG(99, 1))
	var cs []Cluster
	for i := range 12 {
		c, _ := genCluster(rng, fmt.Sprintf("c%d", i))
		cs = append(cs, c)
	}
	for range 20 {
		p := genPolicy(rng)
		all, err := Plan(cs, testBackends(), p, now)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Plan(cs, testBackends(), p, now)
		if !reflect.DeepEqual(all, again) {
			t.Fatal("two plans of the same input differ")
		}
		var actions []Action
		for i, c := range cs {
			one, _ := Plan([]Cluster{c}, testBackends(), p, now)
			if !reflect.DeepEqual(one.Clusters[0], all.Clusters[i]) {
				t.Fatalf("cluster %s planned alone differs", c.Name)
			}
			actions = append(actions, one.Actions...)
		}
		if !reflect.DeepEqual(actions, all.Actions) {
			t.Fatal("actions of the clusters planned alone differ")
		}
	}
}

// Retention orders backups by when they finished, never by name or LSN: a
// cluster whose backups' names and start LSNs order differently from their
// finish times (as after pg_upgrade, where a new system's WAL positions
// start low again: WAL-G's #636 deleted the new backups as "older") keeps
// the newest backups by finish time. The gateway refuses a second system
// under one cluster name, so this holds for retention whatever reaches it.
func TestPlanRetainsNewestByFinishTime(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 636))
		c, _ := genCluster(rng, fmt.Sprintf("c%d", seed))
		if len(c.Backups) < 2 {
			continue
		}
		// Shuffle the finish times over the backups: name and LSN order
		// no longer say which is newer.
		times := make([]time.Time, len(c.Backups))
		for i, b := range c.Backups {
			times[i] = b.FinishTime
		}
		rng.Shuffle(len(times), func(i, j int) { times[i], times[j] = times[j], times[i] })
		for i := range c.Backups {
			c.Backups[i].FinishTime = times[i]
		}
		p := Policy{RetainFull: 1 + rng.IntN(3), RetainBackups: rng.IntN(3)}
		r, err := Plan([]Cluster{c}, testBackends(), p, now)
		if err != nil {
			t.Fatal(err)
		}
		deleted := map[string]bool{}
		for _, a := range r.Actions {
			if a.Kind == Delete {
				deleted[a.Key] = true
			}
		}
		byFinish := slices.Clone(c.Backups)
		sort.SliceStable(byFinish, func(i, j int) bool { return byFinish[i].FinishTime.After(byFinish[j].FinishTime) })
		fulls, all := 0, 0
		for _, b := range byFinish {
			newest := all < p.RetainBackups
			all++
			if b.Full {
				newest = newest || fulls < p.RetainFull
				fulls++
			}
			if !newest {
				continue
			}
			for _, o := range b.Objects {
				if deleted[o.Key] {
					t.Fatalf("seed %d: %s is among the newest by finish time (%s) but its %s is deleted; policy %+v",
						seed, b.Name, b.FinishTime.Format(time.RFC3339), o.Key, p)
				}
			}
		}
	}
}
