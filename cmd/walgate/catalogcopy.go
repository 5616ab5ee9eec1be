package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// catalogCopy copies a bbolt catalog into a PostgreSQL catalog, record by
// record and insert-if-absent (see pgcatalog's Load functions), then
// verifies the copy. It serves 'index migrate' (exact: per cluster the
// target must end up holding what the source holds, no more, no less) and
// 'index rebuild' into PostgreSQL (not exact: the target may hold records
// the rebuilt source lacks, such as pushes through a running gateway).
//
// What it copies: clusters with their creation time and system claim,
// WAL records (the brief records are made from them, as every write
// does), backups in every state, drill reports, tokens (hashes as stored,
// scopes, expiry, rotation links), the replication queue, the hourly
// trends. Lifecycle state lives in those records (storage classes, a
// backup being deleted). WAL claims and duty leases are not copied: they
// are held by running processes for seconds, the bbolt catalog keeps them
// in memory only, and a stopped gateway holds none.
type catalogCopy struct {
	src      *index.Catalog
	dst      *pgcatalog.Catalog
	exact    bool
	progress io.Writer // nil: no progress lines
	batch    int       // WAL records per transaction
	verb     string    // prefix of progress lines

	lastTick time.Time
}

// copyResult is what a copy found and added.
type copyResult struct {
	Clusters []string
	Source   map[string]pgcatalog.Counts // per cluster, counted in the source
	Target   map[string]pgcatalog.Counts // per cluster, counted in the target after the copy
	Added    struct{ Clusters, WAL, Backups, Drills, Tokens, Trends, Copies int }
}

// errConflict marks a target that holds other data for a cluster the
// source has: nothing was copied.
var errConflict = errors.New("the target catalog holds other data")

// errMismatch marks a copy whose verification found a difference.
var errMismatch = errors.New("verification failed")

func (m *catalogCopy) tick(format string, args ...any) {
	if m.progress == nil || time.Since(m.lastTick) < 2*time.Second {
		return
	}
	m.lastTick = time.Now()
	fmt.Fprintf(m.progress, m.verb+": "+format+"\n", args...)
}

func (m *catalogCopy) say(format string, args ...any) {
	if m.progress != nil {
		m.lastTick = time.Now()
		fmt.Fprintf(m.progress, m.verb+": "+format+"\n", args...)
	}
}

