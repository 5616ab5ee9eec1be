package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Base-backup targets the report checks.
const (
	targetBackupMBs = 500        // MB/s (10^6 bytes), backup-push and backup-fetch, zstd + encryption
	targetBackupRSS = 64_000_000 // bytes: client peak RSS under 64 MB

	// The stricter targets for the same runs: backup-push at 900 MB/s,
	// backup-fetch at 0.9x the same run's cp -a + sync.
	targetBackupPushStrict = 900
	targetFetchOfCopy      = 0.9
)

// backupReport is the base-backup part of the report.
type backupReport struct {
	intro   string
	gateway string
	targets [][]string
	runs    [][]string
	codec   [][]string
	where   [][]string
	prose   string
	method  []string
	noise   string
}

func fmtMBs(v float64) string { return fmt.Sprintf("%.0f MB/s", v) }

// allMBs lists every run's MB/s in run order.
func allMBs(runs []backupRun) string {
	var s []string
	for _, r := range runs {
		s = append(s, strconv.FormatFloat(r.mbs(), 'f', 0, 64))
	}
	return strings.Join(s, ", ")
}

func maxRSSOf(runs []backupRun) int64 {
	var m int64
	for _, r := range runs {
		m = max(m, r.res.maxRSS)
	}
	return m
}

func cores(cpu, wall time.Duration) string {
	if wall <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", cpu.Seconds()/wall.Seconds())
}

func partSizes(parts []int64) string {
	var s []string
	for _, p := range parts {
		s = append(s, fmt.Sprintf("%.0f", mib(p)))
	}
	return strings.Join(s, " + ") + " MiB"
}

func (bf *backupFigures) codecOf(name string) codecFigure {
	for _, c := range bf.codecs {
		if c.Name == name {
			return c
		}
	}
	return codecFigure{}
}

// clientMaxRSS is the largest peak RSS (VmHWM at exit) of every backup-push and
// backup-fetch of the run.
func (bf *backupFigures) clientMaxRSS() int64 {
	var m int64
	for _, c := range bf.configs {
		m = max(m, maxRSSOf(c.push), maxRSSOf(c.fetch))
	}
	return m
}

