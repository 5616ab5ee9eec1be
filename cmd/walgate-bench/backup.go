package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/protocol"
)

// backupFigures are the base-backup measurements of one run.
type backupFigures struct {
	scale    int
	loadTime time.Duration // pgbench -i
	dataDir  treeSize      // the data directory when the rounds start
	walDir   treeSize      // its pg_wal part
	runs     int

	configs    []*backupConfig
	basebackup []backupRun // pg_basebackup -X none, plain format
	copy       []backupRun // cp -a, then sync

	// The headline configuration's restore through the client library in
	// this process without fsync, then a sync: the restore's work apart
	// from waiting for the disk.
	noFsync, syncAfter samples

	// The client's pipeline alone in this process, one goroutine, over
	// every file a backup holds.
	codecs     []codecFigure
	codecBytes int64

	// PostgreSQL's part of a backup, alone: pg_backup_start(label, true)
	// and pg_backup_stop(true) with nothing in between.
	pgStart, pgStop samples

	gatewayHWM, gatewayRSS int64 // KiB, after every backup run
	psiStart, psiEnd       int64
	psiWall                time.Duration
	loadStart, loadEnd     string
	elapsed                time.Duration // the whole base-backup part
}

// backupConfig is one client configuration for backup-push and
// backup-fetch.
type backupConfig struct {
	Name        string
	Compression codec.Compression
	threshold   int64   // WALGATE_TAR_SIZE_THRESHOLD; 0: the default
	parts       []int64 // payload bytes of each tar partition, as planned before the rounds
	cluster     string
	env         []string
	push, fetch []backupRun
	last        protocol.BackupSummary // the latest push: what LATEST fetches
}

// codecFigure is the pipeline of one configuration alone, warm, on one
// goroutine.
type codecFigure struct {
	Name        string
	Compression codec.Compression
	key         *codec.Key
	enc, dec    time.Duration // CPU time of this process (user + system)
	bytes       int64
	ratio       float64 // stored / plain
}

func (c codecFigure) encMBs() float64 { return rate(c.bytes, c.enc) }
func (c codecFigure) decMBs() float64 { return rate(c.bytes, c.dec) }

func rate(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

// backupRun is one timed run of a method.
type backupRun struct {
	bytes  int64 // data bytes moved (uncompressed)
	stored int64 // bytes the gateway stored (pushes)
	files  int
	res    execResult
	gwCPU  time.Duration // the gateway's CPU time during the run
	gwSys  time.Duration // the system part of it
	sync   time.Duration // of the copy's wall time, the sync's
	// The whole machine during the run, from /proc/stat: CPU time busy
	// (every process and the kernel, this run's included) and idle
	// waiting for I/O.
	machBusy, machIOWait time.Duration
}

func (r backupRun) mbs() float64 {
	if r.res.wall <= 0 {
		return 0
	}
	return float64(r.bytes) / 1e6 / r.res.wall.Seconds()
}

// typical is the run reported: the median by wall time of an odd number
// of runs; of an even number, the faster of the middle two (so of two
// runs, the better).
func typical(runs []backupRun) backupRun {
	if len(runs) == 0 {
		return backupRun{}
	}
	c := slices.Clone(runs)
	slices.SortFunc(c, func(a, b backupRun) int { return int(a.res.wall - b.res.wall) })
	return c[(len(c)-1)/2]
}

// treeSize is the regular files under a directory.
type treeSize struct {
	bytes int64
	files int
}

func sizeOfTree(dir string) (treeSize, error) {
	var t treeSize
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // vanished while walking a live data directory
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		t.bytes += fi.Size()
		t.files++
		return nil
	})
	return t, err
}

