package lifecycle

import (
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/walgate/walgate/index/pgname"
)

// ActionKind is what an action does.
type ActionKind string

const (
	SetClass ActionKind = "set-class"
	Delete   ActionKind = "delete"
)

// Action is one step for the executor: on one backend, move one object to
// another class, or delete it.
type Action struct {
	Cluster string `json:"cluster"`
	Backend string `json:"backend"`
	Key     string `json:"key"`
	Object  string `json:"object"` // the WAL file or backup name
	// Concerns says whether Object is a WAL file or a backup.
	Concerns Concern    `json:"concerns"`
	Kind     ActionKind `json:"kind"`
	// From and To are the backend's class names (set-class only).
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}

// Concern is what an action's object is: a WAL file or a backup.
type Concern string

// The objects an action concerns.
const (
	ConcernsWAL    Concern = "wal"
	ConcernsBackup Concern = "backup"
)

// Refusal is a guard rail that stopped a cluster's deletions.
type Refusal struct {
	Cluster string `json:"cluster"`
	Reason  string `json:"reason"`
}

// Retained is a backup that retention keeps, and why.
type Retained struct {
	Name    string   `json:"name"`
	Reasons []string `json:"reasons"`
}

// Cost is stored bytes per abstract class and their monthly price. Bytes
// on backends without classes (fs) count as Hot; copies in class names a
// backend's mapping does not know are in Unknown, unpriced.
type Cost struct {
	Bytes   map[Class]int64 `json:"bytes"`
	Unknown int64           `json:"unknown_bytes,omitempty"`
	Monthly float64         `json:"monthly"`
}

// ClusterPlan summarises the plan of one cluster.
type ClusterPlan struct {
	Name           string     `json:"name"`
	Retained       []Retained `json:"retained"`
	DeletedBackups []string   `json:"deleted_backups,omitempty"`
	// WALKeptFrom: per timeline, the first segment kept ("" when the
	// whole timeline is kept, "none" when no segment of it is).
	WALKeptFrom     map[uint32]string `json:"wal_kept_from"`
	WALDeleted      int               `json:"wal_deleted"`
	WALDeletedBytes int64             `json:"wal_deleted_bytes"`
	// Refused: deletions the guard rails stopped (then WALDeleted and
	// DeletedBackups say what would have been deleted).
	Refused    bool     `json:"refused,omitempty"`
	Moves      int      `json:"moves"`
	Warnings   []string `json:"warnings,omitempty"`
	Before     Cost     `json:"cost_before"`
	After      Cost     `json:"cost_after"`
	WALScanned int      `json:"wal_scanned"`
	// Error: the snapshot broke its contract; none of this cluster's
	// actions may be applied.
	Error string `json:"error,omitempty"`
}

// Result is a whole plan.
type Result struct {
	Actions  []Action      `json:"actions,omitempty"`
	Refusals []Refusal     `json:"refusals,omitempty"`
	Clusters []ClusterPlan `json:"clusters"`
	Before   Cost          `json:"cost_before"`
	After    Cost          `json:"cost_after"`
}

// Plan decides, for every cluster, what to move and what to delete at time
// now. It is a pure function of its arguments.
func Plan(clusters []Cluster, backends []Backend, p Policy, now time.Time) (Result, error) {
	var actions []Action
	r, err := PlanStream(slices.Values(clusters), backends, p, now, func(a Action) { actions = append(actions, a) })
	r.Actions = actions
	return r, err
}

