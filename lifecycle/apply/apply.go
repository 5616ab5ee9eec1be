package apply

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
)

// Options say what one lifecycle run covers and does.
type Options struct {
	// Cluster limits the run to one cluster ("" = every cluster).
	Cluster string `json:"cluster,omitempty"`
	// Apply carries the plan out; without it the run only plans.
	Apply bool `json:"apply"`
	// Retention, when set, replaces the groups' policies by this
	// retention alone, without tiering (walgate-client delete).
	Retention *lifecycle.Policy `json:"retention,omitempty"`
}

// Step is a run of like actions: on one backend, of one kind,
// for one reason, over the objects First..Last (WAL files of one
// timeline, or the objects of one backup).
type Step struct {
	Cluster string               `json:"cluster"`
	Backend string               `json:"backend"`
	Kind    lifecycle.ActionKind `json:"kind"`
	From    string               `json:"from,omitempty"`
	To      string               `json:"to,omitempty"`
	First   string               `json:"first"`
	Last    string               `json:"last"`
	Count   int                  `json:"count"`
	Reason  string               `json:"reason"`
}

// Done is what an applied run did.
type Done struct {
	Moved          int      `json:"moved"`   // copies moved to another class
	Deleted        int      `json:"deleted"` // WAL copies and backup objects deleted
	BackupsDeleted []string `json:"backups_deleted,omitempty"`
	Failures       int      `json:"failures"`
	Errors         []string `json:"errors,omitempty"` // the first 20 failures
}

// Result is a lifecycle run: its plan (actions summarised as
// steps) and, when applied, what was done.
type Result struct {
	Time    time.Time        `json:"time"`
	Applied bool             `json:"applied"`
	Plan    lifecycle.Result `json:"plan"`
	Steps   []Step           `json:"steps"`
	Done    Done             `json:"done"`
}

func (d *Done) fail(format string, args ...any) {
	d.Failures++
	if len(d.Errors) < 20 {
		d.Errors = append(d.Errors, fmt.Sprintf(format, args...))
	}
}

// ErrBusy: another lifecycle run is in progress.
var ErrBusy = errors.New("a lifecycle run is already in progress; try again when it ends")

// Stores is what the executor needs of the gateway's stores.
type Stores interface {
	// Names lists the backends.
	Names() []string
	// Backend is the named backend (false: not configured).
	Backend(name string) (backends.Backend, bool)
	// WriteClass is the class the backend writes new objects in.
	WriteClass(name string) string
	// Policy is the lifecycle policy of the cluster's group.
	Policy(cluster string) (lifecycle.Policy, error)
	// DeleteEverywhere deletes key from the holders and the rest of the
	// cluster's group, and drops its queued copies.
	DeleteEverywhere(cluster, key string, holders []string) error
}

// Config is what an Executor works with. Catalog, Stores, Backends and
// SegmentSize are required.
type Config struct {
	Catalog index.Interface
	Stores  Stores
	// Backends describe the stores' class names to the planner.
	Backends []lifecycle.Backend
	// Prices are the monthly prices of groups that set none.
	Prices map[lifecycle.Class]float64
	// SegmentSize is a cluster's WAL segment size (0: not known yet).
	SegmentSize func(cluster string) (uint64, error)
	// WALDeleted, when set, hears of every cluster whose WAL a run
	// deleted (the running gateway refreshes its WAL summary).
	WALDeleted func(cluster string) error
	// Observe, when set, counts each action by kind and result (done,
	// failed).
	Observe func(kind lifecycle.ActionKind, result string)
	Log     *slog.Logger
}

// Executor plans lifecycle runs over the catalog and carries them out on
// the stores. It starts nothing in the background.
type Executor struct {
	catalog    index.Interface
	stores     Stores
	lcBackends []lifecycle.Backend
	prices     map[lifecycle.Class]float64
	segSize    func(cluster string) (uint64, error)
	walDeleted func(cluster string) error
	observe    func(kind lifecycle.ActionKind, result string)
	log        *slog.Logger
	lcMu       sync.Mutex // one lifecycle run at a time
}

