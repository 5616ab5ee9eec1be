package main

import (
	"fmt"
	"strings"
	"time"
)

const (
	catalogBegin = "<!-- catalog: begin -->"
	catalogEnd   = "<!-- catalog: end -->"
)

// pushRatioOK says whether PostgreSQL's figure is within the target ratio
// of bbolt's.
func pushRatioOK(pg, bolt time.Duration) bool {
	return bolt > 0 && float64(pg) <= targetCatalogPushRatio*float64(bolt)
}

// rateOf is the run of kind through n gateways, if measured.
func (cf *catalogFigures) rateOf(kind string, n int) (catalogRate, bool) {
	for _, r := range cf.rates {
		if r.kind == kind && r.gateways == n {
			return r, true
		}
	}
	return catalogRate{}, false
}

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "**FAIL**"
}

// markdown is the catalog section of docs/benchmarks.md.
func (cf *catalogFigures) markdown() string {
	var w strings.Builder
	w.WriteString(catalogBegin + "\n## The PostgreSQL catalog (a gateway fleet)\n\n")
	fmt.Fprintf(&w, "One PostgreSQL 15 server on loopback holds the catalogs (fsync on, `max_connections = 200` and `max_wal_size = 4GB` for the bulk load, otherwise its defaults; %s), started by the benchmark. Measured with `go run ./cmd/walgate-bench -sections catalog -out docs/benchmarks.md`.\n\n", shortPG(cf.postgres))

	w.WriteString("### Push latency: PostgreSQL catalog against bbolt\n\n")
	fmt.Fprintf(&w, "%d exec'd `walgate-client wal-push` of real 16 MiB segments (zstd + encryption) through each of two gateways (`walgate serve`), one on the bbolt catalog in its data directory, one on a PostgreSQL catalog; both store into an fs backend in their data directory. Each segment goes to both, under a new name, the first gateway alternating from push to push.\n\n", cf.pushes)
	mdTable(&w, [][]string{
		{"Catalog", "Median", "p90", "Ratio to bbolt (median / p90)", "Target ≤ 1.25x"},
		{"bbolt", ms(cf.pushBolt.median()), ms(cf.pushBolt.pct(90)), "1.00x / 1.00x", ""},
		{"PostgreSQL", ms(cf.pushPG.median()), ms(cf.pushPG.pct(90)), ratio(cf.pushPG.median(), cf.pushBolt.median()) + " / " + ratio(cf.pushPG.pct(90), cf.pushBolt.pct(90)),
			verdict(pushRatioOK(cf.pushPG.median(), cf.pushBolt.median()) && pushRatioOK(cf.pushPG.pct(90), cf.pushBolt.pct(90)))},
	})

	w.WriteString("### Pushes per second through 1, 2 and 3 gateways\n\n")
	fmt.Fprintf(&w, "1, 2 and 3 gateways (`walgate serve`, each with its own data directory) on this machine, on one PostgreSQL catalog and one shared fs store; %d concurrent pushers, pusher *i* through gateway *i* mod *n*, each exec'ing `walgate-client wal-push` (zstd + encryption) of a new name as soon as its last push returned, for %s per run. *Switched* segments are 16 MiB segments that a WAL switch ended early (64 KiB of real WAL, then zeros, as `archive_timeout` makes them on a quiet database): they cost the client little to compress, so the gateway and catalog dominate; *real* segments are those of the latency table. Only the gateways of a run are running. On this machine the gateways, the catalog server and the pushers share the same cores, so more gateways add no CPU: the figure shows what a fleet costs in coordination, not how it scales across machines.\n\n", cf.pushers, cf.rateTime)
	rows := [][]string{{"Segments", "Gateways", "Pushes", "Pushes/s", "Ratio to 1 gateway", "Push median", "Push p90"}}
	for _, kind := range []string{segmentsSwitched, segmentsReal} {
		one, _ := cf.rateOf(kind, 1)
		for n := 1; n <= 3; n++ {
			r, ok := cf.rateOf(kind, n)
			if !ok {
				continue
			}
			rel := "-"
			if one.perSecond() > 0 {
				rel = fmt.Sprintf("%.2fx", r.perSecond()/one.perSecond())
			}
			rows = append(rows, []string{kind, fmt.Sprint(n), fmt.Sprint(r.pushes), fmt.Sprintf("%.1f", r.perSecond()), rel, ms(r.latency.median()), ms(r.latency.pct(90))})
		}
	}
	mdTable(&w, rows)

	if p := cf.plan; p != nil {
		w.WriteString("### Lifecycle plan over WAL records read from PostgreSQL\n\n")
		fmt.Fprintf(&w, "%d clusters x %d WAL records (%s in all, the shape of the bbolt figure above) and 3 full backups each, in a PostgreSQL catalog: the clusters and backups written through the catalog, the WAL rows with one COPY of the rows the catalog itself writes, in the order a fleet's pushes write them (every cluster's first segment, then every cluster's second, ...), then `VACUUM (ANALYZE)`, as autovacuum leaves a table that is mostly inserted into (%s; `walgate.wal` %.0f MiB with its indexes). A gateway (`gateway.Open`, in the benchmark's process; opening it reads every WAL record once to build the WAL summaries: %s) then plans (`Server.Lifecycle`, dry run, as `walgate lifecycle plan` runs it) with the same policy as above.\n\n",
			p.clusters, p.perCluster, thousands(p.clusters*p.perCluster), p.seed.Round(time.Second), float64(p.tableBytes)/(1<<20), p.start.Round(time.Millisecond))
		mdTable(&w, [][]string{
			{"Plan", "Time", "Per million records", "Target for 10 million < 10 s"},
			{fmt.Sprintf("cold: PostgreSQL stopped, every file of its data directory evicted from the page cache (fsync, then posix_fadvise DONTNEED; %.1f%% of its pages still resident by mincore), started again", 100*p.resident),
				fmt.Sprintf("%.2f s", p.cold.Seconds()), perMillion(p.cold, p.scanned), p.verdict(p.cold)},
			{"warm: the same plan again", fmt.Sprintf("%.2f s", p.warm.Seconds()), perMillion(p.warm, p.scanned), p.verdict(p.warm)},
		})
		fmt.Fprintf(&w, "The plan read %s WAL records and would delete %d objects. It reads each cluster's brief records (key, holders, classes, size, stored time) in name order from an index that includes them, a page of up to 16,384 at a time, two clusters at a time.\n\n", thousands(p.scanned), p.deletes)
	}

	if ff := cf.fleet; ff != nil {
		w.WriteString("### /metrics and the fleet page from PostgreSQL\n\n")
		fmt.Fprintf(&w, "The fleet-health catalog above (%d clusters of %d WAL segments, a full backup, a delta and a drill report each, written through the catalog API: %s) in a PostgreSQL catalog, served by a gateway in the benchmark's process (start-up: %s); %d timed requests each after one warm-up. The same on a bbolt catalog in the same run, just before, for the ratio.\n\n",
			ff.clusters, ff.segments, ff.seed.Round(time.Second), ff.start.Round(time.Millisecond), fleetRuns)
		bolt := cf.fleetBolt
		if bolt == nil {
			bolt = &fleetFigures{}
		}
		mdTable(&w, [][]string{
			{"Request", "Median", "p90", "Response size", "bbolt median", "Ratio to bbolt", "Target < 100 ms"},
			{"GET /metrics", ms(ff.metrics.median()), ms(ff.metrics.pct(90)), fmt.Sprintf("%.0f KiB", float64(ff.metricsBytes)/1024),
				ms(bolt.metrics.median()), ratio(ff.metrics.median(), bolt.metrics.median()), verdict(ff.metrics.median() <= targetFleetResponse)},
			{"GET /ui/ (fleet page, admin token)", ms(ff.page.median()), ms(ff.page.pct(90)), fmt.Sprintf("%.0f KiB", float64(ff.pageBytes)/1024),
				ms(bolt.page.median()), ratio(ff.page.median(), bolt.page.median()), verdict(ff.page.median() <= targetFleetResponse)},
		})
	}
	w.WriteString(catalogEnd + "\n")
	return w.String()
}

// planRecords is the size of the catalog the plan's target is set for.
const planRecords = 10_000_000

// verdict of a plan of d over p.scanned records against the target for
// 10 million: scaled to 10 million when the catalog is smaller or larger.
func (p *catalogPlan) verdict(d time.Duration) string {
	if p.scanned == 0 {
		return "-"
	}
	if p.scanned == planRecords {
		return verdict(d < targetCatalogPlan)
	}
	scaled := time.Duration(float64(d) * planRecords / float64(p.scanned))
	return fmt.Sprintf("%s (%.1f s scaled to 10 million)", verdict(scaled < targetCatalogPlan), scaled.Seconds())
}

func perMillion(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", d.Seconds()/(float64(n)/1e6))
}

// thousands writes n with commas: 10,000,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