// PlanStream is Plan for large fleets: clusters are planned one at a time,
// each cluster's WAL is read once as it streams, and actions go to emit as
// they are decided instead of into the result (nil: a dry count). When it
// returns an error naming clusters, the actions emitted for those clusters
// must be discarded. Memory
// is bounded by one cluster's backups and timelines, not by its WAL: the
// stream's files are not kept.
func PlanStream(clusters iter.Seq[Cluster], backends []Backend, p Policy, now time.Time, emit func(Action)) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	if emit == nil {
		emit = func(Action) {}
	}
	views := map[string]*backendView{}
	for _, b := range backends {
		if b.Name == "" {
			return Result{}, fmt.Errorf("lifecycle: a backend has no name")
		}
		if views[b.Name] != nil {
			return Result{}, fmt.Errorf("lifecycle: backend %s is listed twice", b.Name)
		}
		views[b.Name] = newBackendView(b)
	}
	res := Result{}
	var before, after costAcc
	for c := range clusters {
		cp := planCluster(c, views, p, now, emit)
		if cp.Refused {
			res.Refusals = append(res.Refusals, Refusal{Cluster: c.Name, Reason: cp.refusal})
		}
		before.add(cp.before)
		after.add(cp.after)
		cp.Before, cp.After = cp.before.cost(p), cp.after.cost(p)
		res.Clusters = append(res.Clusters, cp.ClusterPlan)
	}
	res.Before, res.After = before.cost(p), after.cost(p)
	var bad []string
	for _, cp := range res.Clusters {
		if cp.Error != "" {
			bad = append(bad, cp.Name+": "+cp.Error)
		}
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("lifecycle: discard the plan of %d clusters: %s", len(bad), strings.Join(bad, "; "))
	}
	return res, nil
}

type costAcc struct {
	bytes   [4]int64
	unknown int64
}

func (c *costAcc) add(o costAcc) {
	for i := range c.bytes {
		c.bytes[i] += o.bytes[i]
	}
	c.unknown += o.unknown
}

func (c costAcc) cost(p Policy) Cost {
	out := Cost{Bytes: map[Class]int64{}, Unknown: c.unknown}
	for i, n := range c.bytes {
		if n != 0 {
			out.Bytes[Classes[i]] = n
		}
		out.Monthly += float64(n) / (1 << 30) * p.Prices[Classes[i]]
	}
	return out
}

// tlRule is what one timeline's WAL needs.
type tlRule struct {
	keepAll   bool
	hasFrom   bool
	from      uint64      // keep segments from here on (hasFrom)
	ranges    [][2]uint64 // and these (permanent backups, chain parents)
	winAll    bool        // the whole timeline is needed by the PITR window
	hasWin    bool
	winFrom   uint64
	delReason string
}

func (r *tlRule) keeps(seg uint64) bool {
	if r.keepAll || r.hasFrom && seg >= r.from {
		return true
	}
	for _, rg := range r.ranges {
		if seg >= rg[0] && seg <= rg[1] {
			return true
		}
	}
	return false
}

func (r *tlRule) inWindow(seg uint64) bool { return r.winAll || r.hasWin && seg >= r.winFrom }

type clusterPlan struct {
	ClusterPlan
	refusal       string
	before, after costAcc
}

// cplanner holds one cluster's decisions while its WAL streams.
type cplanner struct {
	c       Cluster
	p       Policy
	now     time.Time
	views   map[string]*backendView
	emit    func(Action)
	out     *clusterPlan
	deletes bool // deletions allowed

	byName   map[string]*Backup
	tls      map[uint32]Timeline
	newestTL uint32
	hasFull  bool
	// retention
	reasons map[string][]string
	pinFrom map[string]bool // WAL from start on
	pinRng  map[string]bool // WAL from start to finish
	window  map[string]bool // needed by the PITR window
	winFrom map[string]bool // window backups pinning WAL from start on
	rules   map[uint32]*tlRule
	reasonC map[reasonKey]string
	warned  map[string]bool
}

type reasonKey struct {
	kind    ObjectKind
	tier    *Tier
	clamped Class
	backend string
}

