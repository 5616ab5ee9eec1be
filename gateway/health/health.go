// Package health judges whether each cluster's archive can be restored:
// WAL gaps per timeline, archiving stalls, backup and drill ages, the
// recoverable window, storage per backend. It is a pure function of a
// cluster's catalog summary, a policy and the time, so that the gateway's
// status, metrics and wal-verify all say the same thing, and tests can
// drive it with generated catalogs and clocks.
package health

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/walgate/walgate/index/pgname"
)

// Status is a cluster's overall state.
type Status string

const (
	OK       Status = "ok"
	Warning  Status = "warning"
	Critical Status = "critical"
)

func (s Status) rank() int {
	switch s {
	case Critical:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// Policy holds the thresholds.
type Policy struct {
	// ArchiveTimeout is the longest PostgreSQL should go between two
	// archived segments (its archive_timeout; a quiet cluster without one
	// archives nothing). Archiving is stalled after StallFactor times it.
	ArchiveTimeout time.Duration
	StallFactor    float64
	// DelayedFor: a missing segment with newer ones archived is "delayed"
	// (archive_command may still be retrying it, or parallel uploads are
	// in flight) until the next newer segment has been there this long;
	// then it is "lost".
	DelayedFor time.Duration
	// BackupMaxAge and FullMaxAge: a warning when the newest backup, or
	// the newest full backup, is older.
	BackupMaxAge time.Duration
	FullMaxAge   time.Duration
	// DrillMaxAge: a warning when the last passing restore drill is older
	// (or there is none).
	DrillMaxAge time.Duration
	// ReplicationLagMax: a warning when a backend's oldest pending copy is
	// older.
	ReplicationLagMax time.Duration
}

// DefaultPolicy is the policy without configuration.
func DefaultPolicy() Policy {
	return Policy{ArchiveTimeout: time.Minute, StallFactor: 5, DelayedFor: 10 * time.Minute,
		BackupMaxAge: 48 * time.Hour, FullMaxAge: 8 * 24 * time.Hour, DrillMaxAge: 92 * 24 * time.Hour,
		ReplicationLagMax: 15 * time.Minute}
}

// Run is a contiguous range of archived segments of one timeline.
type Run struct {
	First, Last     uint64    // segment numbers
	FirstAt, LastAt time.Time // when those two segments were archived
}

// Timeline is the archived segments of one timeline, as sorted,
// non-overlapping, non-adjacent runs.
type Timeline struct {
	ID   uint32
	Runs []Run
}

// Backup is what health needs of a committed backup.
type Backup struct {
	Name       string
	Full       bool
	DeltaFrom  string
	Depth      int
	Timeline   uint32
	StartSeg   uint64 // segment number holding the start LSN
	FinishSeg  uint64 // segment number holding the finish LSN
	StartTime  time.Time
	FinishTime time.Time
	Stored     int64
	// Permanent backups are kept by retention with only the WAL from
	// their start to their finish: WAL missing after them is not a gap.
	Permanent bool
}

// Drill is one restore-drill result.
type Drill struct {
	Backup   string    `json:"backup"`
	Passed   bool      `json:"passed"`
	Received time.Time `json:"received"`
	// Error says why a failed drill failed (protocol.DrillReport.Reason).
	Error string `json:"error,omitempty"`
	// FailedCheck names the first check that failed, if one did.
	FailedCheck string `json:"failed_check,omitempty"`
}

// DefaultClass names, in StoredBytes, a backend's default storage class.
const DefaultClass = "default"

// BackendState is one backend's view of a cluster.
type BackendState struct {
	Name          string           `json:"name"`
	StoredBytes   map[string]int64 `json:"stored_bytes"` // by storage class (DefaultClass: the backend's default)
	PendingCount  int              `json:"pending_count"`
	PendingBytes  int64            `json:"pending_bytes"`
	OldestPending time.Time        `json:"oldest_pending,omitzero"` // zero when nothing is pending
	LastError     string           `json:"last_error,omitempty"`
}

// Cluster is a cluster's catalog summary.
type Cluster struct {
	Name        string
	SegmentSize uint64 // bytes; 0 when no segment is archived yet
	Timelines   []Timeline
	Histories   []uint32 // timelines with a .history file
	LastPush    time.Time
	WALBytes    int64
	Backups     []Backup // committed, oldest first by finish time
	Drills      []Drill  // newest first
	Backends    []BackendState
}

// Gap is a range of missing segments.
type Gap struct {
	Timeline uint32 `json:"timeline"`
	From     string `json:"from"` // first missing segment name
	To       string `json:"to"`   // last missing segment name
	Count    uint64 `json:"count"`
	// Class is "delayed" (newer segments arrived recently: it may still
	// come) or "lost".
	Class string `json:"class"`
}

// Report is the health of one cluster.
type Report struct {
	Cluster      string    `json:"cluster"`
	Status       Status    `json:"status"`
	Reasons      []string  `json:"reasons,omitempty"`
	LastSegment  string    `json:"last_segment,omitempty"`
	LastPush     time.Time `json:"last_push,omitzero"`
	SinceLastWAL float64   `json:"seconds_since_last_push,omitempty"`
	Stalled      bool      `json:"stalled"`
	Gaps         []Gap     `json:"gaps,omitempty"`
	LostSegments uint64    `json:"lost_segments"`
	Delayed      uint64    `json:"delayed_segments"`
	Backups      int       `json:"backups"`
	LastBackup   string    `json:"last_backup,omitempty"`
	LastBackupAt time.Time `json:"last_backup_at,omitzero"`
	LastFullAt   time.Time `json:"last_full_at,omitzero"`
	ChainLength  int       `json:"chain_length"`
	// The recoverable window: from the end of the oldest restorable
	// backup to the last archived segment reachable from the newest
	// restorable backup without a gap (its archive time, an upper bound
	// of the last transaction it holds).
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	// RestorableToNow: the newest backup can be recovered to the newest
	// archived segment.
	RestorableToNow bool           `json:"restorable_to_now"`
	StoredBytes     int64          `json:"stored_bytes"`
	Backends        []BackendState `json:"backends,omitempty"`
	LastDrill       *Drill         `json:"last_drill,omitempty"`
	LastPassedDrill time.Time      `json:"last_passed_drill,omitzero"`
}

func (r *Report) raise(s Status, format string, args ...any) {
	if s.rank() > r.Status.rank() {
		r.Status = s
	}
	r.Reasons = append(r.Reasons, fmt.Sprintf(string(s)+": "+format, args...))
}

// SegmentName names segment seg of timeline tli for a segment size.
func SegmentName(tli uint32, seg, segSize uint64) string {
	return pgname.SegmentSize(segSize).Name(pgname.Timeline(tli), seg)
}

// Evaluate computes the report of one cluster at time now.
func Evaluate(c Cluster, p Policy, now time.Time) Report {
	e := newEvaluation(c, p, now)
	e.archiving()
	e.backups()
	e.gaps()
	e.window()
	e.drills()
	e.replication()
	return e.r
}

// evaluation is one cluster's report in the making.
type evaluation struct {
	c   Cluster
	p   Policy
	now time.Time
	r   Report
	// tls indexes the timelines; newestTL is the newest with WAL.
	tls      map[uint32]*Timeline
	newestTL *Timeline
}

// newEvaluation starts the report: the stored bytes, the timelines and the
// newest archived segment.
func newEvaluation(c Cluster, p Policy, now time.Time) *evaluation {
	e := &evaluation{c: c, p: p, now: now, tls: map[uint32]*Timeline{},
		r: Report{Cluster: c.Name, Status: OK, LastPush: c.LastPush, Backups: len(c.Backups), Backends: c.Backends}}
	e.r.StoredBytes = c.WALBytes
	for _, b := range c.Backups {
		e.r.StoredBytes += b.Stored
	}
	for i := range c.Timelines {
		t := &c.Timelines[i]
		e.tls[t.ID] = t
		if len(t.Runs) > 0 && (e.newestTL == nil || t.ID > e.newestTL.ID) {
			e.newestTL = t
		}
	}
	if e.newestTL != nil {
		last := e.newestTL.Runs[len(e.newestTL.Runs)-1]
		e.r.LastSegment = SegmentName(e.newestTL.ID, last.Last, c.SegmentSize)
	}
	return e
}

// archiving: is WAL arriving?
func (e *evaluation) archiving() {
	c, p, r, now := e.c, e.p, &e.r, e.now
	if c.LastPush.IsZero() {
		r.raise(Critical, "no WAL archived yet: check archive_mode and archive_command")
		return
	}
	r.SinceLastWAL = now.Sub(c.LastPush).Seconds()
	limit := time.Duration(float64(p.ArchiveTimeout) * p.StallFactor)
	if p.ArchiveTimeout > 0 && now.Sub(c.LastPush) > limit {
		r.Stalled = true
		r.raise(Critical, "archiving stalled: nothing archived for %s (more than %.0f x archive_timeout %s); check pg_stat_archiver and the server log for archive_command failures",
			now.Sub(c.LastPush).Round(time.Second), p.StallFactor, p.ArchiveTimeout)
	}
}

// backups: is there a backup, and are the newest ones young enough?
func (e *evaluation) backups() {
	c, p, r, now := e.c, e.p, &e.r, e.now
	if len(c.Backups) == 0 {
		r.raise(Critical, "no base backup: nothing to restore from; run walgate-client backup-push")
		return
	}
	newest := c.Backups[len(c.Backups)-1]
	r.LastBackup, r.LastBackupAt, r.ChainLength = newest.Name, newest.FinishTime, newest.Depth
	if p.BackupMaxAge > 0 && now.Sub(newest.FinishTime) > p.BackupMaxAge {
		r.raise(Warning, "newest backup %s is %s old (more than %s)", newest.Name, age(now, newest.FinishTime), p.BackupMaxAge)
	}
	for i := len(c.Backups) - 1; i >= 0; i-- {
		if c.Backups[i].Full {
			r.LastFullAt = c.Backups[i].FinishTime
			break
		}
	}
	if p.FullMaxAge > 0 && (r.LastFullAt.IsZero() || now.Sub(r.LastFullAt) > p.FullMaxAge) {
		r.raise(Warning, "newest full backup is older than %s", p.FullMaxAge)
	}
}

// gaps finds missing WAL on every timeline from the oldest backup's start
// (on its timeline) or the timeline's first archived segment, to its
// newest. Permanent backups do not count when newer ones exist: retention
// keeps only their own WAL.
func (e *evaluation) gaps() {
	c, p, r, now := e.c, e.p, &e.r, e.now
	var lowest map[uint32]uint64
	if len(c.Backups) > 0 {
		oldest := c.Backups[0]
		for _, b := range c.Backups {
			if !b.Permanent {
				oldest = b
				break
			}
		}
		lowest = map[uint32]uint64{oldest.Timeline: oldest.StartSeg}
	}
	for _, id := range slices.Sorted(maps.Keys(e.tls)) {
		t := e.tls[id]
		if len(t.Runs) == 0 {
			continue
		}
		add := func(from, to uint64, nextAt time.Time) {
			g := Gap{Timeline: id, From: SegmentName(id, from, c.SegmentSize), To: SegmentName(id, to, c.SegmentSize), Count: to - from + 1, Class: "lost"}
			if now.Sub(nextAt) < p.DelayedFor {
				g.Class = "delayed"
				r.Delayed += g.Count
			} else {
				r.LostSegments += g.Count
			}
			r.Gaps = append(r.Gaps, g)
		}
		if lo, ok := lowest[id]; ok && lo < t.Runs[0].First {
			add(lo, t.Runs[0].First-1, t.Runs[0].FirstAt)
		}
		for i := 1; i < len(t.Runs); i++ {
			if lo, ok := lowest[id]; ok && t.Runs[i].First <= lo {
				continue // before the oldest backup: not needed
			}
			from := t.Runs[i-1].Last + 1
			if lo, ok := lowest[id]; ok && from < lo {
				from = lo
			}
			add(from, t.Runs[i].First-1, t.Runs[i].FirstAt)
		}
	}
	for _, g := range r.Gaps {
		if g.Class == "lost" {
			r.raise(Critical, "WAL %s..%s (%s, timeline %d) missing: recovery cannot pass it; if the files are still in pg_wal, push them with walgate-client wal-push, else take a new base backup", g.From, g.To, segments(g.Count), g.Timeline)
		} else {
			r.raise(Warning, "WAL %s..%s (%s) not archived yet while newer segments are", g.From, g.To, segments(g.Count))
		}
	}
}

// covered returns the run of archived WAL on timeline tl that holds the
// segments from..to, if one does.
func (e *evaluation) covered(tl uint32, from, to uint64) (Run, bool) {
	t := e.tls[tl]
	if t == nil {
		return Run{}, false
	}
	for _, run := range t.Runs {
		if run.First <= from && to <= run.Last {
			return run, true
		}
	}
	return Run{}, false
}

// window is the recoverable window: from the oldest restorable backup's
// end to the end of the WAL the newest restorable backup reaches.
func (e *evaluation) window() {
	c, r, newestTL := e.c, &e.r, e.newestTL
	for i := len(c.Backups) - 1; i >= 0; i-- {
		b := c.Backups[i]
		run, ok := e.covered(b.Timeline, b.StartSeg, b.FinishSeg)
		if !ok || !chainComplete(c.Backups, i) {
			continue
		}
		r.WindowEnd = run.LastAt
		r.RestorableToNow = newestTL != nil && newestTL.ID == b.Timeline && run.Last == newestTL.Runs[len(newestTL.Runs)-1].Last
		break
	}
	for i, b := range c.Backups {
		if _, ok := e.covered(b.Timeline, b.StartSeg, b.FinishSeg); ok && chainComplete(c.Backups, i) {
			r.WindowStart = b.FinishTime
			break
		}
	}
	if len(c.Backups) > 0 && !r.RestorableToNow {
		r.raise(Critical, "the newest backup cannot be recovered to the newest archived WAL (a gap, or WAL the backup needs is missing)")
	}
}

// drills: did the last restore drill pass, and is the last passing one
// recent enough?
func (e *evaluation) drills() {
	c, p, r, now := e.c, e.p, &e.r, e.now
	if len(c.Drills) > 0 {
		d := c.Drills[0]
		r.LastDrill = &d
		if !d.Passed {
			r.raise(Warning, "the last restore drill (%s, of %s) failed: %s", d.Received.Format(time.RFC3339), d.Backup, d.Error)
		}
	}
	for _, d := range c.Drills {
		if d.Passed {
			r.LastPassedDrill = d.Received
			break
		}
	}
	if p.DrillMaxAge > 0 && (r.LastPassedDrill.IsZero() || now.Sub(r.LastPassedDrill) > p.DrillMaxAge) {
		if r.LastPassedDrill.IsZero() {
			r.raise(Warning, "no passing restore drill on record: run walgate-client drill")
		} else {
			r.raise(Warning, "last passing restore drill is %s old (more than %s)", age(now, r.LastPassedDrill), p.DrillMaxAge)
		}
	}
}

// replication: is any backend too far behind?
func (e *evaluation) replication() {
	p, r, now := e.p, &e.r, e.now
	for _, b := range e.c.Backends {
		if b.PendingCount > 0 && p.ReplicationLagMax > 0 && now.Sub(b.OldestPending) > p.ReplicationLagMax {
			r.raise(Warning, "backend %s is %s behind (%d objects pending): %s", b.Name, age(now, b.OldestPending), b.PendingCount, b.LastError)
		}
	}
}

// chainComplete reports whether every parent of backups[i] is among
// backups.
func chainComplete(backups []Backup, i int) bool {
	by := make(map[string]Backup, len(backups))
	for _, b := range backups {
		by[b.Name] = b
	}
	b := backups[i]
	for n := 0; !b.Full; n++ {
		p, ok := by[b.DeltaFrom]
		if !ok || n > len(backups) {
			return false
		}
		b = p
	}
	return true
}

func age(now, t time.Time) string {
	d := now.Sub(t)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.0f days", d.Hours()/24)
	}
	return d.Round(time.Second).String()
}

// AddSegment adds segment seg, archived at at, to a timeline's runs,
// keeping them sorted and merged. It is how the gateway keeps summaries
// current on every push without rescanning the catalog.
func (t *Timeline) AddSegment(seg uint64, at time.Time) {
	runs := t.Runs
	i := sort.Search(len(runs), func(i int) bool { return runs[i].Last >= seg })
	if i < len(runs) && runs[i].First <= seg {
		return // already there
	}
	joinPrev := i > 0 && runs[i-1].Last+1 == seg
	joinNext := i < len(runs) && runs[i].First == seg+1
	switch {
	case joinPrev && joinNext:
		runs[i-1].Last, runs[i-1].LastAt = runs[i].Last, runs[i].LastAt
		t.Runs = append(runs[:i], runs[i+1:]...)
	case joinPrev:
		runs[i-1].Last, runs[i-1].LastAt = seg, at
	case joinNext:
		runs[i].First, runs[i].FirstAt = seg, at
	default:
		t.Runs = append(runs, Run{})
		copy(t.Runs[i+1:], t.Runs[i:])
		t.Runs[i] = Run{First: seg, Last: seg, FirstAt: at, LastAt: at}
	}
}

// segments says "1 segment" or "N segments".
func segments(n uint64) string {
	if n == 1 {
		return "1 segment"
	}
	return fmt.Sprintf("%d segments", n)
}