// measureBackups loads a pgbench database into a new cluster and times
// backup-push and backup-fetch in two configurations against a gateway of
// their own, with pg_basebackup and a plain copy as baselines, in rounds.
// backupCluster creates the throwaway cluster a base-backup figure is
// taken of, removed by cl.
func backupCluster(ctx context.Context, cl *cleanups) (*pgtest.Cluster, error) {
	c, err := pgtest.Create(ctx, "", pgtest.Options{Conf: []string{
		"archive_mode = on",
		// pg_backup_stop waits until the backup's last segment is
		// archived; /bin/true archives at once, so that the figures are
		// the backup's own, not an archive_command's.
		"archive_command = '/bin/true'",
		// No checkpoint during the load; and removed rather than recycled
		// segments, so that after the checkpoints below pg_wal holds a
		// few segments instead of max_wal_size of them (the plain copy
		// baseline copies pg_wal; the backups skip its contents).
		"max_wal_size = '8GB'",
		"min_wal_size = '32MB'",
		"checkpoint_timeout = '30min'",
		"wal_recycle = off",
	}})
	if err != nil {
		return nil, err
	}
	cl.add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(sctx); err != nil {
			logf("%v; killing it", err)
			c.Kill(sctx)
		}
		if err := c.Remove(); err != nil {
			logf("%v", err)
		}
	})

	return c, nil
}

func (b *bench) measureBackups(ctx context.Context, cl *cleanups) error {
	t0 := time.Now()
	bf := &backupFigures{scale: b.opts.backupScale, runs: b.opts.backupRuns}
	b.backup = bf

	c, scan, err := bf.loadCluster(ctx, cl)
	if err != nil {
		return err
	}
	g, err := startGateway(ctx, b.gatewayBin, filepath.Join(b.scratch, "backup-gateway"), filepath.Join(b.scratch, "backup-gateway.log"))
	if err != nil {
		return err
	}
	cl.add(g.stop)
	gwPid := g.cmd.Process.Pid

	pgEnv := []string{
		"PGHOST=127.0.0.1",
		"PGPORT=" + strconv.Itoa(c.Port),
		"PGUSER=postgres",
		"PGDATABASE=postgres",
		"PGSSLMODE=disable",
	}
	if err := b.backupConfigs(ctx, g, scan, pgEnv); err != nil {
		return err
	}

	br := &backupRounds{b: b, bf: bf, ctx: ctx, c: c, gwPid: gwPid,
		baseEnv: append([]string{"PATH=/usr/bin:/bin", "HOME=" + b.scratch}, pgEnv...),
		outDir:  filepath.Join(b.scratch, "backup-out")}
	if br.cpPath, err = exec.LookPath("cp"); err != nil {
		return err
	}
	if br.syncPath, err = exec.LookPath("sync"); err != nil {
		return err
	}
	if err := os.Mkdir(br.outDir, 0o755); err != nil {
		return err
	}
	cl.add(func() { os.RemoveAll(br.outDir) })

	psiT0 := time.Now()
	bf.psiStart = readPSI()
	bf.loadStart = readLoadavg()
	if err := br.run(); err != nil {
		return err
	}
	bf.psiEnd = readPSI()
	bf.psiWall = time.Since(psiT0)
	bf.loadEnd = readLoadavg()

	mem, err := procStatus(gwPid, "VmHWM", "VmRSS")
	if err != nil {
		return fmt.Errorf("reading the backup gateway's memory: %w", err)
	}
	bf.gatewayHWM, bf.gatewayRSS = mem["VmHWM"], mem["VmRSS"]
	g.stop()

	if err := bf.measurePostgresPart(ctx, c); err != nil {
		return err
	}
	logf("base backups: the client's pipeline alone, in this process, over every file of the backup")
	files := append(slices.Clone(scan.Files), scan.PgControl)
	if err := bf.measureCodec(files); err != nil {
		return err
	}
	bf.elapsed = time.Since(t0)
	return nil
}