func (b *bench) backupReport() *backupReport {
	bf := b.backup
	if bf == nil || len(bf.configs) == 0 {
		return nil
	}
	r := &backupReport{}
	head := bf.configs[0]
	hp, hf := typical(head.push), typical(head.fetch)
	runsWord := fmt.Sprintf("median of %d runs", bf.runs)
	if bf.runs == 2 {
		runsWord = "better of 2 runs"
	} else if bf.runs == 1 {
		runsWord = "1 run"
	}

	r.intro = fmt.Sprintf("Input: a database loaded by `pgbench -i -s %d` (in %.0f s) into a PostgreSQL 15 cluster: a data directory of %.0f MiB in %d files (%.0f MiB of it in pg_wal). A backup of it holds %.0f MB of data (%.0f MiB: the data directory without pg_wal's contents and the other files PostgreSQL leaves out of base backups). Each method ran %d times, in rounds; the tables show the %s, chosen by wall time (all runs' MB/s are listed too). MB/s is 10^6 bytes of uncompressed data per second of wall time.",
		bf.scale, bf.loadTime.Seconds(), mib(bf.dataDir.bytes), bf.dataDir.files, mib(bf.walDir.bytes),
		float64(hp.bytes)/1e6, mib(hp.bytes), bf.runs, runsWord)

	r.gateway = fmt.Sprintf("Gateway peak RSS (VmHWM of the base backups' gateway, after every run above): %s; VmRSS at the end %s.", fmtKiB(bf.gatewayHWM), fmtKiB(bf.gatewayRSS))
	maxRSS := bf.clientMaxRSS()
	r.targets = [][]string{
		{fmt.Sprintf("backup-push at 500 MB/s or more, zstd + encryption, default settings (%s)", runsWord),
			fmt.Sprintf("%s (%.0f MiB/s; runs: %s MB/s)", fmtMBs(hp.mbs()), hp.mbs()*1e6/(1<<20), allMBs(head.push)), passFail(hp.mbs() >= targetBackupMBs)},
		{fmt.Sprintf("backup-fetch at 500 MB/s or more, zstd + encryption, default settings (%s)", runsWord),
			fmt.Sprintf("%s (%.0f MiB/s; runs: %s MB/s)", fmtMBs(hf.mbs()), hf.mbs()*1e6/(1<<20), allMBs(head.fetch)), passFail(hf.mbs() >= targetBackupMBs)},
		{"walgate-client peak RSS under 64 MB in backup-push and backup-fetch (largest VmHWM at exit of every run, every configuration)",
			fmtKiB(maxRSS), passFail(maxRSS*1024 < targetBackupRSS)},
		{fmt.Sprintf("backup-push at 900 MB/s or more, zstd + encryption, default settings (%s)", runsWord),
			fmtMBs(hp.mbs()), passFail(hp.mbs() >= targetBackupPushStrict)},
	}
	if len(bf.copy) > 0 {
		cp := typical(bf.copy).mbs()
		r.targets = append(r.targets, []string{"backup-fetch at 0.9x or more of the same run's `cp -a` of the data directory + `sync` (MB/s over MB/s)",
			fmt.Sprintf("%.2fx (%s against %s)", hf.mbs()/max(cp, 1e-9), fmtMBs(hf.mbs()), fmtMBs(cp)), passFail(hf.mbs() >= targetFetchOfCopy*cp)})
	}

	r.runs = [][]string{{"Method", "Wall time", "MB/s", "All runs, MB/s", "CPU user + sys (cores)", "Peak RSS (max of runs)", "Gateway CPU (cores)", "Stored"}}
	row := func(name string, runs []backupRun, rss, gw, stored bool) []string {
		t := typical(runs)
		cpu := t.res.user + t.res.sys
		out := []string{name, fmtSec(t.res.wall), fmtMBs(t.mbs()), allMBs(runs),
			fmt.Sprintf("%.2f + %.2f s (%s)", t.res.user.Seconds(), t.res.sys.Seconds(), cores(cpu, t.res.wall)), "-", "-", "-"}
		if rss {
			out[5] = fmt.Sprintf("%.1f MiB", float64(maxRSSOf(runs))/1024)
		}
		if gw {
			out[6] = fmt.Sprintf("%.2f s (%s)", t.gwCPU.Seconds(), cores(t.gwCPU, t.res.wall))
		}
		if stored && t.bytes > 0 {
			out[7] = fmt.Sprintf("%.0f MiB (%.3f of the data)", mib(t.stored), float64(t.stored)/float64(t.bytes))
		}
		return out
	}
	for _, c := range bf.configs {
		r.runs = append(r.runs, row("backup-push, "+c.Name, c.push, true, true, true))
	}
	r.runs = append(r.runs,
		row("baseline: pg_basebackup -X none --checkpoint=fast (plain format, local disk)", bf.basebackup, false, false, false),
		row("baseline: cp -a of the data directory, then sync", bf.copy, false, false, false))
	for _, c := range bf.configs {
		r.runs = append(r.runs, row("backup-fetch, "+c.Name, c.fetch, true, true, false))
	}
	if len(bf.noFsync) > 0 {
		nf := bf.noFsync.median()
		r.runs = append(r.runs, []string{"the same restore without fsync, in-process (" + head.Name + ")", fmtSec(nf),
			fmtMBs(float64(hf.bytes) / 1e6 / nf.Seconds()), "-", "-", "-", "-", "-"})
	}

	r.codec = [][]string{{"Configuration", "Read + tar + encode (backup-push's side): CPU time, MB per CPU-second", "Decode (backup-fetch's side, without writing)", "Stored / plain"}}
	for _, c := range bf.codecs {
		r.codec = append(r.codec, []string{c.Name, fmt.Sprintf("%s, %.0f", fmtSec(c.enc), c.encMBs()),
			fmt.Sprintf("%s, %.0f", fmtSec(c.dec), c.decMBs()), fmt.Sprintf("%.3f", c.ratio)})
	}

	// Where the time goes, zstd + encryption.
	nproc := b.machine.NProc
	hc := bf.codecOf(head.Name)
	small := bf.configs[len(bf.configs)-1]
	sp, sf := typical(small.push), typical(small.fetch)
	pushCPU, fetchCPU := hp.res.user+hp.res.sys, hf.res.user+hf.res.sys
	// backup-push pays pg_backup_start's checkpoint; it ends the backup
	// with pg_backup_stop(false) and watches archive_status itself, so
	// PostgreSQL's own once-a-second archive wait (measured for
	// comparison) is not part of it.
	pgPart := bf.pgStart.median()
	dataPhase := max(hp.res.wall-pgPart, time.Millisecond)
	faults := func(n int64) string {
		return fmt.Sprintf("%d (~%s)", n, fmtDur(time.Duration(float64(n)*b.faultCost*float64(time.Microsecond))))
	}
	cpBase := typical(bf.copy)
	r.where = [][]string{
		{"", "backup-push", "backup-fetch", "How it is measured"},
		{"wall time", fmtSec(hp.res.wall), fmtSec(hf.res.wall), "the table above (" + runsWord + ")"},
		{"PostgreSQL: pg_backup_start with a fast checkpoint", fmtSec(bf.pgStart.median()), "-", fmt.Sprintf("timed alone on one connection, nothing copied in between, median of %d", len(bf.pgStart))},
		{"for comparison, not part of backup-push: PostgreSQL's pg_backup_stop(true), which checks the archiver once a second", fmtSec(bf.pgStop.median()), "-", "the same; archive_command is /bin/true. backup-push calls pg_backup_stop(false) and watches archive_status every 5 ms"},
		{"the rest: the data", fmt.Sprintf("%s (%s)", fmtSec(dataPhase), fmtMBs(rate(hp.bytes, dataPhase))), fmtSec(hf.res.wall), "wall time minus PostgreSQL's part"},
		{"client CPU, user + system", fmt.Sprintf("%.2f + %.2f s", hp.res.user.Seconds(), hp.res.sys.Seconds()),
			fmt.Sprintf("%.2f + %.2f s", hf.res.user.Seconds(), hf.res.sys.Seconds()), "rusage of the exec'd client"},
		{"gateway CPU, of it system", fmt.Sprintf("%.2f s, %.2f s", hp.gwCPU.Seconds(), hp.gwSys.Seconds()), fmt.Sprintf("%.2f s, %.2f s", hf.gwCPU.Seconds(), hf.gwSys.Seconds()), "/proc/<pid>/stat before and after"},
		{fmt.Sprintf("CPUs busy with client + gateway (of %d) during the data", nproc), cores(pushCPU+hp.gwCPU, dataPhase), cores(fetchCPU+hf.gwCPU, hf.res.wall),
			"their CPU time over the row *the rest*"},
		{"CPUs busy over the whole run: whole machine / client + gateway", fmt.Sprintf("%s / %s", cores(hp.machBusy, hp.res.wall), cores(pushCPU+hp.gwCPU, hp.res.wall)),
			fmt.Sprintf("%s / %s", cores(hf.machBusy, hf.res.wall), cores(fetchCPU+hf.gwCPU, hf.res.wall)),
			"/proc/stat: all CPU time but idle and iowait (every process, kernel threads such as writeback, time stolen by the hypervisor; counted in 10 ms ticks), against the rusage of client and gateway"},
		{"CPUs idle waiting for I/O", cores(hp.machIOWait, hp.res.wall), cores(hf.machIOWait, hf.res.wall), "/proc/stat iowait over the whole run"},
		{"the client's pipeline alone, all the data, CPU time", fmtSec(hc.enc), fmtSec(hc.dec), "the table above: read + tar + encode; decode without writing"},
		{"tar partitions (default threshold 1 GiB)", partSizes(head.parts), partSizes(head.parts), "planned from the data directory; each is read, encoded and sent (fetched, decoded and written) by one goroutine"},
		{fmt.Sprintf("with %d MiB partitions (%d)", smallParts>>20, len(small.parts)),
			fmt.Sprintf("%s, %s", fmtSec(sp.res.wall), fmtMBs(sp.mbs())),
			fmt.Sprintf("%s, %s", fmtSec(sf.res.wall), fmtMBs(sf.mbs())),
			"WALGATE_TAR_SIZE_THRESHOLD, otherwise the same (the table above)"},
	}
	if len(bf.noFsync) > 0 {
		nf, sa := bf.noFsync.median(), bf.syncAfter.median()
		r.where = append(r.where,
			[]string{"restore without fsync", "-", fmt.Sprintf("%s (%s)", fmtSec(nf), fmtMBs(rate(hf.bytes, nf))), "the client library in this process, same backup, fsync off: the files stay in the page cache"},
			[]string{"then sync", "-", fmtSec(sa), "writing those files to disk afterwards"})
	}
	r.where = append(r.where,
		[]string{"client page faults", faults(hp.res.minflt), faults(hf.res.minflt), fmt.Sprintf("ru_minflt x %.2f µs per fault (see Machine)", b.faultCost)},
		[]string{"baseline: cp -a, then sync", fmtSec(cpBase.res.wall), fmtSec(cpBase.res.wall), fmt.Sprintf("%s: reading %.0f MB from the page cache and writing it durably; the sync alone %s", fmtMBs(cpBase.mbs()), float64(cpBase.bytes)/1e6, fmtSec(cpBase.sync))})

	r.prose = b.backupProse(hp, hf, sp, sf, pgPart, dataPhase)

	r.method = []string{
		fmt.Sprintf("**Database.** A second throwaway PostgreSQL 15 cluster (cmd/internal/pgtest, as above; the server runs with fsync off, which does not matter to what a backup reads) with `archive_mode = on` and `archive_command = '/bin/true'`: pg_backup_stop, and pg_basebackup, wait until the backup's last WAL segment is archived, and `/bin/true` archives at once, so the figures are the backups' own and no archive_command's. WAL archiving through walgate is measured above. `max_wal_size = 8GB` keeps checkpoints out of the load, `wal_recycle = off` makes the checkpoints after it remove old segments instead of keeping max_wal_size of them, so that pg_wal, which the plain copy copies and the backups skip, holds %.0f MiB. `pgbench -i -s %d` loads it, then `CHECKPOINT`, `pg_switch_wal()`, `CHECKPOINT`. Nothing writes to the database during the rounds.", mib(bf.walDir.bytes), bf.scale),
		"**Page cache.** The machine has room for the data directory in its page cache, where the load left it, and nothing evicts it: every method reads it from memory alike. Reading from a cold disk is not measured (dropping the page cache would disturb whatever else runs on the machine).",
		fmt.Sprintf("**Gateway.** A gateway of its own for the base backups, on its defaults (fs backend under `<data>/store` on the scratch directory's filesystem, plain HTTP on loopback), one cluster name and token per configuration; its peak RSS (VmHWM) is read after every base-backup run. %s.", fmt.Sprintf("It was %s, VmRSS at the end %s", fmtKiB(bf.gatewayHWM), fmtKiB(bf.gatewayRSS))),
		"**backup-push.** An exec of `bin/walgate-client backup-push PGDATA` with a clean environment: PATH, HOME, WALGATE_URL, WALGATE_TOKEN, WALGATE_COMPRESSION, a random 32-byte WALGATE_ENCRYPTION_KEY with WALGATE_ENCRYPTION_KEY_TRANSFORM=hex, and PGHOST=127.0.0.1, PGPORT, PGUSER=postgres, PGDATABASE=postgres, PGSSLMODE=disable. Default upload concurrency (2) and partition size (1 GiB) except in the row that says otherwise. Timed from fork to exit by the spawn helper, like wal-push: pg_backup_start with its fast checkpoint, reading, tar, compression, encryption, upload, pg_backup_stop, the metadata and the commit that makes the backup visible. The data bytes are the backup's uncompressed size from the gateway's catalog (the sum of the regular files backed up: the sentinel's UncompressedSize); the stored bytes its stored size.",
		"**backup-fetch.** An exec of `bin/walgate-client backup-fetch DIR LATEST` into a new directory, default download concurrency (4); the client fetches, verifies every object's SHA-256, decrypts, decompresses, writes and fsyncs every file and directory. Checked afterwards, untimed: LATEST was the backup just pushed, the restored files add up to the backup's data plus backup_label, and global/pg_control and backup_label exist (a full recovery from such a restore is what the end-to-end tests do). *Restore without fsync* is the same restore of the zstd + encryption backup through the client library in this process with fsync off, followed by a timed `sync(2)`.",
		"**Baselines.** `pg_basebackup -D DIR -X none --checkpoint=fast --no-password` (plain format onto the scratch directory's filesystem; it fsyncs what it wrote and writes a backup manifest, both its defaults), and `cp -a PGDATA DIR` followed by `sync`, timed together. Their data bytes are the bytes of the regular files they wrote; the copy includes pg_wal. Their CPU time is the command's own (pg_basebackup's server side, the walsender, is not counted).",
		fmt.Sprintf("**Rounds.** %d rounds; each round runs every backup-push configuration and both baselines, in an order rotated from round to round, then every backup-fetch (of the backup just pushed) and the restore without fsync, rotated too. Before every run `sync(2)`; every run's output directory is removed, untimed, right after it, followed by another `sync(2)`, so that no run pays for another's writeback.", bf.runs),
		fmt.Sprintf("**Pipeline alone.** Each configuration's pipeline as backup-push and backup-fetch run it for one partition, on one goroutine in this already warm process, over every file of the backup (%.0f MB, read from the page cache): read and tar the files (the client's own tar writer), compress, encrypt, SHA-256 of the output; then SHA-256 of that output, decrypt, decompress, without extracting or writing. No HTTP, no gateway. Timed in CPU time (this process's user + system time, garbage collection included), which other work on the machine does not inflate as it does wall time; the encoder's output goes to the hash alone (a second, untimed encoding into memory feeds the decoder).", float64(bf.codecBytes)/1e6),
		"**Machine CPU.** For every push and fetch, /proc/stat before and after: the CPU time of the whole machine that was neither idle nor iowait, and the iowait. *Everything else* is that minus the client's and the gateway's CPU time.",
		fmt.Sprintf("**PostgreSQL's part.** %d times on one connection: `pg_backup_start('walgate-bench', true)`, then at once `pg_backup_stop(true)`, each timed: what every backup-push (and, on the server side, pg_basebackup) spends in PostgreSQL whatever the data size.", len(bf.pgStart)),
	}

	psi := -1.0
	if bf.psiStart >= 0 && bf.psiEnd >= 0 && bf.psiWall > 0 {
		psi = float64(bf.psiEnd-bf.psiStart) / float64(bf.psiWall.Microseconds())
	}
	r.noise = fmt.Sprintf("Base backups: load average %s before the rounds and %s after them (walgate's own work included).", bf.loadStart, bf.loadEnd)
	if psi >= 0 {
		r.noise += fmt.Sprintf(" During the rounds some runnable task was waiting for a CPU %.0f %% of the time (/proc/pressure/cpu); with a client of two busy goroutines and a gateway on 2 CPUs, much of that is walgate's own processes competing, so it is a ceiling on the disturbance from elsewhere, not a measure of it.", 100*psi)
	}
	r.noise += fmt.Sprintf(" The base-backup part, load included, took %s.", bf.elapsed.Round(time.Second))
	return r
}