func planCluster(c Cluster, views map[string]*backendView, p Policy, now time.Time, emit func(Action)) clusterPlan {
	out := clusterPlan{ClusterPlan: ClusterPlan{Name: c.Name, WALKeptFrom: map[uint32]string{}}}
	cp := &cplanner{c: c, p: p, now: now, views: views, emit: emit, out: &out,
		byName: map[string]*Backup{}, tls: map[uint32]Timeline{}, newestTL: 1,
		reasons: map[string][]string{}, pinFrom: map[string]bool{}, pinRng: map[string]bool{},
		window: map[string]bool{}, winFrom: map[string]bool{}, rules: map[uint32]*tlRule{},
		reasonC: map[reasonKey]string{}, warned: map[string]bool{}}
	for _, t := range c.Timelines {
		cp.tls[t.ID] = t
		cp.newestTL = max(cp.newestTL, t.ID)
	}
	for i := range c.Backups {
		b := &c.Backups[i]
		cp.byName[b.Name] = b
		cp.newestTL = max(cp.newestTL, b.Timeline)
		if b.Full {
			cp.hasFull = true
		}
	}
	cp.deletes = p.RetentionOn()
	switch {
	case !p.RetentionOn():
	case c.PendingReplication > 0:
		out.refusal = fmt.Sprintf("%d copies are still to be replicated: nothing is deleted until the replicator has caught up", c.PendingReplication)
	case c.Disagreement != "":
		out.refusal = "the catalog and a backend disagree (" + c.Disagreement + "): nothing is deleted until a rebuild check passes"
	case !cp.hasFull:
		out.refusal = "no full backup: nothing is deleted"
	}
	if out.refusal != "" {
		cp.deletes = false
	}
	cp.retain()
	cp.backups()
	if c.WAL != nil {
		for f := range c.WAL {
			cp.wal(f)
		}
	}
	tlIDs := make([]uint32, 0, len(cp.rules))
	for id := range cp.rules {
		tlIDs = append(tlIDs, id)
	}
	slices.Sort(tlIDs)
	for _, id := range tlIDs {
		r := cp.rules[id]
		switch {
		case r.keepAll:
			out.WALKeptFrom[id] = ""
		case r.hasFrom:
			out.WALKeptFrom[id] = SegmentName(id, r.from, c.SegmentSize)
		default:
			out.WALKeptFrom[id] = "none"
		}
	}
	if out.refusal != "" && p.RetentionOn() && (len(out.DeletedBackups) > 0 || out.WALDeleted > 0) {
		out.Refused = true
		out.refusal = fmt.Sprintf("%s (would delete %d backups and %d WAL files, %d bytes)", out.refusal, len(out.DeletedBackups), out.WALDeleted, out.WALDeletedBytes+cp.backupBytes())
	}
	return out
}

func (cp *cplanner) backupBytes() int64 {
	var n int64
	for _, name := range cp.out.DeletedBackups {
		for _, o := range cp.byName[name].Objects {
			n += o.Size * int64(len(o.Copies))
		}
	}
	return n
}

func (cp *cplanner) warn(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !cp.warned[s] {
		cp.warned[s] = true
		cp.out.Warnings = append(cp.out.Warnings, s)
	}
}

// chain is the backup and its ancestors up to a full backup; complete is
// false when a link is missing.
func (cp *cplanner) chain(b *Backup) (links []*Backup, complete bool) {
	seen := map[string]bool{}
	for cur := b; ; {
		if seen[cur.Name] {
			return links, false
		}
		seen[cur.Name] = true
		links = append(links, cur)
		if cur.Full {
			return links, true
		}
		next := cp.byName[cur.DeltaFrom]
		if next == nil {
			return links, false
		}
		cur = next
	}
}

// keep retains b (and its chain) for reason. from: b is a restore point
// whose WAL from its start on is kept; else only its own start..finish.
func (cp *cplanner) keep(b *Backup, reason string, from, window bool) {
	cp.reasons[b.Name] = append(cp.reasons[b.Name], reason)
	if from {
		cp.pinFrom[b.Name] = true
		if window {
			cp.winFrom[b.Name] = true
		}
	} else {
		cp.pinRng[b.Name] = true
	}
	if window {
		cp.window[b.Name] = true
	}
	links, complete := cp.chain(b)
	for _, l := range links[1:] {
		r := "in the chain of " + b.Name
		if !slices.Contains(cp.reasons[l.Name], r) {
			cp.reasons[l.Name] = append(cp.reasons[l.Name], r)
		}
		cp.pinRng[l.Name] = true
		if window {
			cp.window[l.Name] = true
		}
	}
	if !complete {
		cp.warn("backup %s cannot be restored: its delta chain is broken after %s", b.Name, links[len(links)-1].Name)
	}
}