// sourceCounts counts what the source holds per cluster, and returns
// its backups, drills and trends (small per cluster) for the copy.
func (m *catalogCopy) sourceCounts(clusters []index.Cluster, tokens map[[32]byte]index.Token, queue map[string][]index.Copy) (map[string]pgcatalog.Counts, error) {
	out := map[string]pgcatalog.Counts{}
	for _, cl := range clusters {
		n := pgcatalog.Counts{Known: true, Backups: map[index.BackupState]int{}, Queued: map[string]int{}}
		sys, err := m.src.System(cl.Name)
		switch {
		case err == nil:
			n.System = sys.SystemIdentifier
		case !errors.Is(err, index.ErrNotFound):
			return nil, err
		}
		if err := m.src.ListWALBrief(cl.Name, func(string, index.WALBrief) error { n.WAL++; n.Briefs++; return nil }); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		backups, err := m.src.Backups(cl.Name, "")
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		for _, b := range backups {
			n.Backups[b.State]++
		}
		drills, err := m.src.Drills(cl.Name, 0)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		n.Drills = len(drills)
		trends, err := m.src.Trends(cl.Name, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
		n.Trends = len(trends)
		out[cl.Name] = n
	}
	for _, t := range tokens {
		if !t.AllClusters {
			n := out[t.Cluster]
			n.Tokens++
			out[t.Cluster] = n
		}
	}
	for backend, copies := range queue {
		for _, cp := range copies {
			if n, ok := out[cp.Cluster]; ok {
				n.Queued[backend]++
			}
		}
	}
	return out, nil
}

// run copies and verifies. Its errors wrap errConflict (nothing copied)
// or errMismatch (copied, but the counts differ) where those apply.
func (m *catalogCopy) run(ctx context.Context) (copyResult, error) {
	var res copyResult
	if m.batch <= 0 {
		m.batch = 1000
	}
	clusters, err := m.src.Clusters()
	if err != nil {
		return res, fmt.Errorf("reading the source catalog: %w", err)
	}
	tokens, err := m.src.TokenRecords()
	if err != nil {
		return res, fmt.Errorf("reading the source catalog's tokens: %w", err)
	}
	backends, err := m.src.QueueBackends()
	if err != nil {
		return res, fmt.Errorf("reading the source catalog's replication queue: %w", err)
	}
	queue := map[string][]index.Copy{}
	for _, b := range backends {
		if queue[b], err = m.src.Pending(b, 0); err != nil {
			return res, fmt.Errorf("reading the source catalog's replication queue: %w", err)
		}
	}
	for _, cl := range clusters {
		res.Clusters = append(res.Clusters, cl.Name)
	}
	if res.Source, err = m.sourceCounts(clusters, tokens, queue); err != nil {
		return res, fmt.Errorf("reading the source catalog: %w", err)
	}
	total := 0
	for _, n := range res.Source {
		total += n.WAL
	}
	m.say("the source holds %d clusters, %d WAL records, %d tokens, %d queued copies", len(clusters), total, len(tokens), countCopies(queue))

	// Compare first: a target holding other data for one of these
	// clusters is refused before anything is written.
	m.say("comparing with what the target holds")
	known := map[string]bool{}
	have, err := m.dst.Clusters()
	if err != nil {
		return res, err
	}
	for _, cl := range have {
		known[cl.Name] = true
	}
	if err := m.copyRecords(ctx, clusters, tokens, nil, known, true, &res); err != nil {
		return res, err
	}
	if err := m.copyRecords(ctx, clusters, tokens, queue, nil, false, &res); err != nil {
		return res, err
	}
	return res, m.verify(ctx, tokens, &res)
}

func countCopies(queue map[string][]index.Copy) int {
	n := 0
	for _, q := range queue {
		n += len(q)
	}
	return n
}

// conflictOr wraps a *pgcatalog.Conflict that the comparing (dry) pass
// found with errConflict: then nothing was written. One the copying pass
// meets (the target changed between the passes) is an ordinary failure.
func conflictOr(err error, dry bool) error {
	var c *pgcatalog.Conflict
	if dry && errors.As(err, &c) {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

// copyRecords runs every load; dry only compares (and only for clusters
// in only, which the target knows already).
func (m *catalogCopy) copyRecords(ctx context.Context, clusters []index.Cluster, tokens map[[32]byte]index.Token,
	queue map[string][]index.Copy, only map[string]bool, dry bool, res *copyResult) error {
	for _, cl := range clusters {
		var sys *index.ClusterSystem
		if s, err := m.src.System(cl.Name); err == nil {
			sys = &s
		} else if !errors.Is(err, index.ErrNotFound) {
			return err
		}
		added, err := m.dst.LoadCluster(ctx, cl, sys, dry)
		if err != nil {
			return conflictOr(err, dry)
		}
		if added && !dry {
			res.Added.Clusters++
		}
	}
	n, err := m.dst.LoadTokens(ctx, tokens, dry)
	if err != nil {
		return conflictOr(err, dry)
	}
	if !dry {
		res.Added.Tokens += n
	}
	for _, cl := range clusters {
		if dry && !only[cl.Name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.copyCluster(ctx, cl.Name, res.Source[cl.Name].WAL, dry, res); err != nil {
			return conflictOr(err, dry)
		}
	}
	if dry {
		return nil
	}
	for _, b := range slices.Sorted(maps.Keys(queue)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := m.dst.LoadCopies(ctx, b, queue[b], false)
		if err != nil {
			return err
		}
		res.Added.Copies += n
		m.say("replication queue of %s: %d copies, %d added", b, len(queue[b]), n)
	}
	return nil
}

// copyCluster loads one cluster's WAL (streamed from the source in
// batches, one transaction each), backups, drills and trends.
func (m *catalogCopy) copyCluster(ctx context.Context, cluster string, walTotal int, dry bool, res *copyResult) error {
	var batch []index.WALObject
	done, added := 0, 0
	flush := func() error {
		n, err := m.dst.LoadWAL(ctx, cluster, batch, dry)
		if err != nil {
			return err
		}
		done += len(batch)
		added += n
		batch = batch[:0]
		if dry {
			m.tick("cluster %s: compared %d of %d WAL records", cluster, done, walTotal)
		} else {
			m.tick("cluster %s: %d of %d WAL records (%d added)", cluster, done, walTotal, added)
		}
		return ctx.Err()
	}
	err := m.src.ListWAL(cluster, "", func(o index.WALObject) error {
		batch = append(batch, o)
		if len(batch) >= m.batch {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		return err
	}
	backups, err := m.src.Backups(cluster, "")
	if err != nil {
		return err
	}
	nb, err := m.dst.LoadBackups(ctx, cluster, backups, dry)
	if err != nil || dry {
		return err
	}
	drills, err := m.src.Drills(cluster, 0)
	if err != nil {
		return err
	}
	nd, err := m.dst.LoadDrills(ctx, cluster, drills, false)
	if err != nil {
		return err
	}
	trends, err := m.src.Trends(cluster, time.Time{})
	if err != nil {
		return err
	}
	nt, err := m.dst.LoadTrends(ctx, cluster, trends, false)
	if err != nil {
		return err
	}
	res.Added.WAL += added
	res.Added.Backups += nb
	res.Added.Drills += nd
	res.Added.Trends += nt
	m.say("cluster %s: %d WAL records (%d added), %d backups (%d added), %d drill reports (%d added)",
		cluster, walTotal, added, len(backups), nb, len(drills), nd)
	return nil
}

// verify compares the counts per cluster and kind, checks that every
// token is there under its ID, and runs the target's Check.
func (m *catalogCopy) verify(ctx context.Context, tokens map[[32]byte]index.Token, res *copyResult) error {
	m.say("verifying")
	res.Target = map[string]pgcatalog.Counts{}
	var diffs []string
	differ := func(cluster, what string, src, dst int) {
		if src == dst || !m.exact && dst > src {
			return
		}
		diffs = append(diffs, fmt.Sprintf("cluster %s: %s: %d in the source, %d in the target", cluster, what, src, dst))
	}
	queued, err := m.dst.QueueCounts(ctx)
	if err != nil {
		return err
	}
	for _, cl := range res.Clusters {
		src := res.Source[cl]
		dst, err := m.dst.CountsOf(ctx, cl)
		if err != nil {
			return err
		}
		dst.Queued = queued[cl]
		res.Target[cl] = dst
		if !dst.Known {
			diffs = append(diffs, fmt.Sprintf("cluster %s: not in the target", cl))
			continue
		}
		if src.System != 0 && dst.System != src.System || m.exact && src.System != dst.System {
			diffs = append(diffs, fmt.Sprintf("cluster %s: system identifier %d in the source, %d in the target", cl, src.System, dst.System))
		}
		differ(cl, "WAL records", src.WAL, dst.WAL)
		differ(cl, "WAL brief records", src.WAL, dst.Briefs)
		for _, st := range []index.BackupState{index.BackupOpen, index.BackupCommitted, index.BackupDeleting} {
			differ(cl, string(st)+" backups", src.Backups[st], dst.Backups[st])
		}
		if m.exact && dst.WAL == src.WAL {
			if d := m.sameDerived(cl); d != "" {
				diffs = append(diffs, d)
			}
		}
		differ(cl, "drill reports", src.Drills, dst.Drills)
		differ(cl, "tokens", src.Tokens, dst.Tokens)
		differ(cl, "hourly trend buckets", src.Trends, dst.Trends)
		for _, b := range slices.Sorted(maps.Keys(mergeKeys(src.Queued, dst.Queued))) {
			differ(cl, "copies queued for "+b, src.Queued[b], dst.Queued[b])
		}
	}
	have, err := m.dst.TokenRecords()
	if err != nil {
		return err
	}
	for h, t := range tokens {
		if got, ok := have[h]; !ok || got.ID != t.ID {
			diffs = append(diffs, fmt.Sprintf("token %s: not in the target", t.ID))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", errMismatch, strings.Join(diffs, "; "))
	}
	if err := m.dst.Check(); err != nil {
		return fmt.Errorf("%w: %w", errMismatch, err)
	}
	m.say("verified: every count matches and the target passes its check")
	return nil
}

// walDigest is a SHA-256 over a cluster's WAL names with the SHA-256 of
// each stored object, in name order: equal in two catalogs when both
// hold the same objects under the same names.
func walDigest(c index.Interface, cluster string) (string, error) {
	h := sha256.New()
	err := c.ListWAL(cluster, "", func(o index.WALObject) error {
		fmt.Fprintf(h, "%s %s\n", o.Name, o.SHA256)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// sameDerived compares a cluster's WAL objects (names and SHA-256) in
// both catalogs, and what both derive from its WAL records: its
// timelines (with their parents and switch points) and its segment size.
func (m *catalogCopy) sameDerived(cluster string) string {
	sd, err1 := walDigest(m.src, cluster)
	dd, err2 := walDigest(m.dst, cluster)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("cluster %s: WAL: %v", cluster, err)
	}
	if sd != dd {
		return fmt.Sprintf("cluster %s: the WAL records name other objects (SHA-256) in the target than in the source", cluster)
	}
	st, err1 := m.src.Timelines(cluster)
	dt, err2 := m.dst.Timelines(cluster)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("cluster %s: timelines: %v", cluster, err)
	}
	if fmt.Sprint(st) != fmt.Sprint(dt) {
		return fmt.Sprintf("cluster %s: timelines %v in the source, %v in the target", cluster, st, dt)
	}
	ss, err1 := m.src.SegmentSize(cluster)
	ds, err2 := m.dst.SegmentSize(cluster)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("cluster %s: segment size: %v", cluster, err)
	}
	if ss != ds {
		return fmt.Sprintf("cluster %s: segment size %d in the source, %d in the target", cluster, ss, ds)
	}
	return ""
}

// mergeKeys has every key of a and b.
func mergeKeys(a, b map[string]int) map[string]int {
	out := map[string]int{}
	for k := range a {
		out[k] = 0
	}
	for k := range b {
		out[k] = 0
	}
	return out
}

// print writes the copy's summary table.
func (r copyResult) print(w io.Writer) {
	var wal, backups, drills int
	for _, n := range r.Source {
		wal += n.WAL
		drills += n.Drills
		for _, k := range n.Backups {
			backups += k
		}
	}
	fmt.Fprintf(w, "  clusters        %d (%d new in the target)\n", len(r.Clusters), r.Added.Clusters)
	fmt.Fprintf(w, "  WAL records     %d (%d added)\n", wal, r.Added.WAL)
	fmt.Fprintf(w, "  backups         %d (%d added)\n", backups, r.Added.Backups)
	fmt.Fprintf(w, "  drill reports   %d (%d added)\n", drills, r.Added.Drills)
	fmt.Fprintf(w, "  tokens added    %d\n", r.Added.Tokens)
	fmt.Fprintf(w, "  trend buckets   %d added\n", r.Added.Trends)
	fmt.Fprintf(w, "  queued copies   %d added\n", r.Added.Copies)
}