// backupProse says where the time of the zstd + encryption push and fetch
// goes, from the figures.
func (b *bench) backupProse(hp, hf, sp, sf backupRun, pgPart, dataPhase time.Duration) string {
	bf := b.backup
	nproc := float64(b.machine.NProc)
	head := bf.configs[0]
	hc := bf.codecOf(head.Name)
	var s []string

	pushCPU := (hp.res.user + hp.res.sys).Seconds()
	ours := pushCPU + hp.gwCPU.Seconds()
	busy := ours / dataPhase.Seconds()
	machine := hp.machBusy.Seconds() / hp.res.wall.Seconds()
	others := max(hp.machBusy.Seconds()-ours, 0) / hp.res.wall.Seconds()
	s = append(s, fmt.Sprintf("**backup-push** (zstd + encryption) ran at %.0f MB/s, %.2f s for %.0f MB.", hp.mbs(), hp.res.wall.Seconds(), float64(hp.bytes)/1e6))
	if pgPart > 0 {
		s = append(s, fmt.Sprintf("%.2f s of that is pg_backup_start's checkpoint. PostgreSQL's own pg_backup_stop(true) would add %.2f s here, because PostgreSQL 15 checks only once a second whether the backup's last WAL segment is archived; backup-push ends the backup with pg_backup_stop(false) and applies the same test to archive_status every 5 ms.",
			pgPart.Seconds(), bf.pgStop.median().Seconds()))
		s = append(s, fmt.Sprintf("The data itself moved in the remaining %.2f s, at %.0f MB/s.", dataPhase.Seconds(), rate(hp.bytes, dataPhase)))
	}
	s = append(s, fmt.Sprintf("Meanwhile the client used %.2f s of CPU (%.2f user, %.2f system) and the gateway %.2f s: %.2f of the %.0f CPUs on average; over the whole run the machine as a whole had %.2f CPUs busy, walgate %.2f of them.",
		pushCPU, hp.res.user.Seconds(), hp.res.sys.Seconds(), hp.gwCPU.Seconds(), busy, nproc, machine, ours/hp.res.wall.Seconds()))
	switch {
	case busy >= 0.8*nproc:
		s = append(s, "So the data part is CPU-bound on this 2-CPU machine, by walgate's own work: there is no idle CPU left to go faster with, only cheaper work per byte.")
	case busy+others >= 0.8*nproc:
		s = append(s, fmt.Sprintf("So the data part is CPU-bound on this 2-CPU machine, but walgate had only %.2f of the CPUs: the rest went to other work (see Noise), and on a quiet machine the push would be faster.", busy))
	case len(head.parts) > 1:
		s = append(s, fmt.Sprintf("So the CPUs are partly idle even during the data part: the default 1 GiB threshold makes %d partitions here (%s), one goroutine each, and once the smaller ones are done the largest runs alone on one CPU.",
			len(head.parts), partSizes(head.parts)))
	default:
		s = append(s, fmt.Sprintf("So the CPUs are partly idle even during the data part: the whole backup is one partition (%s) under the default 1 GiB threshold, read and encoded by one goroutine.", partSizes(head.parts)))
	}
	smallNote := ""
	switch ratio := sp.mbs() / hp.mbs(); {
	case busy+others >= 0.8*nproc && ratio < 1.1:
		smallNote = ": no faster, as expected when the CPUs are already busy"
	case ratio >= 1.1:
		smallNote = fmt.Sprintf(": %.0f %% faster", 100*(ratio-1))
	}
	s = append(s, fmt.Sprintf("With %d MiB partitions (%d instead of %d) the same push took %.2f s (%.0f MB/s)%s.",
		smallParts>>20, len(bf.configs[len(bf.configs)-1].parts), len(head.parts), sp.res.wall.Seconds(), sp.mbs(), smallNote))
	if hc.enc > 0 {
		around := max(pushCPU-hc.enc.Seconds(), 0) + hp.gwCPU.Seconds()
		s = append(s, fmt.Sprintf("The client's pipeline alone (read, tar, compress, encrypt, hash) costs %.2f s of CPU for all the data (%.0f MB per CPU-second), so two CPUs doing nothing else could move the data at about %.0f MB/s, PostgreSQL's part coming on top. The rest of the CPU time, %.2f s or %.0f %% of the %.2f s that client and gateway spend, is the transfer around the pipeline: in the client %.2f s (the HTTP upload, the pipe between the tar goroutine and the uploader, the runtime), in the gateway %.2f s (%.2f s of it system time; receiving, hashing and writing %.0f MB, the catalog).",
			hc.enc.Seconds(), hc.encMBs(), nproc*hc.encMBs(), around, 100*around/ours, ours, max(pushCPU-hc.enc.Seconds(), 0), hp.gwCPU.Seconds(), hp.gwSys.Seconds(), float64(hp.stored)/1e6))
	}

	fetchCPU := (hf.res.user + hf.res.sys).Seconds()
	fbusy := (fetchCPU + hf.gwCPU.Seconds()) / hf.res.wall.Seconds()
	s = append(s, fmt.Sprintf("**backup-fetch** (zstd + encryption) ran at %.0f MB/s, %.2f s, with %.2f s of client CPU (%.2f of it system time: writing %.0f MB into the page cache, and fsync) and %.2f s of gateway CPU: %.2f of %.0f CPUs on average, with %.2f busy on the whole machine and %.2f idle waiting for I/O.",
		hf.mbs(), hf.res.wall.Seconds(), fetchCPU, hf.res.sys.Seconds(), float64(hf.bytes)/1e6, hf.gwCPU.Seconds(), fbusy, nproc,
		hf.machBusy.Seconds()/hf.res.wall.Seconds(), hf.machIOWait.Seconds()/hf.res.wall.Seconds()))
	cp := typical(bf.copy)
	if len(bf.noFsync) > 0 {
		nf, sa := bf.noFsync.median(), bf.syncAfter.median()
		s = append(s, fmt.Sprintf("The same restore without fsync takes %.2f s (%.0f MB/s), and writing its files out afterwards %.2f s: about %.0f %% of the fetch is its own work (fetching, verifying, decrypting, decompressing, writing into the page cache; decoding alone is %.2f s of CPU) and the other %.2f s is waiting for the disk: the restored data is flushed (one syncfs per filesystem, then backup_label and pg_control, each synced) before the restore counts as done.",
			nf.Seconds(), rate(hf.bytes, nf), sa.Seconds(), 100*min(nf.Seconds()/hf.res.wall.Seconds(), 1), hc.dec.Seconds(), max(hf.res.wall-nf, 0).Seconds()))
		if wait := hf.res.wall - nf; wait > sa*6/5 {
			s = append(s, fmt.Sprintf("Waiting for the disk costs more than one sync after a restore without fsync: %.2f s against %.2f s.", wait.Seconds(), sa.Seconds()))
		}
		s = append(s, writebackOverlap(nf, sa, hf.res.wall))
	}
	s = append(s, fmt.Sprintf("For scale, on this disk: `cp -a` of the data directory plus `sync` runs at %.0f MB/s (%.2f s, of which the sync %.2f s), and pg_basebackup at %.0f MB/s.", cp.mbs(), cp.res.wall.Seconds(), cp.sync.Seconds(), typical(bf.basebackup).mbs()))
	s = append(s, fmt.Sprintf("Page faults, the main cost of a wal-push on this VM, hardly matter here: %d in the push, about %s at %.1f µs each.",
		hp.res.minflt, fmtDur(time.Duration(float64(hp.res.minflt)*b.faultCost*float64(time.Microsecond))), b.faultCost))
	return strings.Join(s, " ")
}

// writebackOverlap says how much of the disk writing a fetch did while it
// was still decoding, from the same restore without fsync (work), the sync
// after it (flush) and the fetch's wall time: work and flush one after the
// other take work+flush; whatever the fetch took less ran at once.
func writebackOverlap(work, flush, wall time.Duration) string {
	serial := work + flush
	if over := serial - wall; over > 0 {
		return fmt.Sprintf("Work and writeback overlap: the restore without fsync and the sync after it take %.2f s + %.2f s = %.2f s one after the other, the fetch %.2f s: %.2f s of writing to disk ran while the fetch was still decoding (it starts the writeback of every 8 MiB it writes).",
			work.Seconds(), flush.Seconds(), serial.Seconds(), wall.Seconds(), over.Seconds())
	}
	return fmt.Sprintf("Work and writeback did not overlap in this run: the restore without fsync and the sync after it take %.2f s + %.2f s = %.2f s one after the other, and the fetch took %.2f s.",
		work.Seconds(), flush.Seconds(), serial.Seconds(), wall.Seconds())
}
