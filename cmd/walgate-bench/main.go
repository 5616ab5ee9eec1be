// Command walgate-bench measures walgate's archive path on real PostgreSQL 15
// WAL segments, and its base backups (backup-push, backup-fetch) of a
// pgbench database, and writes the figures, with baselines measured in the
// same run (copy + fsync for WAL; pg_basebackup and cp -a + sync for base
// backups), to docs/benchmarks.md. 'make bench' runs it:
//
//	go run ./cmd/walgate-bench -out docs/benchmarks.md
//
// It must run as root (the PostgreSQL clusters run as the postgres user
// through cmd/internal/pgtest) after 'make build' (it execs bin/walgate and
// bin/walgate-client, as PostgreSQL's archive_command or a DBA would).
// Everything it starts, the gateways and the clusters, is stopped and
// removed on exit, on error and on Ctrl-C, with the scratch directory.
// -backup-scale 0 skips the base backups; a smaller scale makes a quick
// run. The catalog section (a fleet's PostgreSQL catalog against bbolt)
// starts a PostgreSQL 15 server of its own for the catalogs; its -catalog-*
// flags make it smaller for a quick run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// options are the command-line settings.
type options struct {
	out       string
	binDir    string
	workDir   string
	scale     int
	oltp      time.Duration
	clients   int
	minRuns   int
	sustained int
	keep      bool

	backupScale int
	backupRuns  int
	deltaScale  int
	drainSegs   int
	// recovery section
	recoverySegs, recoveryRuns int
	sections                   map[string]bool

	catalogPushes        int
	catalogPushers       int
	catalogRateTime      time.Duration
	catalogRecords       int
	catalogFleetClusters int
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == spawnHelperArg {
		os.Exit(spawnHelper())
	}
	var o options
	flag.StringVar(&o.out, "out", "", "write the Markdown report to this file (make bench: docs/benchmarks.md)")
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding walgate and walgate-client ('make build')")
	flag.StringVar(&o.workDir, "workdir", "", "parent of the scratch directory (default $TMPDIR or /tmp); the gateway's store and the baseline write here, so put it on the disk to measure")
	flag.IntVar(&o.scale, "scale", 20, "pgbench -i scale factor for the COPY-load segments")
	flag.DurationVar(&o.oltp, "oltp", 20*time.Second, "length of the pgbench OLTP run for the OLTP segments")
	flag.IntVar(&o.clients, "clients", 4, "pgbench clients in the OLTP run")
	flag.IntVar(&o.minRuns, "runs", 20, "minimum timed pushes per configuration (segments are reused under new names when there are fewer)")
	flag.IntVar(&o.sustained, "sustained", 100, "sequential pushes in the throughput run")
	flag.IntVar(&o.backupScale, "backup-scale", 100, "pgbench -i scale factor of the database the base backups copy (100: about 1.5 GB); 0 skips the base-backup figures")
	flag.IntVar(&o.backupRuns, "backup-runs", 3, "timed runs of every base-backup method (the median is reported; of 2, the better)")
	flag.IntVar(&o.deltaScale, "delta-scale", 100, "pgbench -i scale factor of the delta-backup chain")
	flag.IntVar(&o.drainSegs, "drain-segments", 200, "peer section: .ready segments PostgreSQL's archiver drains through each tool")
	flag.IntVar(&o.recoverySegs, "recovery-segments", 200, "recovery section: segments of WAL after the base backup that each recovery replays")
	flag.IntVar(&o.recoveryRuns, "recovery-runs", 3, "recovery section: recoveries through each restore_command (cp and walgate-client wal-fetch, alternating)")
	flag.IntVar(&o.catalogPushes, "catalog-pushes", 40, "catalog section: timed pushes through each of the bbolt and the PostgreSQL gateway")
	flag.IntVar(&o.catalogPushers, "catalog-pushers", 8, "catalog section: concurrent pushers spread over the gateways in the pushes-per-second runs")
	flag.DurationVar(&o.catalogRateTime, "catalog-rate-time", 20*time.Second, "catalog section: length of each pushes-per-second run")
	flag.IntVar(&o.catalogRecords, "catalog-records", 10_000_000, "catalog section: WAL records in the PostgreSQL catalog the lifecycle plan reads (over 100 clusters)")
	flag.IntVar(&o.catalogFleetClusters, "catalog-fleet-clusters", fleetClusters, "catalog section: clusters behind /metrics and the fleet page on PostgreSQL")
	sections := flag.String("sections", "wal,backup,delta,fleet,fanout,lifecycle,peer,recovery,catalog", "which parts to run: wal, backup, delta, fleet, fanout, lifecycle, peer (pgBackRest side by side), recovery (restore_command against cp), catalog (PostgreSQL catalog against bbolt); without wal, -out replaces only the named sections of the existing file")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (segments, gateway data, logs)")
	flag.Parse()
	o.sections = map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		switch s = strings.TrimSpace(s); s {
		case "wal", "backup", "delta", "fleet", "fanout", "lifecycle", "peer", "recovery", "catalog":
			o.sections[s] = true
		default:
			fmt.Fprintf(os.Stderr, "walgate-bench: unknown section %q (wal, backup, delta, fleet, fanout, lifecycle, peer, recovery, catalog)\n", s)
			os.Exit(2)
		}
	}
	if o.sections["backup"] && !o.sections["wal"] {
		fmt.Fprintln(os.Stderr, "walgate-bench: -sections backup needs wal too (the report is built around it)")
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "walgate-bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			fmt.Fprintln(os.Stderr, "walgate-bench: interrupted; cleaned up")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "walgate-bench:", err)
		os.Exit(1)
	}
}

