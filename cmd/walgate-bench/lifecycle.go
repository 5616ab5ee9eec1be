package main

import (
	"fmt"
	"iter"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/s3"
	"github.com/walgate/walgate/index/pgname"
	"github.com/walgate/walgate/lifecycle"
)

const (
	lifecycleClusters   = 100
	lifecycleSegments   = 100_000 // per cluster: one a minute, about 69 days
	targetLifecyclePlan = 5 * time.Second
)

// lifecyclePolicy is the policy the figure plans with: the example.
func lifecyclePolicy() lifecycle.Policy {
	return lifecycle.Policy{
		Tiers: []lifecycle.Tier{
			{Kind: lifecycle.WAL, After: 7 * 24 * time.Hour, Class: lifecycle.Warm},
			{Kind: lifecycle.WAL, After: 30 * 24 * time.Hour, Class: lifecycle.Cold},
			{Kind: lifecycle.BackupData, After: 7 * 24 * time.Hour, Class: lifecycle.Warm},
			{Kind: lifecycle.BackupData, After: 30 * 24 * time.Hour, Class: lifecycle.Archive},
			{Kind: lifecycle.Metadata, After: 30 * 24 * time.Hour, Class: lifecycle.Warm},
		},
		RetainFull: 2,
		PITRWindow: 14 * 24 * time.Hour,
		// S3 us-east-1 list prices per GiB-month (STANDARD, STANDARD_IA,
		// GLACIER_IR, GLACIER).
		Prices: map[lifecycle.Class]float64{lifecycle.Hot: 0.023, lifecycle.Warm: 0.0125, lifecycle.Cold: 0.004, lifecycle.Archive: 0.0036},
	}
}

// lifecycleCluster is one synthetic cluster: a WAL segment a minute up to
// now, a promotion to timeline 2 at 60%, a full backup a week and a delta
// every day, all on s3 and azure. Its WAL is generated as it streams.
func lifecycleCluster(i int, now time.Time) lifecycle.Cluster {
	name := fmt.Sprintf("db%03d", i)
	const segSize = 16 << 20
	first := now.Add(-lifecycleSegments * time.Minute)
	promoteAt := uint64(lifecycleSegments * 6 / 10)
	tlOf := func(n uint64) uint32 {
		if n >= promoteAt {
			return 2
		}
		return 1
	}
	c := lifecycle.Cluster{Name: name, Timelines: []lifecycle.Timeline{{ID: 2, Parent: 1, SwitchLSN: promoteAt*segSize + 4096}}}
	var last string
	for n := uint64(60); n < lifecycleSegments; n += 24 * 60 {
		tl := tlOf(n)
		b := lifecycle.Backup{Name: "base_" + lifecycle.SegmentName(tl, n, 0), Timeline: tl, StartSegment: n, FinishSegment: n + 2,
			FinishTime: first.Add(time.Duration(n+3) * time.Minute), Full: n%(7*24*60) == 60}
		if !b.Full {
			b.DeltaFrom = last
			b.Name += "_D_" + strings.TrimPrefix(last, "base_")[:24]
		}
		last = b.Name
		p := name + "/basebackups_005/" + b.Name
		cs := []lifecycle.Copy{{Backend: "s3"}, {Backend: "az"}}
		size := int64(8 << 30)
		if !b.Full {
			size = 1 << 30
		}
		b.Objects = []lifecycle.Object{
			{Key: p + "_backup_stop_sentinel.json", Kind: lifecycle.Metadata, Size: 4 << 10, Copies: cs, Sentinel: true},
			{Key: p + "/metadata.json", Kind: lifecycle.Metadata, Size: 2 << 10, Copies: cs},
			{Key: p + "/files_metadata.json", Kind: lifecycle.Metadata, Size: 2 << 20, Copies: cs},
			{Key: p + "/tar_partitions/part_001.tar.zst", Kind: lifecycle.BackupData, Size: size, Copies: cs},
		}
		c.Backups = append(c.Backups, b)
	}
	c.WAL = func(yield func(lifecycle.WALFile) bool) {
		copies := []lifecycle.Copy{{Backend: "s3"}, {Backend: "az"}}
		prefix := name + "/wal_005/"
		h := "00000002.history"
		if !yield(lifecycle.WALFile{Name: h, Key: prefix + h, Kind: pgname.History, Timeline: 2, Size: 42,
			StoredAt: first.Add(time.Duration(promoteAt) * time.Minute), Copies: copies}) {
			return
		}
		// Names are built by hand: fmt would dominate the figure.
		key := []byte(prefix + "000000000000000000000000.zst")
		for n := uint64(0); n < lifecycleSegments; n++ {
			tl := tlOf(n)
			putHex(key[len(prefix):], uint32(tl))
			putHex(key[len(prefix)+8:], uint32(n/256))
			putHex(key[len(prefix)+16:], uint32(n%256))
			k := string(key)
			seg := k[len(prefix) : len(prefix)+24]
			f := lifecycle.WALFile{Name: seg, Key: k, Kind: pgname.Segment, Timeline: tl, Segment: n,
				Size: 5 << 20, StoredAt: first.Add(time.Duration(n) * time.Minute), Copies: copies}
			if !yield(f) {
				return
			}
		}
	}
	return c
}

