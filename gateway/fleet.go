package gateway

import (
	"encoding/json"
	"errors"
	"path"

	"github.com/gofiber/fiber/v2"
	"sort"
	"strings"
	"sync"
	"time"

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
		if w.segSize == 0 && isSegmentSize(o.PlainSize) {
			w.segSize = uint64(o.PlainSize)
		}
		tl := w.timelines[uint32(f.Timeline)]
		if tl == nil {
			tl = &health.Timeline{ID: uint32(f.Timeline)}
			w.timelines[uint32(f.Timeline)] = tl
		}
		tl.AddSegment(segNo(f, w.segSize), o.StoredAt)
	}
}

// segNo is a segment's number for a segment size (16 MiB when unknown).
func segNo(f pgname.WALFile, segSize uint64) uint64 {
	if segSize == 0 {
		segSize = 16 << 20
	}
	return uint64(f.Log)*(0x100000000/segSize) + uint64(f.Seg)
}

// scanWAL builds a cluster's WAL summary from the catalog.
func scanWAL(cat *index.Catalog, cluster string) (*walState, error) {
	w := newWALState()
	// The segment size first (from any segment), so segment numbers are
	// right from the start.
	err := cat.ListWAL(cluster, "", func(o index.WALObject) error {
		if len(o.Name) == 24 && isSegmentSize(o.PlainSize) {
			w.segSize = uint64(o.PlainSize)
			return errStopScan
		}
		return nil
	})
	if err != nil && err != errStopScan {
		return nil, err
	}
	err = cat.ListWAL(cluster, "", func(o index.WALObject) error { w.add(o); return nil })
	return w, err
}

// isSegmentSize says whether n can be a WAL segment's size: PostgreSQL's
// wal_segment_size is a power of two from 1 MiB to 1 GiB.
func isSegmentSize(n int64) bool {
	return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0
}

// errStopScan ends a catalog listing early.
var errStopScan = errors.New("stop the scan")

// fleet holds every cluster's WAL summary while the gateway runs.
type fleet struct {
	mu       sync.Mutex
	clusters map[string]*walState
	rescans  map[string][]index.WALObject // pushes during a rescan (see rescan)
}

// loadFleet scans the catalog once at start-up.
func loadFleet(cat *index.Catalog) (*fleet, error) {
	f := &fleet{clusters: map[string]*walState{}}
	clusters, err := cat.Clusters()
	if err != nil {
		return nil, err
	}
	for _, c := range clusters {
		w, err := scanWAL(cat, c.Name)
		if err != nil {
			return nil, err
		}
		f.clusters[c.Name] = w
	}
	return f, nil
}