// cleanups runs registered functions in reverse order, once.
type cleanups struct{ fns []func() }

func (c *cleanups) add(f func()) { c.fns = append(c.fns, f) }

func (c *cleanups) run() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	started := time.Now()
	if os.Geteuid() != 0 {
		return errors.New("run me as root: the PostgreSQL cluster that makes the input WAL runs as the postgres user through runuser")
	}
	if err := pgtest.Available(); err != nil {
		return err
	}
	if o.minRuns < 1 || o.sustained < 1 {
		return errors.New("-runs and -sustained must be positive")
	}
	if o.backupScale < 0 || o.backupRuns < 1 {
		return errors.New("-backup-scale must be 0 (no base backups) or more, -backup-runs positive")
	}
	binDir, err := filepath.Abs(o.binDir)
	if err != nil {
		return err
	}
	b := &bench{
		opts:       o,
		gatewayBin: filepath.Join(binDir, "walgate"),
		clientBin:  filepath.Join(binDir, "walgate-client"),
	}
	for _, p := range []string{b.gatewayBin, b.clientBin} {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return fmt.Errorf("%s is missing: run 'make build' first", p)
		}
	}

	var cl cleanups
	defer cl.run()

	parent := o.workDir
	if parent == "" {
		parent = os.TempDir()
	}
	scratch, err := os.MkdirTemp(parent, "walgate-bench-")
	if err != nil {
		return err
	}
	b.scratch = scratch
	cl.add(func() {
		if o.keep {
			logf("keeping %s", scratch)
			return
		}
		os.RemoveAll(scratch)
	})

	sp, err := startSpawner()
	if err != nil {
		return fmt.Errorf("starting the spawn helper: %w", err)
	}
	b.sp = sp
	cl.add(sp.close)

	b.machine = readMachine(ctx, b, scratch)
	b.loadStart = readLoadavg()
	logf("scratch directory %s (%s), load average %s", scratch, b.machine.FS, b.loadStart)

	if !o.sections["wal"] {
		return runSectionsOnly(ctx, b, &cl, started)
	}
	if err := b.makeWAL(ctx, &cl); err != nil {
		return fmt.Errorf("making the input WAL: %w", err)
	}
	if err := b.measure(ctx, &cl); err != nil {
		return err
	}
	// The WAL figures' noise: before the base backups load the machine.
	b.loadEnd = readLoadavg()
	if o.backupScale > 0 && o.sections["backup"] {
		if err := b.measureBackups(ctx, &cl); err != nil {
			return fmt.Errorf("base backups: %w", err)
		}
	}
	if o.sections["delta"] {
		if err := b.measureDeltas(ctx, &cl); err != nil {
			return fmt.Errorf("delta backups: %w", err)
		}
	}
	if o.sections["fleet"] {
		if err := b.measureFleet(ctx, &cl); err != nil {
			return fmt.Errorf("fleet health: %w", err)
		}
	}
	if o.sections["fanout"] {
		if err := b.measureFanout(ctx, &cl); err != nil {
			return fmt.Errorf("fan-out: %w", err)
		}
	}
	if o.sections["peer"] {
		if err := b.measurePeer(ctx, &cl); err != nil {
			return fmt.Errorf("pgBackRest side by side: %w", err)
		}
	}
	if o.sections["recovery"] {
		if err := b.measureRecovery(ctx, &cl); err != nil {
			return fmt.Errorf("recovery: %w", err)
		}
	}
	if o.sections["lifecycle"] {
		if b.lifecycle, err = lifecycleSection(); err != nil {
			return fmt.Errorf("lifecycle: %w", err)
		}
	}
	if o.sections["catalog"] {
		if err := b.measureCatalog(ctx, &cl); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	b.elapsed = time.Since(started)

	rep := b.report()
	fmt.Print(rep.text())
	if o.out != "" {
		doc := rep.markdown()
		old, err := os.ReadFile(o.out)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		doc = keepUnmeasured(string(old), doc, o.sections)
		if err := os.WriteFile(o.out, []byte(doc), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// splicedSections are the report's sections that a run may leave out,
// by their -sections name, in the report's order.
var splicedSections = []struct{ name, begin, end string }{
	{"delta", deltaBegin, deltaEnd},
	{"fleet", fleetBegin, fleetEnd},
	{"fanout", fanoutBegin, fanoutEnd},
	{"peer", peerBegin, peerEnd},
	{"recovery", recoveryBegin, recoveryEnd},
	{"lifecycle", lifecycleBegin, lifecycleEnd},
	{"catalog", catalogBegin, catalogEnd},
}

// keepUnmeasured returns doc, a report written from scratch, with the
// sections of old (the report file as it was) that this run did not
// measure put back: a run of the wal section alone replaces the wal and
// backup figures and leaves the others as they were measured.
// The first paragraph after the title then says which sections were kept.
func keepUnmeasured(old, doc string, measured map[string]bool) string {
	var kept []string
	for _, s := range splicedSections {
		if measured[s.name] {
			continue
		}
		i := strings.Index(old, s.begin)
		if i < 0 {
			continue
		}
		j := strings.Index(old[i:], s.end)
		if j < 0 {
			continue
		}
		doc = spliceSection(doc, old[i:i+j+len(s.end)]+"\n", s.begin, s.end)
		kept = append(kept, s.name)
	}
	if len(kept) == 0 {
		return doc
	}
	var ran []string
	for _, s := range append([]string{"wal", "backup"}, sectionNames()...) {
		if measured[s] {
			ran = append(ran, s)
		}
	}
	sentence := fmt.Sprintf("This run measured the sections %s (`-sections %s`); the sections %s are as an earlier run wrote them, each with its own command line and figures.",
		strings.Join(ran, ", "), strings.Join(ran, ","), strings.Join(kept, ", "))
	// After the first paragraph that follows the title.
	if t := strings.Index(doc, "\n\n"); t >= 0 {
		if p := strings.Index(doc[t+2:], "\n\n"); p >= 0 {
			at := t + 2 + p
			return doc[:at] + "\n\n" + sentence + doc[at:]
		}
	}
	return doc
}

// sectionNames are the names of the spliced sections, in order.
func sectionNames() []string {
	var names []string
	for _, s := range splicedSections {
		names = append(names, s.name)
	}
	return names
}

// runSectionsOnly measures the delta and fleet sections alone and splices
// them into the existing report.
func runSectionsOnly(ctx context.Context, b *bench, cl *cleanups, started time.Time) error {
	type part struct{ begin, end, text string }
	var parts []part
	if b.opts.sections["delta"] {
		if err := b.measureDeltas(ctx, cl); err != nil {
			return fmt.Errorf("delta backups: %w", err)
		}
		parts = append(parts, part{deltaBegin, deltaEnd, b.delta.markdown()})
	}
	if b.opts.sections["fleet"] {
		if err := b.measureFleet(ctx, cl); err != nil {
			return fmt.Errorf("fleet health: %w", err)
		}
		parts = append(parts, part{fleetBegin, fleetEnd, b.fleet.markdown()})
	}
	if b.opts.sections["fanout"] {
		if err := b.measureFanout(ctx, cl); err != nil {
			return fmt.Errorf("fan-out: %w", err)
		}
		parts = append(parts, part{fanoutBegin, fanoutEnd, b.fanout.markdown()})
	}
	if b.opts.sections["peer"] {
		if err := b.measurePeer(ctx, cl); err != nil {
			return fmt.Errorf("pgBackRest side by side: %w", err)
		}
		parts = append(parts, part{peerBegin, peerEnd, b.peer.markdown()})
	}
	if b.opts.sections["recovery"] {
		if err := b.measureRecovery(ctx, cl); err != nil {
			return fmt.Errorf("recovery: %w", err)
		}
		parts = append(parts, part{recoveryBegin, recoveryEnd, b.recovery.markdown()})
	}
	if b.opts.sections["lifecycle"] {
		text, err := lifecycleSection()
		if err != nil {
			return fmt.Errorf("lifecycle: %w", err)
		}
		parts = append(parts, part{lifecycleBegin, lifecycleEnd, text})
	}
	if b.opts.sections["catalog"] {
		if err := b.measureCatalog(ctx, cl); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		parts = append(parts, part{catalogBegin, catalogEnd, b.catalog.markdown()})
	}
	old, err := os.ReadFile(b.opts.out)
	if b.opts.out != "" && err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	for _, p := range parts {
		fmt.Print(p.text)
		doc = spliceSection(doc, p.text, p.begin, p.end)
	}
	if b.opts.out == "" {
		return nil
	}
	if err := os.WriteFile(b.opts.out, []byte(doc), 0o644); err != nil {
		return err
	}
	logf("wrote %d section(s) of %s in %s", len(parts), b.opts.out, time.Since(started).Round(time.Second))
	return nil
}