// retain decides which backups are kept.
func (cp *cplanner) retain() {
	bs := make([]*Backup, 0, len(cp.c.Backups))
	for i := range cp.c.Backups {
		bs = append(bs, &cp.c.Backups[i])
	}
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].FinishTime.Before(bs[j].FinishTime) })
	var fulls []*Backup
	for _, b := range bs {
		if b.Full {
			fulls = append(fulls, b)
		}
	}
	defer func() {
		for _, b := range bs {
			if rs := cp.reasons[b.Name]; len(rs) > 0 {
				cp.out.Retained = append(cp.out.Retained, Retained{Name: b.Name, Reasons: rs})
			}
		}
	}()
	p := cp.p
	if !p.RetentionOn() {
		for _, b := range bs {
			cp.keep(b, "retention is off (no retain_full, no pitr_window)", true, false)
		}
		return
	}
	if len(fulls) > 0 {
		cp.keep(fulls[len(fulls)-1], "the newest full backup is never deleted", true, false)
	}
	if p.RetainFull > 0 {
		kept := map[string]bool{}
		for i := max(0, len(fulls)-p.RetainFull); i < len(fulls); i++ {
			kept[fulls[i].Name] = true
			cp.keep(fulls[i], fmt.Sprintf("one of the newest %d full backups", p.RetainFull), true, false)
		}
		for _, b := range bs {
			if b.Full {
				continue
			}
			if links, ok := cp.chain(b); ok && kept[links[len(links)-1].Name] {
				cp.keep(b, "a delta of retained full backup "+links[len(links)-1].Name, true, false)
			}
		}
	}
	if p.RetainBackups > 0 {
		for i := max(0, len(bs)-p.RetainBackups); i < len(bs); i++ {
			cp.keep(bs[i], fmt.Sprintf("one of the newest %d backups", p.RetainBackups), true, false)
		}
	}
	if p.KeepFrom != "" {
		from := cp.byName[p.KeepFrom]
		if from == nil {
			cp.warn("backup %s is not in the catalog: every backup is kept", p.KeepFrom)
		}
		for _, b := range bs {
			if from == nil || !b.FinishTime.Before(from.FinishTime) {
				cp.keep(b, "not older than "+p.KeepFrom, true, false)
			}
		}
	}
	if p.PITRWindow > 0 {
		ws := cp.now.Add(-p.PITRWindow)
		// The anchor must lie on the history of the newest timeline: a
		// backup on an abandoned branch cannot recover into the window.
		var anchor *Backup
		for _, b := range bs {
			if _, ok := cp.chain(b); ok && !b.FinishTime.After(ws) && cp.onHistory(b, cp.newestTL) {
				anchor = b
			}
		}
		if anchor != nil {
			cp.keep(anchor, fmt.Sprintf("the newest backup on timeline %d's history finished before the PITR window (%s) starts at %s", cp.newestTL, p.PITRWindow, ws.Format(time.RFC3339)), true, true)
		}
		for _, b := range bs {
			if b.FinishTime.After(ws) {
				cp.keep(b, "finished inside the PITR window", true, true)
			}
		}
		if anchor == nil && len(bs) > 0 {
			if !bs[0].FinishTime.After(ws) {
				cp.warn("no backup finished before the PITR window starts (%s) restores along timeline %d's known history: every backup is kept", ws.Format(time.RFC3339), cp.newestTL)
			}
			for _, b := range bs {
				cp.keep(b, "no backup finished before the PITR window: every backup is kept", true, true)
			}
		}
	}
	for _, b := range bs {
		if b.Permanent {
			cp.keep(b, "permanent", false, false)
		}
	}
}

// lineage is the timelines recovery into a timeline may pass through: the
// exact chain as far as histories are known; where one is missing, every
// lower timeline might be an ancestor (PostgreSQL gives a new timeline an
// ID above every existing one, so an ancestor's ID is always lower).
type lineage struct {
	exact map[uint32]bool
	below uint32 // every ID below this is a possible ancestor (0: none)
}

func (l lineage) has(id uint32) bool { return l.exact[id] || id < l.below }

func (cp *cplanner) lineage(x uint32) lineage {
	l := lineage{exact: map[uint32]bool{}}
	for x != 1 {
		l.exact[x] = true
		t, ok := cp.tls[x]
		if !ok || t.Parent == 0 || t.Parent >= x {
			l.below = x
			return l
		}
		x = t.Parent
	}
	l.exact[1] = true
	return l
}

// onHistory says whether recovery from b can follow timeline t's history:
// b is on t, or on an ancestor of t and finished in a segment before the
// one where the history branched off b's timeline.
func (cp *cplanner) onHistory(b *Backup, t uint32) bool {
	var child uint32
	for x := t; ; {
		if x == b.Timeline {
			return child == 0 || b.FinishSegment < SegmentOf(cp.tls[child].SwitchLSN, cp.c.SegmentSize)
		}
		tl, ok := cp.tls[x]
		if !ok || tl.Parent == 0 || tl.Parent >= x {
			return false
		}
		child, x = x, tl.Parent
	}
}