// loadCluster creates the PostgreSQL cluster the backups are taken of,
// loads it with pgbench, checkpoints, and scans its data directory.
func (bf *backupFigures) loadCluster(ctx context.Context, cl *cleanups) (*pgtest.Cluster, *basebackup.Scan, error) {
	logf("base backups: creating a PostgreSQL 15 cluster (archive_mode = on, archive_command = '/bin/true')")
	c, err := backupCluster(ctx, cl)
	if err != nil {
		return nil, nil, err
	}

	logf("pgbench -i -s %d (about %d MB of data)", bf.scale, bf.scale*16)
	lt := time.Now()
	if _, err := c.Pgbench(ctx, "-i", "-q", "-s", strconv.Itoa(bf.scale)); err != nil {
		return nil, nil, err
	}
	bf.loadTime = time.Since(lt)
	for _, q := range []string{"CHECKPOINT", "SELECT pg_switch_wal()", "CHECKPOINT"} {
		if err := c.Exec(ctx, q); err != nil {
			return nil, nil, err
		}
	}
	if bf.dataDir, err = sizeOfTree(c.DataDir); err != nil {
		return nil, nil, err
	}
	if bf.walDir, err = sizeOfTree(filepath.Join(c.DataDir, "pg_wal")); err != nil {
		return nil, nil, err
	}
	scan, err := basebackup.ScanDataDir(c.DataDir)
	if err != nil {
		return nil, nil, err
	}
	logf("loaded in %.0f s: data directory %.1f MiB in %d files (pg_wal %.1f MiB)",
		bf.loadTime.Seconds(), mib(bf.dataDir.bytes), bf.dataDir.files, mib(bf.walDir.bytes))
	return c, scan, nil
}

// backupConfigs makes the backup client configurations measured (each with
// its own cluster, token and planned partitions) and the codec pipelines
// measured in this process.
func (b *bench) backupConfigs(ctx context.Context, g *gateway, scan *basebackup.Scan, pgEnv []string) error {
	bf := b.backup
	partition := func(threshold int64) []int64 {
		if threshold <= 0 {
			threshold = basebackup.DefaultPartThreshold
		}
		var sizes []int64
		for _, part := range basebackup.Partition(scan.Files, threshold) {
			var n int64
			for _, f := range part {
				n += f.Size
			}
			sizes = append(sizes, n)
		}
		return sizes
	}
	keyHex, key, err := newBenchKey()
	if err != nil {
		return err
	}
	for _, x := range []struct {
		comp      codec.Compression
		threshold int64
	}{{codec.Zstd, 0}, {codec.LZ4, 0}, {codec.Zstd, smallParts}} {
		cf := &backupConfig{Name: string(x.comp) + " + encryption", Compression: x.comp, threshold: x.threshold,
			cluster: "bench-backup-" + string(x.comp) + "-enc", parts: partition(x.threshold)}
		if x.threshold > 0 {
			cf.Name += fmt.Sprintf(", %d MiB partitions", x.threshold>>20)
			cf.cluster += "-" + strconv.FormatInt(x.threshold>>20, 10)
		}
		tok, err := g.addToken(ctx, cf.cluster)
		if err != nil {
			return err
		}
		cf.env = append([]string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + b.scratch,
			"WALGATE_URL=" + g.url,
			"WALGATE_TOKEN=" + tok,
			"WALGATE_COMPRESSION=" + string(x.comp),
			"WALGATE_ENCRYPTION_KEY=" + keyHex,
			"WALGATE_ENCRYPTION_KEY_TRANSFORM=hex",
		}, pgEnv...)
		if x.threshold > 0 {
			cf.env = append(cf.env, "WALGATE_TAR_SIZE_THRESHOLD="+strconv.FormatInt(x.threshold, 10))
		}
		bf.configs = append(bf.configs, cf)
	}
	for _, comp := range []codec.Compression{codec.Zstd, codec.LZ4} {
		bf.codecs = append(bf.codecs, codecFigure{Name: string(comp) + " + encryption", Compression: comp, key: key},
			codecFigure{Name: string(comp), Compression: comp})
	}
	return nil
}

// backupRounds times every backup and restore method, round after round.
type backupRounds struct {
	b                *bench
	bf               *backupFigures
	ctx              context.Context
	c                *pgtest.Cluster
	gwPid            int
	baseEnv          []string // for pg_basebackup, cp and sync
	outDir           string   // every run writes a new directory here
	cpPath, syncPath string
}

