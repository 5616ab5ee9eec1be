package fleet

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgname"
)

// walState is a cluster's WAL summary: what health needs of the archived
// WAL, kept current on every push so that the fleet's health costs no
// catalog scan.
type walState struct {
	segSize   uint64
	timelines map[uint32]*health.Timeline
	histories map[uint32]bool
	lastPush  time.Time
	files     int
	bytes     int64
}

func newWALState() *walState {
	return &walState{timelines: map[uint32]*health.Timeline{}, histories: map[uint32]bool{}}
}

// add records one archived WAL object.
func (w *walState) add(o index.WALObject) {
	w.files++
	w.bytes += o.Size
	if o.StoredAt.After(w.lastPush) {
		w.lastPush = o.StoredAt
	}
	f, err := pgname.ParseWALFile(o.Name)
	if err != nil {
		return
	}
	switch f.Kind {
	case pgname.History:
		w.histories[uint32(f.Timeline)] = true
	case pgname.Segment:
		if w.segSize == 0 && pgname.IsSegmentSize(o.PlainSize) {
			w.segSize = uint64(o.PlainSize)
		}
		tl := w.timelines[uint32(f.Timeline)]
		if tl == nil {
			tl = &health.Timeline{ID: uint32(f.Timeline)}
			w.timelines[uint32(f.Timeline)] = tl
		}
		tl.AddSegment(pgname.SegmentSize(w.segSize).Number(f), o.StoredAt)
	}
}

// scanWAL builds a cluster's WAL summary from the catalog.
func scanWAL(cat index.Interface, cluster string) (*walState, error) {
	return scanWALNames(cat, cluster, nil)
}

// scanWALNames is scanWAL that also calls note for each object it counts
// (when not nil).
func scanWALNames(cat index.Interface, cluster string, note func(index.WALObject)) (*walState, error) {
	w := newWALState()
	// The segment size first (from any segment), so segment numbers are
	// right from the start.
	var err error
	if w.segSize, err = cat.SegmentSize(cluster); err != nil {
		return nil, err
	}
	err = cat.ListWAL(cluster, "", func(o index.WALObject) error {
		if note != nil {
			note(o)
		}
		w.add(o)
		return nil
	})
	return w, err
}

// Fleet holds every cluster's WAL summary while the gateway runs, and
// each cluster's catalog part (backups, drills) per catalog generation.
type Fleet struct {
	cat      index.Interface
	cfg      config.Config
	mu       sync.Mutex
	clusters map[string]*walState
	rescans  map[string][]index.WALObject // pushes during a rescan (see Rescan)
	recent   map[string]map[string]bool   // names the last rescan counted that were stored lately (see Rescan)

	partsMu sync.Mutex
	parts   map[string]*catalogPart // backup and drill summaries by cluster, per catalog generation
}

// Load scans the catalog once at start-up. cfg names the backends and
// groups and sets the health thresholds.
func Load(cat index.Interface, cfg config.Config) (*Fleet, error) {
	f := &Fleet{cat: cat, cfg: cfg, clusters: map[string]*walState{}}
	clusters, err := cat.Clusters()
	if err != nil {
		return nil, err
	}
	for _, c := range clusters {
		w, err := scanWAL(cat, c.Name)
		if err != nil {
			return nil, err
		}
		// A cluster without WAL is listed (or not) by Status, as it
		// would be had the gateway been running all along.
		if w.files > 0 {
			f.clusters[c.Name] = w
		}
	}
	return f, nil
}