// New returns an executor over cfg.
func New(cfg Config) *Executor {
	s := &Executor{catalog: cfg.Catalog, stores: cfg.Stores, lcBackends: cfg.Backends, prices: cfg.Prices,
		segSize: cfg.SegmentSize, walDeleted: cfg.WALDeleted, observe: cfg.Observe, log: cfg.Log}
	if s.observe == nil {
		s.observe = func(lifecycle.ActionKind, string) {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// policyFor is the lifecycle policy of a cluster's group, or the one-off
// retention of opts.
func (s *Executor) policyFor(cluster string, opts Options) (lifecycle.Policy, error) {
	p, err := s.stores.Policy(cluster)
	if err != nil {
		return p, err
	}
	if opts.Retention != nil {
		prices := p.Prices
		p = *opts.Retention
		p.Tiers, p.Prices = nil, prices
	}
	if len(p.Prices) == 0 {
		p.Prices = s.prices
	}
	return p, nil
}

// Run plans tiering and retention for every cluster (or one) at now and,
// with opts.Apply, carries the plan out cluster by cluster.
func (s *Executor) Run(ctx context.Context, opts Options, now time.Time) (Result, error) {
	if !s.lcMu.TryLock() {
		return Result{}, ErrBusy
	}
	defer s.lcMu.Unlock()
	res := Result{Time: now.UTC(), Applied: opts.Apply}
	clusters, err := s.catalog.Clusters()
	if err != nil {
		return res, err
	}
	if opts.Cluster != "" {
		found := false
		for _, c := range clusters {
			found = found || c.Name == opts.Cluster
		}
		if !found {
			return res, fmt.Errorf("cluster %s: %w", opts.Cluster, index.ErrNotFound)
		}
	}
	pending, err := s.pendingByCluster()
	if err != nil {
		return res, err
	}
	// Clusters are planned (and applied) a few at a time, each by one
	// goroutine; the result lists them in catalog order.
	var names []string
	for _, cl := range clusters {
		if opts.Cluster == "" || cl.Name == opts.Cluster {
			names = append(names, cl.Name)
		}
	}
	runs := make([]clusterRun, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(max(1, runtime.GOMAXPROCS(0)), len(names)) {
		wg.Go(func() {
			for i := range next {
				runs[i] = s.lifecycleCluster(ctx, names[i], opts, pending[names[i]], now)
			}
		})
	}
	for i := range names {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	var before, after []lifecycle.Cost
	var failed []string
	for _, r := range runs {
		res.Plan.Clusters = append(res.Plan.Clusters, r.plan)
		res.Plan.Refusals = append(res.Plan.Refusals, r.refusals...)
		res.Steps = append(res.Steps, r.steps...)
		before, after = append(before, r.plan.Before), append(after, r.plan.After)
		if r.failed {
			failed = append(failed, r.plan.Name)
		}
		d := r.done
		res.Done.Moved += d.Moved
		res.Done.Deleted += d.Deleted
		res.Done.BackupsDeleted = append(res.Done.BackupsDeleted, d.BackupsDeleted...)
		res.Done.Failures += d.Failures
		for _, e := range d.Errors {
			if len(res.Done.Errors) < 20 {
				res.Done.Errors = append(res.Done.Errors, e)
			}
		}
	}
	res.Plan.Before, res.Plan.After = sumCosts(before), sumCosts(after)
	if len(failed) > 0 {
		return res, fmt.Errorf("lifecycle: no plan for %s (see each cluster's error); nothing was done there", strings.Join(failed, ", "))
	}
	return res, nil
}

// clusterRun is one cluster's part of a lifecycle run.
type clusterRun struct {
	plan     lifecycle.ClusterPlan
	refusals []lifecycle.Refusal
	steps    []Step
	done     Done
	failed   bool // no plan: nothing was done
}

// lifecycleCluster plans one cluster and, with opts.Apply, applies the
// plan.
func (s *Executor) lifecycleCluster(ctx context.Context, name string, opts Options, pending int, now time.Time) clusterRun {
	fail := func(err error) clusterRun {
		return clusterRun{plan: lifecycle.ClusterPlan{Name: name, Error: err.Error()}, failed: true}
	}
	policy, err := s.policyFor(name, opts)
	if err != nil {
		return fail(err)
	}
	var walErr error
	snap, err := s.lifecycleSnapshot(ctx, name, pending, policy.RetentionOn(), &walErr)
	if err != nil {
		return fail(err)
	}
	// A dry run keeps only the steps; an applied one, every action.
	var acts []lifecycle.Action
	steps := newStepper()
	r, err := lifecycle.PlanStream(func(yield func(lifecycle.Cluster) bool) { yield(snap) }, s.lcBackends, policy, now,
		func(a lifecycle.Action) {
			steps.add(a)
			if opts.Apply {
				acts = append(acts, a)
			}
		})
	if len(r.Clusters) != 1 {
		return fail(fmt.Errorf("lifecycle plan: %w", err))
	}
	if walErr != nil {
		return fail(walErr)
	}
	run := clusterRun{plan: r.Clusters[0], refusals: r.Refusals}
	if err != nil || run.plan.Error != "" {
		run.failed = true
		return run
	}
	run.steps = steps.list
	if opts.Apply {
		s.applyCluster(ctx, name, run.plan, acts, &run.done)
	}
	return run
}

func sumCosts(cs []lifecycle.Cost) lifecycle.Cost {
	out := lifecycle.Cost{Bytes: map[lifecycle.Class]int64{}}
	for _, c := range cs {
		for k, v := range c.Bytes {
			out.Bytes[k] += v
		}
		out.Unknown += c.Unknown
		out.Monthly += c.Monthly
	}
	return out
}

// stepper folds actions into steps.
type stepper struct {
	list []Step
	at   map[stepKey]int
	// the last action's key and step: runs of like actions skip the map
	last    stepKey
	lastIdx int
}

type stepKey struct {
	cluster, backend, from, to, reason, group string
	kind                                      lifecycle.ActionKind
}

func newStepper() *stepper { return &stepper{at: map[stepKey]int{}} }

func (st *stepper) add(a lifecycle.Action) {
	group := a.Object // a backup's objects form one step
	if a.Concerns != lifecycle.ConcernsBackup {
		group = "wal:" + a.Object[:min(8, len(a.Object))] // WAL files: one step per timeline
	}
	k := stepKey{a.Cluster, a.Backend, a.From, a.To, a.Reason, group, a.Kind}
	i, ok := st.lastIdx, len(st.list) > 0 && k == st.last
	if !ok {
		i, ok = st.at[k]
	}
	st.last = k
	if !ok {
		st.lastIdx = len(st.list)
		st.at[k] = len(st.list)
		st.list = append(st.list, Step{Cluster: a.Cluster, Backend: a.Backend, Kind: a.Kind, From: a.From, To: a.To,
			First: a.Object, Last: a.Object, Count: 1, Reason: a.Reason})
		return
	}
	st.lastIdx = i
	s := &st.list[i]
	s.Count++
	if a.Object < s.First {
		s.First = a.Object
	}
	if a.Object > s.Last {
		s.Last = a.Object
	}
}

// pendingByCluster counts queued copies per cluster over every backend.
func (s *Executor) pendingByCluster() (map[string]int, error) {
	out := map[string]int{}
	for _, name := range s.stores.Names() {
		qs, err := s.catalog.QueueStats(name)
		if err != nil {
			return nil, err
		}
		for c, q := range qs.ByCluster {
			out[c] += q.Count
		}
	}
	return out, nil
}

// copiesOf lists an object's copies with their classes: as the catalog
// recorded a change, else the class the backend writes in.
func (s *Executor) copiesOf(holders []string, classes map[string]string) []lifecycle.Copy {
	out := make([]lifecycle.Copy, 0, len(holders))
	for _, h := range holders {
		class, ok := classes[h]
		if _, configured := s.stores.Backend(h); !ok && configured {
			class = s.stores.WriteClass(h)
		}
		out = append(out, lifecycle.Copy{Backend: h, Class: class})
	}
	return out
}

// metadataFiles are a backup's objects the planner tiers as metadata.
var metadataFiles = map[string]bool{"metadata.json": true, "files_metadata.json": true}

// lifecycleSnapshot builds the planner's view of one cluster from the
// catalog. With checkCopies it also confirms that every backup's sentinel
// is on every backend the catalog says holds it: a missing or unreadable
// one is a disagreement, and the plan deletes nothing.
func (s *Executor) lifecycleSnapshot(ctx context.Context, cluster string, pending int, checkCopies bool, walErr *error) (lifecycle.Cluster, error) {
	segSize, err := s.segSize(cluster)
	if err != nil {
		return lifecycle.Cluster{Name: cluster}, err
	}
	c := lifecycle.Cluster{Name: cluster, SegmentSize: segSize, PendingReplication: pending}
	tls, err := s.catalog.Timelines(cluster)
	if err != nil {
		return c, err
	}
	seen := map[uint32]bool{}
	for _, t := range tls {
		if t.ID > 1 {
			c.Timelines = append(c.Timelines, lifecycle.Timeline{ID: t.ID, Parent: t.Parent, SwitchLSN: t.SwitchLSN})
			seen[t.ID] = true
		}
	}
	backups, err := s.catalog.Backups(cluster, index.BackupCommitted)
	if err != nil {
		return c, err
	}
	var disagree []string
	for _, b := range backups {
		if b.Info.Timeline > 1 && !seen[b.Info.Timeline] {
			c.Timelines = append(c.Timelines, lifecycle.Timeline{ID: b.Info.Timeline})
			seen[b.Info.Timeline] = true
		}
		lb := lifecycle.Backup{Name: b.Name, Full: b.Info.Kind != "delta", DeltaFrom: b.Info.DeltaFrom, Timeline: b.Info.Timeline,
			StartSegment:  lifecycle.SegmentOf(b.Info.StartLSN, segSize),
			FinishSegment: lifecycle.SegmentOf(b.Info.FinishLSN, segSize),
			FinishTime:    b.Info.FinishTime, Permanent: b.Info.Permanent}
		for _, f := range slices.Sorted(maps.Keys(b.Files)) {
			rec := b.Files[f]
			kind := lifecycle.BackupData
			if metadataFiles[f] {
				kind = lifecycle.Metadata
			}
			lb.Objects = append(lb.Objects, lifecycle.Object{Key: rec.Key, Kind: kind, Size: rec.Size, Copies: s.copiesOf(rec.Holders(b.Backend), rec.Classes)})
		}
		lb.Objects = append(lb.Objects, lifecycle.Object{Key: b.SentinelKey, Kind: lifecycle.Metadata, Size: b.SentinelSize,
			Copies: s.copiesOf(b.Holders(), b.SentinelClasses), Sentinel: true})
		c.Backups = append(c.Backups, lb)
		if checkCopies {
			for _, h := range b.Holders() {
				be, ok := s.stores.Backend(h)
				if !ok {
					disagree = append(disagree, fmt.Sprintf("backup %s is on backend %s, which is not configured", b.Name, h))
					continue
				}
				if _, err := be.Stat(ctx, b.SentinelKey); errors.Is(err, backends.ErrNotFound) {
					disagree = append(disagree, fmt.Sprintf("backup %s's sentinel is missing from backend %s", b.Name, h))
				} else if err != nil {
					disagree = append(disagree, fmt.Sprintf("backend %s cannot confirm backup %s: %v", h, b.Name, err))
				}
			}
		}
	}
	if len(disagree) > 0 {
		if len(disagree) > 3 {
			disagree = append(disagree[:3], fmt.Sprintf("and %d more", len(disagree)-3))
		}
		c.Disagreement = strings.Join(disagree, "; ")
	}
	c.WAL = s.walSeq(cluster, segSize, walErr)
	return c, nil
}

// walSeq streams a cluster's WAL records as the planner sees them. A
// failure to read them lands in *failed: the plan is then incomplete and
// must not be applied.
func (s *Executor) walSeq(cluster string, segSize uint64, failed *error) iter.Seq[lifecycle.WALFile] {
	return func(yield func(lifecycle.WALFile) bool) {
		stopped := false
		err := s.catalog.ListWALBrief(cluster, func(name string, o index.WALBrief) error {
			f, err := lifecycle.ParseWALFile(name, segSize)
			if err != nil {
				return nil // the catalog accepted only valid names
			}
			f.Key, f.Size, f.StoredAt, f.Copies = o.Key, o.Size, o.StoredAt, s.copiesOf(o.Holders, o.Classes)
			if !yield(f) {
				stopped = true
				return errStopWAL
			}
			return nil
		})
		if err != nil && !stopped {
			*failed = fmt.Errorf("reading the WAL records: %w", err)
		}
	}
}

// errStopWAL ends a WAL listing the planner stopped reading.
var errStopWAL = errors.New("the planner stopped reading")

// applyCluster carries out one cluster's plan: first the deletions of
// backups (each: sentinel first, then its objects, on every backend, then
// the record), then the WAL deletions and class changes, several at once.
// Every deletion is logged. A failed step is counted and left for the
// next run.
func (s *Executor) applyCluster(ctx context.Context, cluster string, cp lifecycle.ClusterPlan, acts []lifecycle.Action, done *Done) {
	// Deletions an earlier run could not finish.
	if left, err := s.catalog.Backups(cluster, index.BackupDeleting); err != nil {
		done.fail("%s: listing backups being deleted: %v", cluster, err)
	} else {
		for _, b := range left {
			s.deleteBackup(ctx, cluster, b, "finishing a deletion an earlier lifecycle run began", done)
		}
	}
	if !cp.Refused {
		reasons := map[string]string{}
		for _, a := range acts {
			if a.Kind == lifecycle.Delete && a.Concerns == lifecycle.ConcernsBackup && reasons[a.Object] == "" {
				reasons[a.Object] = a.Reason
			}
		}
		for _, name := range cp.DeletedBackups {
			b, err := s.catalog.MarkBackupDeleting(cluster, name)
			if err != nil {
				done.fail("%s: backup %s: %v", cluster, name, err)
				continue
			}
			s.deleteBackup(ctx, cluster, b, reasons[name], done)
		}
	}
	var walChanges []index.CopyChange
	var cancelled []string
	walDeleted := false
	flush := func() {
		if err := s.catalog.CancelCopies(cancelled); err != nil {
			done.fail("%s: dropping queued copies of deleted WAL: %v", cluster, err)
		}
		if err := s.catalog.ApplyWALChanges(cluster, walChanges); err != nil {
			done.fail("%s: recording %d WAL changes in the catalog: %v", cluster, len(walChanges), err)
		}
		walChanges, cancelled = walChanges[:0], cancelled[:0]
	}
	backupClasses := map[string][]index.CopyChange{}
	results := s.runActions(ctx, acts, func(a lifecycle.Action) bool {
		return !(a.Kind == lifecycle.Delete && a.Concerns == lifecycle.ConcernsBackup) // backups went above
	})
	for r := range results {
		a := r.action
		if r.err != nil {
			s.observe(a.Kind, "failed")
			done.fail("%s: %s %s on %s: %v", cluster, a.Kind, a.Object, a.Backend, r.err)
			continue
		}
		s.observe(a.Kind, "done")
		switch {
		case a.Kind == lifecycle.Delete:
			done.Deleted++
			walDeleted = true
			s.log.Info("lifecycle: deleted", "cluster", cluster, "backend", a.Backend, "wal", a.Object, "key", a.Key, "reason", a.Reason)
			walChanges = append(walChanges, index.CopyChange{Name: a.Object, Backend: a.Backend, Deleted: true})
			cancelled = append(cancelled, a.Key)
		case a.Concerns == lifecycle.ConcernsBackup:
			done.Moved++
			backupClasses[a.Object] = append(backupClasses[a.Object], index.CopyChange{Name: a.Key, Backend: a.Backend, Class: a.To})
		default:
			done.Moved++
			walChanges = append(walChanges, index.CopyChange{Name: a.Object, Backend: a.Backend, Class: a.To})
		}
		if len(walChanges) >= 512 {
			flush()
		}
	}
	flush()
	for name, chs := range backupClasses {
		if err := s.catalog.SetBackupClasses(cluster, name, chs); err != nil {
			done.fail("%s: recording class changes of backup %s: %v", cluster, name, err)
		}
	}
	if walDeleted && s.walDeleted != nil {
		if err := s.walDeleted(cluster); err != nil {
			s.log.Warn("lifecycle: refreshing the WAL summary", "cluster", cluster, "err", err)
		}
	}
}

type actionResult struct {
	action lifecycle.Action
	err    error
}

// lifecycleWorkers is how many backend calls a run makes at once.
const lifecycleWorkers = 8

// runActions performs the selected actions on their backends, several at
// once, and yields each outcome.
func (s *Executor) runActions(ctx context.Context, acts []lifecycle.Action, want func(lifecycle.Action) bool) iter.Seq[actionResult] {
	return func(yield func(actionResult) bool) {
		work := make(chan lifecycle.Action)
		out := make(chan actionResult)
		var wg sync.WaitGroup
		for range lifecycleWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for a := range work {
					out <- actionResult{a, s.doAction(ctx, a)}
				}
			}()
		}
		go func() {
			defer close(work)
			for _, a := range acts {
				if !want(a) {
					continue
				}
				select {
				case work <- a:
				case <-ctx.Done():
					return
				}
			}
		}()
		go func() { wg.Wait(); close(out) }()
		stop := false
		for r := range out {
			if !stop && !yield(r) {
				stop = true // drain so the workers end
			}
		}
	}
}

func (s *Executor) doAction(ctx context.Context, a lifecycle.Action) error {
	be, ok := s.stores.Backend(a.Backend)
	if !ok {
		return fmt.Errorf("backend %s is not configured", a.Backend)
	}
	switch a.Kind {
	case lifecycle.SetClass:
		return be.SetClass(ctx, a.Key, a.To)
	case lifecycle.Delete:
		if err := be.Delete(ctx, a.Key); err != nil && !errors.Is(err, backends.ErrNotFound) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// deleteBackup deletes a backup marked deleting: its sentinel first, so
// that no backend shows a backup with parts missing, then its objects,
// then the record. On any failure the record stays, deleting, for the
// next run.
func (s *Executor) deleteBackup(ctx context.Context, cluster string, b index.Backup, reason string, done *Done) {
	keys := []string{}
	holders := [][]string{}
	if b.SentinelKey != "" {
		keys, holders = append(keys, b.SentinelKey), append(holders, b.Holders())
	}
	for _, f := range slices.Sorted(maps.Keys(b.Files)) {
		keys, holders = append(keys, b.Files[f].Key), append(holders, b.Files[f].Holders(b.Backend))
	}
	for i, key := range keys {
		if err := ctx.Err(); err != nil {
			done.fail("%s: deleting backup %s: %v", cluster, b.Name, err)
			return
		}
		if err := s.stores.DeleteEverywhere(cluster, key, holders[i]); err != nil {
			s.observe(lifecycle.Delete, "failed")
			done.fail("%s: deleting backup %s (%s): %v; it stays marked for deletion", cluster, b.Name, key, err)
			return
		}
		done.Deleted++
		s.observe(lifecycle.Delete, "done")
	}
	if err := s.catalog.DeleteBackup(cluster, b.Name); err != nil {
		done.fail("%s: removing backup %s from the catalog: %v", cluster, b.Name, err)
		return
	}
	done.BackupsDeleted = append(done.BackupsDeleted, b.Name)
	s.log.Info("lifecycle: deleted backup", "cluster", cluster, "backup", b.Name, "objects", len(keys), "bytes", b.StoredSize(), "reason", reason)
}

// Log writes a run's outcome on log: one line for the run, one per
// refusal and per failed action.
func Log(log *slog.Logger, res Result, err error) {
	moves, deletes := 0, 0
	for _, st := range res.Steps {
		if st.Kind == lifecycle.Delete {
			deletes += st.Count
		} else {
			moves += st.Count
		}
	}
	args := []any{"applied", res.Applied, "planned_moves", moves, "planned_deletions", deletes,
		"monthly_cost_before", fmt.Sprintf("%.2f", res.Plan.Before.Monthly), "monthly_cost_after", fmt.Sprintf("%.2f", res.Plan.After.Monthly)}
	if res.Applied {
		args = append(args, "moved", res.Done.Moved, "deleted", res.Done.Deleted, "backups_deleted", len(res.Done.BackupsDeleted), "failures", res.Done.Failures)
	}
	for _, r := range res.Plan.Refusals {
		log.Warn("lifecycle: deletions refused", "cluster", r.Cluster, "reason", r.Reason)
	}
	for _, e := range res.Done.Errors {
		log.Warn("lifecycle: action failed", "err", e)
	}
	if err != nil {
		log.Error("lifecycle run", append(args, "err", err)...)
		return
	}
	log.Info("lifecycle run", args...)
}