// roundStep is one method timed once per round.
type roundStep struct {
	name string
	run  func(round int) error
}

// run does the rounds: every method once per round, the order rotated from
// round to round; the fetches after the pushes they restore.
func (br *backupRounds) run() error {
	bf := br.bf
	var reads, writes []roundStep
	for _, cf := range bf.configs {
		reads = append(reads, roundStep{"backup-push, " + cf.Name, func(int) error { return br.push(cf) }})
		writes = append(writes, roundStep{"backup-fetch, " + cf.Name, func(round int) error { return br.fetch(cf, round) }})
	}
	writes = append(writes, roundStep{"restore without fsync, in-process, " + bf.configs[0].Name, br.restoreNoFsync})
	reads = append(reads, roundStep{"pg_basebackup", br.pgBasebackup}, roundStep{"cp -a + sync", br.copyAndSync})

	logf("base backups: %d rounds of %d pushes and baselines, then %d fetches", bf.runs, len(reads), len(writes))
	for round := range bf.runs {
		for _, list := range [][]roundStep{reads, writes} {
			for k := range list {
				s := list[(round+k)%len(list)]
				if err := s.run(round); err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
			}
		}
		logf("  round %d/%d (MB/s):", round+1, bf.runs)
		for _, cf := range bf.configs {
			logf("    %s: push %.0f, fetch %.0f", cf.Name, cf.push[round].mbs(), cf.fetch[round].mbs())
		}
		logf("    pg_basebackup %.0f, cp -a + sync %.0f", bf.basebackup[round].mbs(), bf.copy[round].mbs())
	}
	return nil
}

// clean removes a run's output directory, untimed, and syncs, so that no
// run pays for another's writeback (every run also syncs before it starts).
func (br *backupRounds) clean(dir string) error {
	err := os.RemoveAll(dir)
	syscall.Sync()
	return err
}

type cpuTimes struct{ user, sys time.Duration }

func (br *backupRounds) gwCPU() cpuTimes {
	u, s, _ := procTimes(br.gwPid)
	return cpuTimes{u, s}
}

// timedClient runs the client with args and returns the run with the
// gateway's and the machine's CPU time during it.
func (br *backupRounds) timedClient(cf *backupConfig, args ...string) (backupRun, error) {
	syscall.Sync()
	cpu0, m0 := br.gwCPU(), readMachineCPU()
	r, err := br.b.execClient(br.ctx, cf.env, args...)
	if err != nil {
		return backupRun{}, err
	}
	cpu1 := br.gwCPU()
	run := backupRun{res: r, gwCPU: cpu1.user - cpu0.user + cpu1.sys - cpu0.sys, gwSys: cpu1.sys - cpu0.sys}
	m1 := readMachineCPU()
	run.machBusy, run.machIOWait = m1.busy-m0.busy, m1.iowait-m0.iowait
	return run, nil
}

func (br *backupRounds) push(cf *backupConfig) error {
	run, err := br.timedClient(cf, "backup-push", br.c.DataDir)
	if err != nil {
		return err
	}
	sum, err := latestBackup(br.ctx, cf.env)
	if err != nil {
		return err
	}
	if !strings.Contains(run.res.output, "backup "+sum.Name+" committed") {
		return fmt.Errorf("backup-push %s: the newest backup is %s, but the client said: %s", cf.Name, sum.Name, strings.TrimSpace(run.res.output))
	}
	cf.last = sum
	run.bytes, run.stored = sum.UncompressedSize, sum.StoredSize
	cf.push = append(cf.push, run)
	return nil
}