// rule computes what timeline x's WAL needs, once.
func (cp *cplanner) rule(x uint32) *tlRule {
	if r := cp.rules[x]; r != nil {
		return r
	}
	r := &tlRule{}
	cp.rules[x] = r
	anc := cp.lineage(x)
	if anc.below != 0 {
		cp.warn("timeline %d: the history of timeline %d is unknown: every lower timeline counts as a possible ancestor", x, anc.below)
	}
	if !cp.p.RetentionOn() {
		r.keepAll = true
	}
	var fromName string
	for _, b := range cp.c.Backups {
		if !anc.has(b.Timeline) {
			continue
		}
		start := b.StartSegment
		if b.Timeline != x {
			start = 0 // a backup on an ancestor restores through all of x
		}
		if cp.pinFrom[b.Name] && (!r.hasFrom || start < r.from) {
			r.hasFrom, r.from, fromName = true, start, b.Name
		}
		if cp.winFrom[b.Name] && (!r.hasWin || start < r.winFrom) {
			r.hasWin, r.winFrom = true, start
		}
		if cp.pinRng[b.Name] && b.Timeline == x {
			r.ranges = append(r.ranges, [2]uint64{b.StartSegment, b.FinishSegment})
		}
	}
	if cp.p.PITRWindow > 0 && !r.hasWin && x == cp.newestTL {
		r.winAll = true
	}
	switch {
	case r.hasFrom:
		r.delReason = fmt.Sprintf("before %s, the start of %s, the oldest retained backup restoring through timeline %d",
			SegmentName(x, r.from, cp.c.SegmentSize), fromName, x)
	case x == cp.newestTL:
		r.keepAll = true
		cp.warn("timeline %d is the newest and no retained backup restores through it: all its WAL is kept", x)
	default:
		r.delReason = fmt.Sprintf("timeline %d: no retained backup restores through it", x)
	}
	return r
}

// backups emits the backups' deletions and moves.
func (cp *cplanner) backups() {
	for i := range cp.c.Backups {
		b := &cp.c.Backups[i]
		objs := slices.Clone(b.Objects)
		sort.SliceStable(objs, func(i, j int) bool { return objs[i].Sentinel && !objs[j].Sentinel })
		if len(cp.reasons[b.Name]) == 0 && cp.p.RetentionOn() {
			cp.out.DeletedBackups = append(cp.out.DeletedBackups, b.Name)
			reason := "backup not retained: " + cp.notRetained()
			for _, o := range objs {
				for _, cpy := range o.Copies {
					cp.count(&cp.out.before, cpy, o.Size)
					if !cp.deletes {
						cp.count(&cp.out.after, cpy, o.Size)
						continue
					}
					if cp.views[cpy.Backend] == nil {
						cp.warn("backend %s holds objects but is not configured: its copies are left alone", cpy.Backend)
						continue
					}
					cp.emit(Action{Cluster: cp.c.Name, Backend: cpy.Backend, Key: o.Key, Object: b.Name, Concerns: ConcernsBackup, Kind: Delete, Reason: reason})
				}
			}
			continue
		}
		// retain marked every backup the window needs, each one finished
		// inside it included.
		inWin := cp.window[b.Name]
		for _, o := range objs {
			kind := o.Kind
			if kind != Metadata {
				kind = BackupData
			}
			cp.tier(kind, b.Name, o.Key, o.Size, o.Copies, cp.now.Sub(b.FinishTime), inWin)
		}
	}
}

func (cp *cplanner) notRetained() string {
	var parts []string
	if cp.p.RetainFull > 0 {
		parts = append(parts, fmt.Sprintf("not among or built on the newest %d full backups", cp.p.RetainFull))
	}
	if cp.p.PITRWindow > 0 {
		parts = append(parts, fmt.Sprintf("not needed for the %s PITR window", cp.p.PITRWindow))
	}
	return strings.Join(parts, ", ") + ", not permanent, not the newest full backup"
}

func (cp *cplanner) count(acc *costAcc, cpy Copy, size int64) {
	v := cp.views[cpy.Backend]
	if v == nil {
		acc.unknown += size
		return
	}
	c, ok := v.classOf(cpy.Class)
	if !ok {
		acc.unknown += size
		return
	}
	acc.bytes[c.rank()] += size
}