// listedClusters is the fleet's cluster list, sorted: every cluster with
// archived WAL (hasWAL), and those without that have backups or a push
// token (a host may push to it but never archived anything); not the
// names that only carry storage-team (admin) tokens, which would show as
// clusters that never archived.
func listedClusters(cat index.Interface, hasWAL func(string) bool) ([]string, error) {
	clusters, err := cat.Clusters()
	if err != nil {
		return nil, err
	}
	tokens, err := cat.ListTokens()
	if err != nil {
		return nil, err
	}
	pushable := map[string]bool{}
	for _, t := range tokens {
		if t.Has(index.ScopePush) {
			pushable[t.Cluster] = true
		}
	}
	var names []string
	for _, c := range clusters {
		if !hasWAL(c.Name) && !pushable[c.Name] {
			if b, err := cat.Backups(c.Name, ""); err != nil || len(b) == 0 {
				continue
			}
		}
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names, nil
}

// Add records a pushed object. Request strings (fiber's parameters point
// into reused buffers) are copied before they are kept.
func (f *Fleet) Add(cluster string, o index.WALObject) {
	cluster, o.Name = strings.Clone(cluster), strings.Clone(o.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.recent[cluster]; r[o.Name] {
		// Counted by the last rescan already: a push committed while it
		// ran, announced (by another gateway) or added here after it.
		delete(r, o.Name)
		return
	}
	w := f.clusters[cluster]
	if w == nil {
		w = newWALState()
		f.clusters[cluster] = w
	}
	w.add(o)
	if late, ok := f.rescans[cluster]; ok {
		f.rescans[cluster] = append(late, o)
	}
}

// clone copies the summary (the copy can be read without the lock).
func (w *walState) clone() *walState {
	cp := *w
	cp.timelines = make(map[uint32]*health.Timeline, len(w.timelines))
	for id, t := range w.timelines {
		cp.timelines[id] = &health.Timeline{ID: t.ID, Runs: append([]health.Run(nil), t.Runs...)}
	}
	cp.histories = make(map[uint32]bool, len(w.histories))
	for id := range w.histories {
		cp.histories[id] = true
	}
	return &cp
}

// snapshot copies a cluster's WAL summary into a health.Cluster.
func (w *walState) snapshot(name string) health.Cluster {
	c := health.Cluster{Name: name, SegmentSize: w.segSize, LastPush: w.lastPush, WALBytes: w.bytes}
	for _, id := range slices.Sorted(maps.Keys(w.timelines)) {
		t := w.timelines[id]
		c.Timelines = append(c.Timelines, health.Timeline{ID: id, Runs: append([]health.Run(nil), t.Runs...)})
	}
	for id := range w.histories {
		c.Histories = append(c.Histories, id)
	}
	sort.Slice(c.Histories, func(i, j int) bool { return c.Histories[i] < c.Histories[j] })
	return c
}

// ClusterStatus is one row of 'walgate status': the cluster's health and
// the details behind it.
type ClusterStatus struct {
	health.Report
	WALFiles    int                     `json:"wal_files"`
	WALBytes    int64                   `json:"wal_bytes"`
	LastBackupS *protocol.BackupSummary `json:"last_backup_summary,omitempty"`
	OpenBackups int                     `json:"open_backups"`
	LastDrillR  *protocol.DrillReport   `json:"last_drill_report,omitempty"`
}

// catalogPart is what health needs of a cluster's backup and drill
// records; the running gateway caches it per catalog generation.
type catalogPart struct {
	gen, segSize uint64
	backups      []health.Backup
	stored       int64 // backups' bytes
	open         int
	lastBackup   *protocol.BackupSummary
	drills       []health.Drill
	lastDrill    *protocol.DrillReport
}

func readCatalogPart(cat index.Interface, name string, segSize uint64) (*catalogPart, error) {
	p := &catalogPart{gen: cat.Generation(name), segSize: segSize}
	backups, err := cat.Backups(name, "")
	if err != nil {
		return nil, err
	}
	seg := pgname.SegmentSize(segSize)
	for _, b := range backups {
		if b.State == index.BackupOpen {
			p.open++
			continue
		}
		if b.State != index.BackupCommitted {
			continue // being deleted
		}
		hb := health.Backup{Name: b.Name, Full: b.Info.Kind != "delta", DeltaFrom: b.Info.DeltaFrom, Depth: b.Info.DeltaCount,
			Timeline: b.Info.Timeline, StartSeg: seg.Of(pgname.LSN(b.Info.StartLSN)), FinishSeg: seg.Of(pgname.LSN(b.Info.FinishLSN)),
			StartTime: b.Info.StartTime, FinishTime: b.Info.FinishTime, Stored: b.StoredSize(), Permanent: b.Info.Permanent}
		p.backups = append(p.backups, hb)
		p.stored += hb.Stored
		s := BackupSummary(b)
		p.lastBackup = &s
	}
	sort.SliceStable(p.backups, func(i, j int) bool { return p.backups[i].FinishTime.Before(p.backups[j].FinishTime) })
	newest, lastPassed, err := cat.DrillSummary(name)
	if err != nil {
		return nil, err
	}
	if newest != nil {
		d := health.Drill{Passed: newest.Passed, Received: newest.Received}
		var rep protocol.DrillReport
		if json.Unmarshal(newest.Report, &rep) == nil {
			p.lastDrill = &rep
			// Reason: reports of clients that sent no error text
			// for failed checks still say which failed.
			d.Backup, d.Error, d.FailedCheck = rep.Backup, rep.Reason(), rep.FailedCheck()
		}
		p.drills = append(p.drills, d)
		if !newest.Passed && !lastPassed.IsZero() {
			p.drills = append(p.drills, health.Drill{Passed: true, Received: lastPassed})
		}
	}
	return p, nil
}

// clusterStatus evaluates a cluster from its WAL summary and its catalog
// part.
func clusterStatus(name string, w *walState, cp *catalogPart, bv backendView, p health.Policy, now time.Time) ClusterStatus {
	hc := w.snapshot(name)
	hc.Backups, hc.Drills = cp.backups, cp.drills
	for _, b := range bv.names(name) {
		q := bv.queues[b].ByCluster[name]
		st := health.BackendState{Name: b, StoredBytes: map[string]int64{health.DefaultClass: max(0, w.bytes+cp.stored-q.Bytes)},
			PendingCount: q.Count, PendingBytes: q.Bytes, OldestPending: q.Oldest, LastError: q.LastError}
		hc.Backends = append(hc.Backends, st)
	}
	return ClusterStatus{Report: health.Evaluate(hc, p, now), WALFiles: w.files, WALBytes: w.bytes,
		LastBackupS: cp.lastBackup, OpenBackups: cp.open, LastDrillR: cp.lastDrill}
}

// generationLister is a catalog that reads every cluster's generation at
// once (the PostgreSQL catalog: one query, not one per cluster).
type generationLister interface {
	Generations() (map[string]uint64, error)
}

// catalogPart returns a cluster's catalog part, from the cache while the
// catalog's generation for the cluster has not moved. gens, when not nil,
// holds every cluster's generation, read at once (a cluster it lacks is at
// 0, as Generation has it).
func (f *Fleet) catalogPart(name string, segSize uint64, gens map[string]uint64) (*catalogPart, error) {
	var gen uint64
	if gens != nil {
		gen = gens[name]
	} else {
		gen = f.cat.Generation(name)
	}
	f.partsMu.Lock()
	cp := f.parts[name]
	f.partsMu.Unlock()
	if cp != nil && cp.gen == gen && cp.segSize == segSize {
		return cp, nil
	}
	cp, err := readCatalogPart(f.cat, name, segSize)
	if err != nil {
		return nil, err
	}
	f.partsMu.Lock()
	if f.parts == nil {
		f.parts = map[string]*catalogPart{}
	}
	f.parts[name] = cp
	f.partsMu.Unlock()
	return cp, nil
}

// Status evaluates every cluster of a catalog read directly (the gateway
// is not running): the WAL summaries are built by scanning it.
func Status(cat index.Interface, cfg config.Config) ([]ClusterStatus, error) {
	cfg.Defaults()
	p := cfg.Policy()
	clusters, err := cat.Clusters()
	if err != nil {
		return nil, err
	}
	wal := map[string]*walState{}
	for _, cl := range clusters {
		if wal[cl.Name], err = scanWAL(cat, cl.Name); err != nil {
			return nil, err
		}
	}
	names, err := listedClusters(cat, func(n string) bool { return wal[n] != nil && wal[n].files > 0 })
	if err != nil {
		return nil, err
	}
	bv, err := newBackendView(cat, cfg)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]ClusterStatus, 0, len(names))
	for _, n := range names {
		cp, err := readCatalogPart(cat, n, wal[n].segSize)
		if err != nil {
			return nil, err
		}
		out = append(out, clusterStatus(n, wal[n], cp, bv, p, now))
	}
	return out, nil
}