func (br *backupRounds) fetch(cf *backupConfig, round int) error {
	dst := filepath.Join(br.outDir, fmt.Sprintf("fetch-%s-%d", cf.cluster, round))
	run, err := br.timedClient(cf, "backup-fetch", dst, protocol.Latest)
	if err != nil {
		return err
	}
	if !strings.Contains(run.res.output, "restored "+cf.last.Name+" into") {
		return fmt.Errorf("backup-fetch LATEST of %s did not restore %s: %s", cf.cluster, cf.last.Name, strings.TrimSpace(run.res.output))
	}
	got, err := sizeOfTree(dst)
	if err != nil {
		return err
	}
	// The data files, plus backup_label and tablespace_map.
	if got.bytes < cf.last.UncompressedSize || got.bytes > cf.last.UncompressedSize+64<<10 {
		return fmt.Errorf("backup-fetch of %s restored %d bytes, the backup holds %d", cf.last.Name, got.bytes, cf.last.UncompressedSize)
	}
	for _, f := range []string{"global/pg_control", "backup_label"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			return fmt.Errorf("backup-fetch of %s: %w", cf.last.Name, err)
		}
	}
	run.bytes, run.files = cf.last.UncompressedSize, got.files
	cf.fetch = append(cf.fetch, run)
	return br.clean(dst)
}

// restoreNoFsync restores the headline configuration's latest backup
// through the client library in this process without fsync, then syncs.
func (br *backupRounds) restoreNoFsync(round int) error {
	bf, head := br.bf, br.bf.configs[0]
	dst := filepath.Join(br.outDir, fmt.Sprintf("nofsync-%d", round))
	syscall.Sync()
	cfg, err := client.LoadConfig(envFunc(head.env))
	if err != nil {
		return err
	}
	cli, err := client.New(cfg)
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := cli.FetchBackup(br.ctx, protocol.Latest, dst, client.RestoreOptions{})
	d := time.Since(t0)
	cli.Close()
	if err != nil {
		return err
	}
	if res.Backup.Name != head.last.Name {
		return fmt.Errorf("LATEST is %s, not %s", res.Backup.Name, head.last.Name)
	}
	t0 = time.Now()
	syscall.Sync()
	bf.noFsync = append(bf.noFsync, d)
	bf.syncAfter = append(bf.syncAfter, time.Since(t0))
	return br.clean(dst)
}

func (br *backupRounds) pgBasebackup(round int) error {
	dst := filepath.Join(br.outDir, fmt.Sprintf("pg_basebackup-%d", round))
	syscall.Sync()
	r, err := br.b.sp.run(br.ctx, filepath.Join(pgtest.BinDir, "pg_basebackup"), br.baseEnv,
		"-D", dst, "-X", "none", "--checkpoint=fast", "--no-password")
	if err != nil {
		return err
	}
	got, err := sizeOfTree(dst)
	if err != nil {
		return err
	}
	br.bf.basebackup = append(br.bf.basebackup, backupRun{bytes: got.bytes, files: got.files, res: r})
	return br.clean(dst)
}

func (br *backupRounds) copyAndSync(round int) error {
	dst := filepath.Join(br.outDir, fmt.Sprintf("copy-%d", round))
	syscall.Sync()
	r, err := br.b.sp.run(br.ctx, br.cpPath, br.baseEnv, "-a", br.c.DataDir, dst)
	if err != nil {
		return err
	}
	s, err := br.b.sp.run(br.ctx, br.syncPath, br.baseEnv)
	if err != nil {
		return err
	}
	r.wall += s.wall
	got, err := sizeOfTree(dst)
	if err != nil {
		return err
	}
	br.bf.copy = append(br.bf.copy, backupRun{bytes: got.bytes, files: got.files, res: r, sync: s.wall})
	return br.clean(dst)
}

// measurePostgresPart times PostgreSQL's part of a backup alone:
// pg_backup_start and pg_backup_stop with nothing in between.
func (bf *backupFigures) measurePostgresPart(ctx context.Context, c *pgtest.Cluster) error {
	logf("base backups: PostgreSQL's part alone, %d x pg_backup_start + pg_backup_stop", bf.runs)
	for range bf.runs {
		start, stop, err := backupStartStop(ctx, c)
		if err != nil {
			return err
		}
		bf.pgStart = append(bf.pgStart, start)
		bf.pgStop = append(bf.pgStop, stop)
	}
	return nil
}