// add records a pushed object. Request strings (fiber's parameters point
// into reused buffers) are copied before they are kept.
func (f *fleet) add(cluster string, o index.WALObject) {
	cluster, o.Name = strings.Clone(cluster), strings.Clone(o.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
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
	ids := make([]uint32, 0, len(w.timelines))
	for id := range w.timelines {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
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

func readCatalogPart(cat *index.Catalog, name string, segSize uint64) (*catalogPart, error) {
	p := &catalogPart{gen: cat.Generation(name), segSize: segSize}
	backups, err := cat.Backups(name, "")
	if err != nil {
		return nil, err
	}
	seg := segSize
	if seg == 0 {
		seg = 16 << 20
	}
	for _, b := range backups {
		if b.State == index.BackupOpen {
			p.open++
			continue
		}
		if b.State != index.BackupCommitted {
			continue // being deleted
		}
		hb := health.Backup{Name: b.Name, Full: b.Info.Kind != "delta", DeltaFrom: b.Info.DeltaFrom, Depth: b.Info.DeltaCount,
			Timeline: b.Info.Timeline, StartSeg: b.Info.StartLSN / seg, FinishSeg: b.Info.FinishLSN / seg,
			StartTime: b.Info.StartTime, FinishTime: b.Info.FinishTime, Stored: b.StoredSize(), Permanent: b.Info.Permanent}
		p.backups = append(p.backups, hb)
		p.stored += hb.Stored
		s := summary(b)
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
			d.Backup, d.Error = rep.Backup, rep.Error
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
		st := health.BackendState{Name: b, StoredBytes: map[string]int64{"": max(0, w.bytes+cp.stored-q.Bytes)},
			PendingCount: q.Count, PendingBytes: q.Bytes, OldestPending: q.Oldest, LastError: q.LastError}
		hc.Backends = append(hc.Backends, st)
	}
	return ClusterStatus{Report: health.Evaluate(hc, p, now), WALFiles: w.files, WALBytes: w.bytes,
		LastBackupS: cp.lastBackup, OpenBackups: cp.open, LastDrillR: cp.lastDrill}
}

// catalogPart returns a cluster's catalog part, from the cache while the
// catalog's generation for the cluster has not moved.
func (s *Server) catalogPart(name string, segSize uint64) (*catalogPart, error) {
	gen := s.catalog.Generation(name)
	s.partsMu.Lock()
	cp := s.parts[name]
	s.partsMu.Unlock()
	if cp != nil && cp.gen == gen && cp.segSize == segSize {
		return cp, nil
	}
	cp, err := readCatalogPart(s.catalog, name, segSize)
	if err != nil {
		return nil, err
	}
	s.partsMu.Lock()
	if s.parts == nil {
		s.parts = map[string]*catalogPart{}
	}
	s.parts[name] = cp
	s.partsMu.Unlock()
	return cp, nil
}

// Status evaluates every cluster of a catalog read directly (the gateway
// is not running): the WAL summaries are built by scanning it.
func Status(cat *index.Catalog, cfg Config) ([]ClusterStatus, error) {
	cfg.Defaults()
	p := cfg.Policy()
	clusters, err := cat.Clusters()
	if err != nil {
		return nil, err
	}
	bv, err := newBackendView(cat, cfg.Groups, cfg.Backends)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]ClusterStatus, 0, len(clusters))
	for _, cl := range clusters {
		w, err := scanWAL(cat, cl.Name)
		if err != nil {
			return nil, err
		}
		cp, err := readCatalogPart(cat, cl.Name, w.segSize)
		if err != nil {
			return nil, err
		}
		out = append(out, clusterStatus(cl.Name, w, cp, bv, p, now))
	}
	return out, nil
}

// FleetStatus evaluates every cluster from the running gateway's WAL
// summaries.
func (s *Server) FleetStatus(now time.Time) ([]ClusterStatus, error) {
	s.fleet.mu.Lock()
	names := make([]string, 0, len(s.fleet.clusters))
	snaps := map[string]*walState{}
	for n, w := range s.fleet.clusters {
		names = append(names, n)
		snaps[n] = w.clone()
	}
	s.fleet.mu.Unlock()
	// Clusters without WAL: those with backups, and those a host may
	// push to (a push token) but that never archived anything; not the
	// names that only carry storage-team (admin) tokens.
	clusters, err := s.catalog.Clusters()
	if err != nil {
		return nil, err
	}
	tokens, err := s.catalog.ListTokens()
	if err != nil {
		return nil, err
	}
	pushable := map[string]bool{}
	for _, t := range tokens {
		if t.Has(index.ScopePush) {
			pushable[t.Cluster] = true
		}
	}
	for _, c := range clusters {
		if snaps[c.Name] != nil {
			continue
		}
		if !pushable[c.Name] {
			if b, err := s.catalog.Backups(c.Name, ""); err != nil || len(b) == 0 {
				continue
			}
		}
		names = append(names, c.Name)
		snaps[c.Name] = newWALState()
	}
	sort.Strings(names)
	out := make([]ClusterStatus, 0, len(names))
	policy := s.cfg.Health.policy()
	bv, err := s.backendView()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		cp, err := s.catalogPart(n, snaps[n].segSize)
		if err != nil {
			return nil, err
		}
		out = append(out, clusterStatus(n, snaps[n], cp, bv, policy, now))
	}
	return out, nil
}

// ClusterHealth evaluates one cluster (wal-verify).
func (s *Server) ClusterHealth(cluster string, now time.Time) (ClusterStatus, error) {
	s.fleet.mu.Lock()
	var snap *walState
	if w := s.fleet.clusters[cluster]; w != nil {
		snap = w.clone()
	}
	s.fleet.mu.Unlock()
	if snap == nil {
		snap = newWALState()
	}
	cp, err := s.catalogPart(cluster, snap.segSize)
	if err != nil {
		return ClusterStatus{}, err
	}
	bv, err := s.backendView()
	if err != nil {
		return ClusterStatus{}, err
	}
	return clusterStatus(cluster, snap, cp, bv, s.cfg.Health.policy(), now), nil
}

// getHealth is GET /v1/clusters/{cluster}/health: the cluster's health as
// wal-verify shows it (a push or fetch token of the cluster).
func (s *Server) getHealth(c *fiber.Ctx) error {
	cluster := c.Params("cluster")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return apiErr(protocol.CodeInvalidName, "%v", err)
	}
	t, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if t.Cluster != cluster {
		return apiErr(protocol.CodeForbidden, "token %s is bound to cluster %q, not %q", t.ID, t.Cluster, cluster)
	}
	st, err := s.ClusterHealth(cluster, time.Now())
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	out, err := s.withDamage(cluster, st)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	return c.JSON(out)
}

// backendView is what health needs of the backends: each cluster's group
// and every backend's replication queue.
type backendView struct {
	groups []GroupConfig
	queues map[string]index.QueueStats
}

func newBackendView(cat *index.Catalog, groups []GroupConfig, bcs []BackendConfig) (backendView, error) {
	bv := backendView{groups: groups, queues: map[string]index.QueueStats{}}
	for _, b := range bcs {
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
	for _, g := range bv.groups {
		for _, p := range g.Clusters {
			if ok, _ := path.Match(p, cluster); ok {
				return g.Backends
			}
		}
	}
	return nil
}

func (s *Server) backendView() (backendView, error) {
	return newBackendView(s.catalog, s.cfg.Groups, s.cfg.Backends)
}