// Status evaluates every cluster from the running gateway's WAL
// summaries.
func (f *Fleet) Status(now time.Time) ([]ClusterStatus, error) {
	f.mu.Lock()
	snaps := map[string]*walState{}
	for n, w := range f.clusters {
		snaps[n] = w.clone()
	}
	f.mu.Unlock()
	listed, err := listedClusters(f.cat, func(n string) bool { return snaps[n] != nil })
	if err != nil {
		return nil, err
	}
	// A cluster pushed to since start-up is in snaps even when the
	// catalog listing above raced with its first push.
	seen := map[string]bool{}
	names := make([]string, 0, len(listed))
	for _, n := range listed {
		seen[n] = true
		names = append(names, n)
	}
	for n := range snaps {
		if !seen[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if snaps[n] == nil {
			snaps[n] = newWALState()
		}
	}
	out := make([]ClusterStatus, 0, len(names))
	policy := f.cfg.Policy()
	bv, err := f.backendView()
	if err != nil {
		return nil, err
	}
	var gens map[string]uint64
	if gl, ok := f.cat.(generationLister); ok {
		if gens, err = gl.Generations(); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		cp, err := f.catalogPart(n, snaps[n].segSize, gens)
		if err != nil {
			return nil, err
		}
		out = append(out, clusterStatus(n, snaps[n], cp, bv, policy, now))
	}
	return out, nil
}

// ClusterHealth evaluates one cluster (wal-verify).
func (f *Fleet) ClusterHealth(cluster string, now time.Time) (ClusterStatus, error) {
	f.mu.Lock()
	var snap *walState
	if w := f.clusters[cluster]; w != nil {
		snap = w.clone()
	}
	f.mu.Unlock()
	if snap == nil {
		snap = newWALState()
	}
	cp, err := f.catalogPart(cluster, snap.segSize, nil)
	if err != nil {
		return ClusterStatus{}, err
	}
	bv, err := f.backendView()
	if err != nil {
		return ClusterStatus{}, err
	}
	return clusterStatus(cluster, snap, cp, bv, f.cfg.Policy(), now), nil
}

// backendView is what health needs of the backends: each cluster's group
// and every backend's replication queue.
type backendView struct {
	cfg    config.Config
	queues map[string]index.QueueStats
}

func newBackendView(cat index.Interface, cfg config.Config) (backendView, error) {
	bv := backendView{cfg: cfg, queues: map[string]index.QueueStats{}}
	for _, b := range cfg.Backends {
		q, err := cat.QueueStats(b.Name)
		if err != nil {
			return bv, err
		}
		bv.queues[b.Name] = q
	}
	return bv, nil
}

// names are the backends of cluster's group (none when no group matches).
func (bv backendView) names(cluster string) []string {
	if g := bv.cfg.GroupOf(cluster); g != nil {
		return g.Backends
	}
	return nil
}

func (f *Fleet) backendView() (backendView, error) {
	return newBackendView(f.cat, f.cfg)
}

// recentWindow bounds which names a rescan remembers to count once: those
// stored less than this long before it began. An announcement of a
// record the scan counted comes from a push that committed while the scan
// ran, whose StoredAt is moments before its commit, give or take the
// gateways' clock skew.
const recentWindow = time.Hour

// Rescan rebuilds a cluster's WAL summary after deletions or pushes
// through other gateways. Each name is counted once: a push that lands
// during the scan is added to the new summary unless the scan counted it,
// and a name added after the scan that the scan already counted (another
// gateway's announcement of a push that committed while the scan ran,
// which a fleet's gateway hears only after its rescan) is not counted
// again.
func (f *Fleet) Rescan(cluster string) error {
	f.mu.Lock()
	if f.rescans == nil {
		f.rescans = map[string][]index.WALObject{}
	}
	f.rescans[cluster] = []index.WALObject{}
	f.mu.Unlock()
	since := time.Now().Add(-recentWindow)
	seen, recent := map[string]bool{}, map[string]bool{}
	w, err := scanWALNames(f.cat, cluster, func(o index.WALObject) {
		seen[o.Name] = true
		if !o.StoredAt.Before(since) {
			recent[o.Name] = true
		}
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	late := f.rescans[cluster]
	delete(f.rescans, cluster)
	if err != nil {
		return err
	}
	// A push added while the scan ran may be in the scan too: count
	// each name once.
	for _, o := range late {
		if !seen[o.Name] {
			seen[o.Name] = true
			w.add(o)
		}
	}
	if f.recent == nil {
		f.recent = map[string]map[string]bool{}
	}
	f.recent[cluster] = recent
	// As in Load: a cluster without WAL has no summary, and Status lists
	// it (or not) from the catalog.
	if w.files == 0 {
		delete(f.clusters, cluster)
		return nil
	}
	f.clusters[cluster] = w
	return nil
}

// SegmentSize is the cluster's WAL segment size as its archived segments
// show it (0 when none is archived).
func (f *Fleet) SegmentSize(cluster string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.clusters[cluster]; w != nil {
		return w.segSize, nil
	}
	return 0, nil
}

// BackupSummary is a cataloged backup as the wire protocol lists it.
func BackupSummary(b index.Backup) protocol.BackupSummary {
	return protocol.BackupSummary{Name: b.Name, Kind: b.Info.Kind, DeltaFrom: b.Info.DeltaFrom, DeltaFullName: b.Info.DeltaFullName,
		DeltaCount: b.Info.DeltaCount, StartLSN: b.Info.StartLSN,
		FinishLSN: b.Info.FinishLSN, Timeline: b.Info.Timeline, StartTime: b.Info.StartTime, FinishTime: b.Info.FinishTime,
		UncompressedSize: b.Info.UncompressedSize, StoredSize: b.StoredSize(), PgVersion: b.Info.PgVersion,
		SystemIdentifier: b.Info.SystemIdentifier, Hostname: b.Info.Hostname, Committed: b.Committed}
}