// latestBackup asks the gateway, as the client configured by env, for the
// newest committed backup.
func latestBackup(ctx context.Context, env []string) (protocol.BackupSummary, error) {
	cfg, err := client.LoadConfig(envFunc(env))
	if err != nil {
		return protocol.BackupSummary{}, err
	}
	c, err := client.New(cfg)
	if err != nil {
		return protocol.BackupSummary{}, err
	}
	defer c.Close()
	list, err := c.ListBackups(ctx)
	if err != nil {
		return protocol.BackupSummary{}, err
	}
	if len(list) == 0 {
		return protocol.BackupSummary{}, errors.New("the gateway lists no backup")
	}
	best := list[0]
	for _, s := range list[1:] {
		if s.FinishTime.After(best.FinishTime) {
			best = s
		}
	}
	return best, nil
}

// smallParts is the partition size of the configuration that shows what
// the default 1 GiB partitions cost in parallelism.
const smallParts = 256 << 20

// backupStartStop times PostgreSQL's part of a backup on one connection,
// as backup-push does it: pg_backup_start with a fast checkpoint, then
// pg_backup_stop waiting for the archiver.
func backupStartStop(ctx context.Context, c *pgtest.Cluster) (start, stop time.Duration, err error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	t0 := time.Now()
	if _, err := conn.Exec(ctx, "SELECT pg_backup_start('walgate-bench', true)"); err != nil {
		return 0, 0, err
	}
	t1 := time.Now()
	if _, err := conn.Exec(ctx, "SELECT * FROM pg_backup_stop(true)"); err != nil {
		return 0, 0, err
	}
	return t1.Sub(t0), time.Since(t1), nil
}

// measureCodec runs each configuration's pipeline as backup-push and
// backup-fetch run it for one partition, on one goroutine over every file
// of the backup: read and tar the files, compress, encrypt, SHA-256 of the
// output; then SHA-256 of that output, decrypt, decompress (not
// extracting).
func (bf *backupFigures) measureCodec(files []basebackup.File) error {
	for i := range bf.codecs {
		cf := &bf.codecs[i]
		// Timed: into the hash alone. Keeping the output in a growing
		// buffer would add its page faults, which the client, streaming,
		// does not have.
		cpu0 := selfCPU()
		h := sha256.New()
		w, err := codec.NewWriter(h, cf.Compression, cf.key)
		if err != nil {
			return err
		}
		tr, err := basebackup.WriteTar(w, files)
		if err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		_ = h.Sum(nil)
		cf.enc = selfCPU() - cpu0
		cf.bytes = tr.Bytes
		bf.codecBytes = tr.Bytes

		// Untimed: again, into memory, as the input of the decoder.
		var out bytes.Buffer
		if w, err = codec.NewWriter(&out, cf.Compression, cf.key); err != nil {
			return err
		}
		if _, err := basebackup.WriteTar(w, files); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}

		cpu0 = selfCPU()
		h = sha256.New()
		r, err := codec.NewReader(io.TeeReader(bytes.NewReader(out.Bytes()), h), cf.Compression, cf.key)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, r, make([]byte, 256<<10))
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		_ = h.Sum(nil)
		cf.dec = selfCPU() - cpu0
		if n < tr.Bytes {
			return fmt.Errorf("pipeline %s: decoded %d bytes, the tar holds %d bytes of data", cf.Name, n, tr.Bytes)
		}
		cf.ratio = float64(out.Len()) / float64(n)
	}
	return nil
}

// selfCPU is this process's CPU time so far, user + system, every thread.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// machineCPU is the first line of /proc/stat: CPU time of all CPUs.
type machineCPU struct {
	busy   time.Duration // everything but idle and iowait (steal included)
	iowait time.Duration
}

func readMachineCPU() machineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return machineCPU{}
	}
	var m machineCPU
	tick := time.Second / 100 // USER_HZ
	// user nice system idle iowait irq softirq steal (guest time is
	// already in user and nice).
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return machineCPU{}
		}
		switch i {
		case 3:
		case 4:
			m.iowait = time.Duration(n) * tick
		default:
			m.busy += time.Duration(n) * tick
		}
	}
	return m
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