// tier moves an object's copies colder where the policy says so.
func (cp *cplanner) tier(kind ObjectKind, object, key string, size int64, copies []Copy, age time.Duration, inWin bool) {
	target, rule := cp.p.target(kind, age)
	for _, cpy := range copies {
		cp.count(&cp.out.before, cpy, size)
		v := cp.views[cpy.Backend]
		if v == nil {
			cp.warn("backend %s holds objects but is not configured: its copies are left alone", cpy.Backend)
			cp.count(&cp.out.after, cpy, size)
			continue
		}
		cur, ok := v.classOf(cpy.Class)
		if !ok {
			cp.warn("backend %s: class %q is not in its mapping: such copies are left alone", cpy.Backend, cpy.Class)
			cp.count(&cp.out.after, cpy, size)
			continue
		}
		if inWin && !cp.p.AllowRehydrationInWindow && v.rehyd[cpy.Class] {
			cp.warn("%s on %s is in %s, which needs rehydration, but the PITR window needs it", object, cpy.Backend, cpy.Class)
		}
		t := target
		if inWin && !cp.p.AllowRehydrationInWindow {
			t = v.instant(t)
		}
		name := v.names[t.rank()]
		if !v.hasClasses() || t.rank() <= cur.rank() || name == cpy.Class {
			cp.out.after.bytes[cur.rank()] += size
			continue
		}
		cp.out.after.bytes[t.rank()] += size
		cp.out.Moves++
		k := reasonKey{kind: kind, tier: rule}
		if t != target {
			k.clamped, k.backend = t, cpy.Backend
		}
		reason, ok := cp.reasonC[k]
		if !ok {
			reason = fmt.Sprintf("%s older than %s belongs in %s", kind, rule.After, target)
			if t != target {
				reason += fmt.Sprintf(", but the PITR window needs it and %s needs rehydration on %s: %s", v.names[target.rank()], cpy.Backend, t)
			}
			cp.reasonC[k] = reason
		}
		concerns := ConcernsBackup
		if kind == WAL {
			concerns = ConcernsWAL
		}
		cp.emit(Action{Cluster: cp.c.Name, Backend: cpy.Backend, Key: key, Object: object, Concerns: concerns, Kind: SetClass, From: cpy.Class, To: name, Reason: reason})
	}
}

// wal decides one WAL file.
func (cp *cplanner) wal(f WALFile) {
	cp.out.WALScanned++
	if _, ok := cp.tls[f.Timeline]; !ok && f.Timeline != 1 {
		if cp.out.Error == "" {
			cp.out.Error = fmt.Sprintf("WAL file %s is on timeline %d, which the snapshot's timelines do not list (list it, with parent 0 if its history is unknown)", f.Name, f.Timeline)
		}
		cp.tls[f.Timeline] = Timeline{ID: f.Timeline}
		cp.rules[f.Timeline] = &tlRule{keepAll: true, winAll: true}
	}
	if f.Kind == pgname.History {
		for _, cpy := range f.Copies {
			cp.count(&cp.out.before, cpy, f.Size)
			cp.count(&cp.out.after, cpy, f.Size)
		}
		return
	}
	r := cp.rule(f.Timeline)
	if !r.keeps(f.Segment) {
		cp.out.WALDeleted++
		for _, cpy := range f.Copies {
			cp.out.WALDeletedBytes += f.Size
			cp.count(&cp.out.before, cpy, f.Size)
			if !cp.deletes {
				cp.count(&cp.out.after, cpy, f.Size)
				continue
			}
			if cp.views[cpy.Backend] == nil {
				cp.warn("backend %s holds objects but is not configured: its copies are left alone", cpy.Backend)
				continue
			}
			cp.emit(Action{Cluster: cp.c.Name, Backend: cpy.Backend, Key: f.Key, Object: f.Name, Concerns: ConcernsWAL, Kind: Delete, Reason: r.delReason})
		}
		return
	}
	inWin := cp.p.PITRWindow > 0 && (r.inWindow(f.Segment) || f.StoredAt.After(cp.now.Add(-cp.p.PITRWindow)))
	cp.tier(WAL, f.Name, f.Key, f.Size, f.Copies, cp.now.Sub(f.StoredAt), inWin)
}
