package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets the report checks.
const (
	targetLatency = 100 * time.Millisecond // per segment, zstd + encryption, end to end
	targetRSS     = 30_000_000             // bytes: client peak RSS under 30 MB

	// The stricter targets for the same push: the median, and every push's
	// peak RSS.
	targetLatencyStrict = 60 * time.Millisecond // median, zstd + encryption, fs backend
	targetRSSStrict     = 20_000_000            // bytes: every zstd + encryption push
)

// machine describes where the figures come from.
type machine struct {
	Date     time.Time
	NProc    int
	CPU      string
	MemTotal string
	Kernel   string
	Go       string
	Postgres string
	FS       string // filesystem of the scratch directory
	Walgate  string // walgate-client version
}

func readMachine(ctx context.Context, b *bench, dir string) machine {
	m := machine{Date: time.Now().UTC(), NProc: runtime.NumCPU(), Go: runtime.Version()}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.NProc = n
		}
	}
	m.CPU = firstField("/proc/cpuinfo", "model name")
	if kb := firstField("/proc/meminfo", "MemTotal"); kb != "" {
		if n, err := strconv.ParseInt(strings.TrimSuffix(kb, " kB"), 10, 64); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.FS = mountOf(dir)
	if out, err := exec.CommandContext(ctx, b.clientBin, "version").Output(); err == nil {
		m.Walgate = strings.TrimSpace(string(out))
	}
	return m
}

// firstField returns the value of the first "key : value" line of a /proc
// file.
func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// mountOf describes the filesystem holding dir, from /proc/mounts.
func mountOf(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "unknown filesystem"
	}
	dir, _ = filepath.EvalSymlinks(dir)
	best, desc := "", "unknown filesystem"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s on %s, mounted at %s", f[2], f[0], mp)
		}
	}
	return desc
}

func readLoadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func load1(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// fmtDur prints a duration in milliseconds.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// medianStr is the median, or "-" without samples.
func medianStr(s samples) string {
	if len(s) == 0 {
		return "-"
	}
	return fmtDur(s.median())
}

func fmtSec(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func fmtKiB(kib int64) string {
	return fmt.Sprintf("%.1f MiB (%.1f MB)", float64(kib)/1024, float64(kib)*1024/1e6)
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// againstTarget formats r, a figure compared with the target t, with two
// decimals, or with as many more (up to six) as it takes for the figure to
// stand on the same side of t as r does, or on t only when r is t: 0.7951
// against "at least 0.8" reads 0.795, not 0.80 beside a FAIL; 1.0504
// against "at most 1.05" reads 1.0504.
func againstTarget(r, t float64) string {
	for d := 2; ; d++ {
		s := strconv.FormatFloat(r, 'f', d, 64)
		v, _ := strconv.ParseFloat(s, 64)
		if d == 6 || (v < t) == (r < t) && (v > t) == (r > t) {
			return s
		}
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// report is the finished figures as tables, for the terminal and for
// Markdown.
type report struct {
	b       *bench
	intro   []string
	targets [][]string
	push    [][]string
	cost    [][]string
	other   [][]string
	sizes   [][]string
	where   [][]string
	prose   string
	noise   []string
	bk      *backupReport // nil without base-backup figures
}

// clientMaxRSS is the largest peak RSS (VmHWM at exit) of any exec'd push or fetch.
func (b *bench) clientMaxRSS() int64 {
	m := max(maxOf(b.sustained.rss), b.fetchRSS)
	for _, c := range b.configs {
		m = max(m, maxOf(c.rss))
	}
	return m
}

// cpuPressure is the share of the measuring time in which some runnable
// task waited for a CPU (PSI), or -1.
func (b *bench) cpuPressure() float64 {
	if b.psiStart < 0 || b.psiEnd < 0 || b.psiWall <= 0 {
		return -1
	}
	return float64(b.psiEnd-b.psiStart) / float64(b.psiWall.Microseconds())
}

func (b *bench) report() *report {
	r := &report{b: b}
	head := b.configs[0]
	base := b.baseline.median()
	load, oltp := b.phaseCounts()

	r.intro = []string{
		fmt.Sprintf("Inputs: %d real 16 MiB WAL segments from PostgreSQL 15, %d written by the COPY load of `pgbench -i -s %d` and %d by `pgbench -c %d -T %.0f` (%s). %d timed pushes per configuration.",
			len(b.segments), load, b.opts.scale, oltp, b.opts.clients, b.opts.oltp.Seconds(), b.pgbenchTPS, b.runs),
	}

	hm, hp := head.wall.median(), head.wall.pct(90)
	maxRSS := b.clientMaxRSS()
	pushRSS := max(maxOf(head.rss), maxOf(b.sustained.rss))
	r.targets = [][]string{
		{"Target", "Measured", "Result"},
		{"wal-push of one 16 MiB segment with zstd + encryption, end to end, under 0.1 s (median)",
			"median " + fmtSec(hm), passFail(hm < targetLatency)},
		{"the same at the 90th percentile (stricter reading)",
			"p90 " + fmtSec(hp), passFail(hp < targetLatency)},
		{"walgate-client peak RSS under 30 MB (largest VmHWM at exit of every push and fetch of the run)",
			fmtKiB(maxRSS), passFail(maxRSS*1024 < targetRSS)},
		{"walgate-client peak RSS under 30 MB, zstd + encryption, median push",
			fmtKiB(medianOf(head.rss)), passFail(medianOf(head.rss)*1024 < targetRSS)},
		{"wal-push with zstd + encryption at most 0.06 s (median), fs backend",
			"median " + fmtSec(hm), passFail(hm <= targetLatencyStrict)},
		{"walgate-client peak RSS at most 20 MB in every zstd + encryption push (largest VmHWM at exit, single and sustained pushes)",
			fmtKiB(pushRSS), passFail(pushRSS*1024 <= targetRSSStrict)},
	}

	r.bk = b.backupReport()
	if r.bk != nil {
		r.targets = append(r.targets, r.bk.targets...)
	}

	r.push = [][]string{{"Configuration", "Median", "p90", "Min", "Max", "Median / baseline"}}
	for _, c := range b.configs {
		r.push = append(r.push, []string{c.Name, fmtDur(c.wall.median()), fmtDur(c.wall.pct(90)),
			fmtDur(c.wall.min()), fmtDur(c.wall.max()), ratio(c.wall.median(), base)})
	}
	r.push = append(r.push,
		[]string{"baseline: copy + fsync file + fsync dir (Go, in-process)", fmtDur(base), fmtDur(b.baseline.pct(90)),
			fmtDur(b.baseline.min()), fmtDur(b.baseline.max()), "1.00x"},
		[]string{"reference: exec of cp, no fsync (not durable)", fmtDur(b.cpExec.median()), fmtDur(b.cpExec.pct(90)),
			fmtDur(b.cpExec.min()), fmtDur(b.cpExec.max()), ratio(b.cpExec.median(), base)},
	)

	r.cost = [][]string{{"Configuration", "Client CPU", "Minor page faults", "Client peak RSS (median / max)", "Gateway time for the PUT", "Codec pipeline, warm", "Stored / plain"}}
	for _, c := range b.configs {
		r.cost = append(r.cost, []string{c.Name, fmtDur(c.cpu.median()), strconv.FormatInt(medianOf(c.minflt), 10),
			fmt.Sprintf("%.1f / %.1f MiB", float64(medianOf(c.rss))/1024, float64(maxOf(c.rss))/1024),
			medianStr(c.gw), fmtDur(c.codec.median()), fmt.Sprintf("%.3f", float64(c.stored)/float64(c.plain))})
	}

	s := b.sustained
	r.other = [][]string{
		{"Measurement", "Result"},
		{fmt.Sprintf("Sustained: %d sequential wal-push, zstd + encryption", s.pushes),
			fmt.Sprintf("%.0f MB/s of WAL (%.1f MiB/s, %.1f segments/s, %s per segment), %s in all; client peak RSS median %.1f MiB, max %.1f MiB",
				float64(s.bytes)/1e6/s.wall.Seconds(), float64(s.bytes)/(1<<20)/s.wall.Seconds(), float64(s.pushes)/s.wall.Seconds(),
				fmtDur(s.wall/time.Duration(max(s.pushes, 1))), fmtSec(s.wall), float64(medianOf(s.rss))/1024, float64(maxOf(s.rss))/1024)},
		{"wal-fetch of one segment, zstd + encryption (end to end, verified)",
			fmt.Sprintf("median %s, p90 %s (%s the baseline); client CPU %s; client peak RSS %s",
				fmtDur(b.fetch.median()), fmtDur(b.fetch.pct(90)), ratio(b.fetch.median(), base), fmtDur(b.fetchCPU.median()), fmtKiB(b.fetchRSS))},
		{"Gateway peak RSS (VmHWM after the whole run)",
			fmt.Sprintf("%s; VmRSS at the end %s", fmtKiB(b.gatewayHWM), fmtKiB(b.gatewayRSS))},
		{"Gateway CPU per push (sustained run)", fmtDur(s.gwCPU / time.Duration(max(s.pushes, 1)))},
	}

	r.sizes = [][]string{{"Method", "All segments", phaseLoad + " segments", phaseOLTP + " segments"}}
	for _, c := range b.configs {
		r.sizes = append(r.sizes, []string{c.Name, fmt.Sprintf("%.3f", float64(c.stored)/float64(c.plain)),
			phaseRatio(c, phaseLoad), phaseRatio(c, phaseOLTP)})
	}

	ver, gw, cod := b.versionRun.median(), head.gw.median(), head.codec.median()
	extraFlt := max(medianOf(head.minflt)-b.versionFlt, 0)
	faults := time.Duration(float64(extraFlt) * b.faultCost * float64(time.Microsecond))
	rest := hm - ver - gw - cod - faults
	r.where = [][]string{
		{"Part (zstd + encryption, medians)", "Time", "Share", "How it is measured"},
		{"whole wal-push, exec'd", fmtDur(hm), "100 %", "the first table"},
		{"process start and exit", fmtDur(ver), pctOf(ver, hm), fmt.Sprintf("exec of `walgate-client version` (%d minor page faults, peak RSS %.1f MiB)", b.versionFlt, float64(b.versionRSS)/1024)},
		{"gateway: receive, hash, write, fsync, rename, dir fsync, catalog commit", medianStr(head.gw), pctOf(gw, hm), "the gateway's request log (whole milliseconds)"},
		{"client codec: compress, encrypt, SHA-256, content ID", fmtDur(cod), pctOf(cod, hm), "the same pipeline in this already warm process, segment in memory"},
		{"client page faults on fresh memory", fmtDur(faults), pctOf(faults, hm), fmt.Sprintf("%d minor faults beyond the process floor x %.2f µs per fault (measured, see Machine)", extraFlt, b.faultCost)},
		restRow(rest, hm),
		{"client CPU, user + system", fmtDur(head.cpu.median()), pctOf(head.cpu.median(), hm), "rusage of the exec'd client (includes its page faults)"},
		{"the whole push in a warm process", fmtDur(b.inproc.median()), pctOf(b.inproc.median(), hm), "client library (LoadConfig, New, PushWAL) called in this process: no process start, buffers already faulted in"},
		{"baseline: copy + fsync of the plain segment", fmtDur(base), pctOf(base, hm), "the first table"},
	}
	r.prose = fmt.Sprintf("Of the %s median push with zstd + encryption, about %s is starting and ending a process, %s the gateway's durable write and catalog commit, %s compressing, encrypting and hashing as a warm process does it, %s the page faults of a fresh process touching its buffers (%d faults at %.1f µs each on this machine), and %s the rest. The client is on a CPU for %s of the wall time: the push is CPU-bound in the client, not waiting on the gateway or the disk. The same push through the client library in a warm process takes %s.",
		fmtDur(hm), pctOf(ver, hm), pctOf(gw, hm), pctOf(cod, hm), pctOf(faults, hm), extraFlt, b.faultCost, pctOf(max(rest, 0), hm), pctOf(head.cpu.median(), hm), fmtDur(b.inproc.median()))
	if b.faultCost > 2 {
		r.prose += fmt.Sprintf(" A minor page fault typically costs about a microsecond or less on bare metal or a hardware-virtualised VM; at %.1f µs (this VM's paravirtualised MMU, and more so under load) it is this machine's most unusual property, and the main reason the exec'd push costs so much more than the warm one. On a machine with cheap faults, the median should drop by most of the page-fault line; on any machine, touching less fresh memory per push (smaller codec buffers and windows) would cut both this line and the peak RSS.", b.faultCost)
	}

	nproc := float64(b.machine.NProc)
	ls, le := load1(b.loadStart), load1(b.loadEnd)
	psi := b.cpuPressure()
	r.noise = append(r.noise, fmt.Sprintf("Load average (1, 5, 15 min) was %s at the start and %s at the end, on %d CPUs.", b.loadStart, b.loadEnd, b.machine.NProc))
	if psi >= 0 {
		r.noise = append(r.noise, fmt.Sprintf("During the measurements some runnable task was waiting for a CPU %.0f %% of the time (/proc/pressure/cpu).", 100*psi))
	}
	busy := ls > nproc/2 || le > nproc/2 || psi > 0.2
	if busy {
		r.noise = append(r.noise, "The machine was busy with other work during the run, so the figures are noisy: the absolute times are inflated by waiting for a CPU and will move by tens of percent from run to run, the p90 and max columns more. Page-fault counts, RSS and sizes are not affected; client CPU time is less affected, although on this VM it includes page faults, whose cost also rises with load (compare the fault cost under Machine between runs). The rounds interleave every configuration with the baselines, so the ratios are fairer than the absolute figures. Rerun on a quiet machine for figures to quote.")
	}
	if hp > hm*3/2 {
		r.noise = append(r.noise, fmt.Sprintf("The headline p90 is %.1fx its median.", float64(hp)/float64(hm)))
	}
	if !busy {
		r.noise = append(r.noise, "The machine looked quiet during the run.")
	}
	if r.bk != nil {
		r.noise = append(r.noise, r.bk.noise)
	}
	return r
}

func restRow(rest, whole time.Duration) []string {
	row := []string{"rest: reading the segment, spool, TCP connect, GC, scheduling", fmtDur(rest), pctOf(rest, whole), "whole minus the lines above"}
	if rest < 0 {
		row[1], row[2] = "~0", "~0 %"
		row[3] = fmt.Sprintf("whole minus the lines above is %s: the lines above, measured separately on a busy machine, overlap or run high", fmtDur(rest))
	}
	return row
}

func pctOf(a, whole time.Duration) string {
	if whole <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(a)/float64(whole))
}

func phaseRatio(c *config, phase string) string {
	if c.plainPhase[phase] == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(c.storedPhase[phase])/float64(c.plainPhase[phase]))
}

func writeTable(w *strings.Builder, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = strings.ReplaceAll(c, "`", "")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func mdTable(w *strings.Builder, rows [][]string) {
	for i, row := range rows {
		cells := make([]string, len(row))
		for j, c := range row {
			cells[j] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
		if i == 0 {
			seps := make([]string, len(row))
			for j := range seps {
				seps[j] = "---"
			}
			fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		}
	}
	w.WriteString("\n")
}

// text is the terminal report.
func (r *report) text() string {
	var w strings.Builder
	m := r.b.machine
	fmt.Fprintf(&w, "\nwalgate-bench  %s  %d x %s, Go %s, %s\n", m.Date.Format("2006-01-02 15:04 UTC"), m.NProc, m.CPU, strings.TrimPrefix(m.Go, "go"), shortPG(m.Postgres))
	for _, s := range r.intro {
		fmt.Fprintln(&w, strings.ReplaceAll(s, "`", ""))
	}
	fmt.Fprintln(&w, "\nwal-push of one segment, end to end (exec of bin/walgate-client, as archive_command):")
	writeTable(&w, r.push)
	fmt.Fprintln(&w, "\nPer push:")
	writeTable(&w, r.cost)
	fmt.Fprintln(&w)
	writeTable(&w, r.other)
	fmt.Fprintln(&w, "\nStored / plain bytes:")
	writeTable(&w, r.sizes)
	fmt.Fprintln(&w, "\nWhere the time goes:")
	writeTable(&w, r.where)
	if bk := r.bk; bk != nil {
		fmt.Fprintln(&w, "\nBase backups:", strings.ReplaceAll(bk.intro, "`", ""))
		writeTable(&w, bk.runs)
		fmt.Fprintln(&w, bk.gateway)
		fmt.Fprintln(&w, "\nThe client's pipeline alone, one goroutine, warm, all the data:")
		writeTable(&w, bk.codec)
		fmt.Fprintln(&w, "\nWhere the time goes (zstd + encryption):")
		writeTable(&w, bk.where)
		fmt.Fprintln(&w, strings.ReplaceAll(strings.ReplaceAll(bk.prose, "`", ""), "**", ""))
	}
	fmt.Fprintln(&w, "\nTargets:")
	writeTable(&w, r.targets)
	fmt.Fprintln(&w)
	for _, s := range r.noise {
		fmt.Fprintln(&w, s)
	}
	fmt.Fprintf(&w, "Cost of one page fault here: %.2f µs. Client RSS figures are each command's own VmHWM, read as it exits (the spawn helper's own peak, %.1f MiB, cannot leak into them).\n", r.b.faultCost, float64(r.b.floorRSS)/1024)
	fmt.Fprintf(&w, "Run time: %s (of which making the input WAL: %s", r.b.elapsed.Round(time.Second), r.b.walTime.Round(time.Second))
	if bf := r.b.backup; bf != nil {
		fmt.Fprintf(&w, "; base backups, load included: %s", bf.elapsed.Round(time.Second))
	}
	fmt.Fprintln(&w, ").")
	return w.String()
}

func shortPG(v string) string {
	if i := strings.Index(v, " on "); i > 0 {
		return v[:i]
	}
	return v
}

// markdown is docs/benchmarks.md.
func (r *report) markdown() string {
	b := r.b
	m := b.machine
	var w strings.Builder
	w.WriteString("# walgate benchmarks\n\n")
	fmt.Fprintf(&w, "Generated by `make bench` on %s. `make bench` builds the binaries and runs `go run ./cmd/walgate-bench -out docs/benchmarks.md`, as root. ", m.Date.Format("2006-01-02 at 15:04 UTC"))
	w.WriteString("Every run overwrites this file: rerun the command rather than editing it. ")
	w.WriteString("The baselines were measured in the same run, on the same inputs, interleaved with the walgate runs.\n\n")
	for _, s := range r.intro {
		w.WriteString(s + "\n\n")
	}

	w.WriteString("## Machine\n\n")
	mdTable(&w, [][]string{
		{"", ""},
		{"CPUs (nproc)", strconv.Itoa(m.NProc)},
		{"CPU model", m.CPU},
		{"Memory", m.MemTotal},
		{"Kernel", m.Kernel},
		{"Go", m.Go},
		{"PostgreSQL", m.Postgres},
		{"walgate", m.Walgate},
		{"Filesystem of the gateway's store and of the baseline", m.FS},
		{"Cost of a page fault (first touch of a fresh anonymous page, median of 5 x 64 MiB)", fmt.Sprintf("%.2f µs", b.faultCost)},
		{"Load average at start / end", b.loadStart + " / " + b.loadEnd},
	})

	w.WriteString("## Targets\n\n")
	mdTable(&w, r.targets)

	w.WriteString("## Results\n\n### wal-push of one 16 MiB segment, end to end\n\n")
	fmt.Fprintf(&w, "Wall time of one exec of `bin/walgate-client wal-push SEGMENT`, from fork to exit status 0, which the client returns only once the gateway has acknowledged the object and its catalog entry as durable. %d runs per row, each on a different segment name. *Median / baseline* divides by the median of the copy + fsync baseline.\n\n", b.runs)
	mdTable(&w, r.push)

	w.WriteString("### Per push: client and gateway\n\n")
	w.WriteString("*Client CPU* is the user + system time of the exec'd client, *Minor page faults* its `ru_minflt`, both medians; *Client peak RSS* its own VmHWM, read as it exits. *Gateway time for the PUT* is the gateway's own figure from its request log: receiving the body over loopback, hashing, writing, fsync, rename, directory fsync and the catalog commit. *Codec pipeline, warm* is the client's compress + encrypt + hash pipeline run in an already warm process over the segment in memory. *Stored / plain* is the bytes under `<data>/store/<cluster>/wal_005/` over the segments' bytes.\n\n")
	mdTable(&w, r.cost)

	w.WriteString("### Throughput, restore, gateway\n\n")
	mdTable(&w, r.other)

	w.WriteString("### Compressed size per method\n\n")
	w.WriteString("Stored bytes (compressed, then encrypted where stated, as the gateway's fs store holds them) over plaintext bytes, over all real segments and per workload phase. Encryption adds only its stream framing.\n\n")
	mdTable(&w, r.sizes)

	w.WriteString("### Where the time goes\n\n")
	mdTable(&w, r.where)
	w.WriteString(r.prose + "\n\n")

	if bk := r.bk; bk != nil {
		w.WriteString("## Base backups\n\n")
		w.WriteString(bk.intro + "\n\n")
		w.WriteString("### backup-push and backup-fetch, with baselines\n\n")
		w.WriteString("*Wall time* is one exec from fork to exit status 0. *CPU* is the command's user + system time from its rusage, and in parentheses how many CPUs that keeps busy on average (CPU time over wall time). *Peak RSS* is the client's VmHWM read as it exits, the largest of the runs. *Gateway CPU* is the gateway's CPU time during the run. *Stored* is what the gateway's catalog records for the backup.\n\n")
		mdTable(&w, bk.runs)
		w.WriteString(bk.gateway + "\n\n")
		w.WriteString("### The client's pipeline alone\n\n")
		fmt.Fprintf(&w, "One goroutine in this already warm process, over all %.0f MB of the backup's files, without HTTP or gateway (see Method): the CPU time for all of it, and MB of plain data per CPU-second.\n\n", float64(b.backup.codecBytes)/1e6)
		mdTable(&w, bk.codec)
		w.WriteString("### Where the time goes\n\n")
		w.WriteString("zstd + encryption, the median runs of the first table.\n\n")
		mdTable(&w, bk.where)
		w.WriteString(bk.prose + "\n\n")
	}

	if b.delta != nil {
		w.WriteString(b.delta.markdown() + "\n")
	}
	if b.fleet != nil {
		w.WriteString(b.fleet.markdown() + "\n")
	}
	if b.fanout != nil {
		w.WriteString(b.fanout.markdown() + "\n")
	}
	if b.peer != nil {
		w.WriteString(b.peer.markdown() + "\n")
	}
	if b.recovery != nil {
		w.WriteString(b.recovery.markdown() + "\n")
	}
	if b.lifecycle != "" {
		w.WriteString(b.lifecycle + "\n")
	}
	if b.catalog != nil {
		w.WriteString(b.catalog.markdown() + "\n")
	}
	w.WriteString("## Method\n\n")
	method := []string{
		fmt.Sprintf("**Input.** A throwaway PostgreSQL 15 cluster (cmd/internal/pgtest: initdb, 16 MiB segments, full_page_writes on, fsync off since only its WAL matters) archives with `archive_command = 'cp %%p <dir>/%%f'`. `pgbench -i -s %d` loads it (the COPY segments), a `CHECKPOINT` follows so that the next segments carry the full-page images a production system writes after every checkpoint, then `pgbench -c %d -j 2 -T %.0f` runs (the OLTP segments). Then `pg_switch_wal()`, a wait until that segment is archived, and a stop; the archived 16 MiB segments are copied into the scratch directory and are the same bytes for every configuration and every baseline. Making them took %s.",
			b.opts.scale, b.opts.clients, b.opts.oltp.Seconds(), b.walTime.Round(time.Second)),
		"**Gateway.** One `bin/walgate serve --data <scratch>/gateway --listen 127.0.0.1:<port>` for the whole run, on its defaults: fs backend under `<data>/store`, plain HTTP on loopback (TLS is not measured). One cluster name and token (`walgate token add --scope push,fetch`) per configuration, so that every timed push stores a new object: a push of a name already archived is an idempotent no-op.",
		"**Pushes.** Each push is an exec of `bin/walgate-client wal-push <path>` with a clean environment (PATH, WALGATE_URL, WALGATE_TOKEN, WALGATE_COMPRESSION and, with encryption, a random 32-byte WALGATE_ENCRYPTION_KEY with WALGATE_ENCRYPTION_KEY_TRANSFORM=hex), as PostgreSQL's archive_command runs it, minus the `/bin/sh -c` that PostgreSQL puts in front (about a millisecond). Wall time is taken around fork, exec and wait by the spawn helper (see Memory); CPU time and page faults come from the child's rusage, peak RSS from its VmHWM read as it exits (see Memory).",
		fmt.Sprintf("**Rounds.** After an untimed warm-up (binaries in the page cache, one push per configuration), %d rounds. Each round takes one segment through every configuration and both baselines, in an order rotated from round to round so that background load falls on all of them alike. Every real segment is used once; when there are fewer than %d, segments are reused under made-up segment names (hard links). Medians and nearest-rank 90th percentiles are over the rounds.", b.runs, b.opts.minRuns),
		"**Baseline.** What a careful `cp` archive_command does, in Go and in-process (so without a process start): open the segment, copy it with a 256 KiB buffer into a new file in a directory on the same filesystem as the gateway's store, `fsync` the file, close it, `fsync` the directory. The copy is deleted after timing. For reference, the plain `cp` exec of the PostgreSQL manual's example (no fsync, so not durable) is timed too; its copy is deleted before writeback.",
		"**Fetch.** `bin/walgate-client wal-fetch NAME DEST` of every timed segment of the zstd + encryption configuration, timed the same way; the restored file is checked against the original's SHA-256 outside the timing, then deleted.",
		fmt.Sprintf("**Sustained.** %d sequential exec'd pushes, zstd + encryption, to one fresh cluster name, real segments reused under made-up names; MB/s is plaintext bytes (10^6) over the total wall time. Gateway CPU per push comes from /proc/<pid>/stat before and after.", b.sustained.pushes),
		"**Breakdown.** The process floor is an exec of `walgate-client version`. The gateway's time is the `ms` of its request log line for each PUT. The warm codec runs the same pipeline as wal-push (codec writer, SHA-256 of the output, content ID of the input) over the segment in memory, in the benchmark's process. The warm push calls the client library (`client.LoadConfig`, `client.New`, `Client.PushWAL`) in the benchmark's process with a new client per push, to a cluster name of its own.",
		fmt.Sprintf("**Memory.** Client: its own `VmHWM` from /proc/<pid>/status, read while it exits. `ru_maxrss` cannot be used: Go starts children with clone(CLONE_VM|CLONE_VFORK), and Linux then charges the parent's peak RSS to the child's `ru_maxrss` whenever it is the larger. So the spawn helper (this program re-executed in a helper mode that only runs commands; its own peak was %.1f MiB) runs each command under ptrace with PTRACE_O_TRACEEXIT and reads the figure at the exit stop, when the command's memory is still mapped; the stop adds microseconds to the wall time.", float64(b.floorRSS)/1024) + " Gateway: `VmHWM` from /proc/<pid>/status after every push and fetch of the run, before it is stopped.",
		"**Sizes.** The objects' file sizes under `<data>/store/<cluster>/wal_005/`, one object per real segment.",
	}
	if r.bk != nil {
		w.WriteString("### WAL\n\n")
	}
	for _, s := range method {
		w.WriteString("- " + s + "\n")
	}
	if r.bk != nil {
		w.WriteString("\n### Base backups\n\n")
		for _, s := range r.bk.method {
			w.WriteString("- " + s + "\n")
		}
	}
	w.WriteString("\n## Noise\n\n")
	for _, s := range r.noise {
		w.WriteString(s + " ")
	}
	fmt.Fprintf(&w, "The whole run took %s.\n", b.elapsed.Round(time.Second))
	return w.String()
}