// putHex writes v as 8 upper-case hex digits.
func putHex(b []byte, v uint32) {
	const digits = "0123456789ABCDEF"
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
}

func lifecycleFleet(now time.Time) iter.Seq[lifecycle.Cluster] {
	return func(yield func(lifecycle.Cluster) bool) {
		for i := range lifecycleClusters {
			if !yield(lifecycleCluster(i, now)) {
				return
			}
		}
	}
}

// peakHeap samples the live heap every few milliseconds until stopped.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// measureLifecycle times lifecycle.PlanStream over 100 clusters x 100,000
// WAL segments (10 million) generated as they stream, with the peak heap,
// and the monthly storage cost before and after the plan. It runs in this
// process and needs no PostgreSQL.
func measureLifecycle() (string, error) {
	now := time.Now().UTC().Truncate(time.Minute)
	s3 := lifecycle.NewBackend("s3", s3.Classes())
	az := lifecycle.NewBackend("az", azure.Classes())
	backends := []lifecycle.Backend{s3, az}
	p := lifecyclePolicy()

	// The stream alone: what generating the snapshot costs, to tell apart
	// from planning.
	runtime.GC()
	t0 := time.Now()
	var files int
	for c := range lifecycleFleet(now) {
		for range c.WAL {
			files++
		}
	}
	gen := time.Since(t0)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := peakHeap()
	counts := map[lifecycle.ActionKind]int{}
	t0 = time.Now()
	res, err := lifecycle.PlanStream(lifecycleFleet(now), backends, p, now, func(a lifecycle.Action) { counts[a.Kind]++ })
	took := time.Since(t0)
	peak := stop()
	if err != nil {
		return "", err
	}
	var walDeleted, backupsDeleted, backups int
	for _, cp := range res.Clusters {
		walDeleted += cp.WALDeleted
		backupsDeleted += len(cp.DeletedBackups)
		backups += len(cp.Retained) + len(cp.DeletedBackups)
	}
	verdict := "meets"
	if took > targetLifecyclePlan {
		verdict = "misses"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Lifecycle planner (`lifecycle.PlanStream`, one goroutine) over %d clusters x %d WAL segments (%d WAL files, %d backups; a promotion to timeline 2 in each), policy: WAL warm after 7 days and cold after 30, backup data warm after 7 days and archive after 30, metadata warm after 30, retain_full 2, pitr_window 14 days; backends s3 and azure.\n\n",
		lifecycleClusters, lifecycleSegments, files, backups)
	fmt.Fprintf(&b, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| plan time (including generating the stream) | %.2f s (target < %s: %s) |\n", took.Seconds(), targetLifecyclePlan, verdict)
	fmt.Fprintf(&b, "| generating the stream alone | %.2f s |\n", gen.Seconds())
	fmt.Fprintf(&b, "| peak live heap during the plan (above %.1f MiB before) | %.1f MiB |\n", mib(int64(base.HeapAlloc)), mib(int64(peak-min(peak, base.HeapAlloc))))
	fmt.Fprintf(&b, "| actions | %d set-class, %d delete (%d WAL files, %d backups) |\n", counts[lifecycle.SetClass], counts[lifecycle.Delete], walDeleted, backupsDeleted)
	fmt.Fprintf(&b, "| stored before | %.1f TiB |\n", tib(res.Before))
	fmt.Fprintf(&b, "| stored after | %.1f TiB |\n", tib(res.After))
	fmt.Fprintf(&b, "| monthly cost before (hot %.4f, warm %.4f, cold %.4f, archive %.4f $/GiB) | $%.0f |\n",
		p.Prices[lifecycle.Hot], p.Prices[lifecycle.Warm], p.Prices[lifecycle.Cold], p.Prices[lifecycle.Archive], res.Before.Monthly)
	fmt.Fprintf(&b, "| monthly cost after | $%.0f |\n", res.After.Monthly)
	return b.String(), nil
}

func tib(c lifecycle.Cost) float64 {
	var n int64
	for _, v := range c.Bytes {
		n += v
	}
	return float64(n+c.Unknown) / (1 << 40)
}

const (
	lifecycleBegin = "<!-- lifecycle: begin -->"
	lifecycleEnd   = "<!-- lifecycle: end -->"
)

// lifecycleSection is measureLifecycle as a section of the report.
func lifecycleSection() (string, error) {
	logf("lifecycle: planning over %d clusters x %d segments", lifecycleClusters, lifecycleSegments)
	text, err := measureLifecycle()
	if err != nil {
		return "", err
	}
	logf("lifecycle: planning through the gateway over a catalog of %d clusters x %d segments", catalogClusters, catalogSegments)
	more, err := measureLifecycleCatalog()
	if err != nil {
		return "", err
	}
	text = strings.TrimRight(text, "\n") + more
	return lifecycleBegin + "\n## Lifecycle planner\n\nCommand: `go run ./cmd/walgate-bench -sections lifecycle -out docs/benchmarks.md` (part of `make bench`). " + text + lifecycleEnd + "\n", nil
}
