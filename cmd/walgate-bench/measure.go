package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
)

// bench holds the inputs, the settings and every figure of one run.
type bench struct {
	opts                  options
	delta                 *deltaFigures    // nil unless measured
	fleet                 *fleetFigures    // nil unless measured
	fanout                *fanoutFigures   // nil unless measured
	lifecycle             string           // the lifecycle section, "" unless measured
	peer                  *peerFigures     // nil unless measured
	recovery              *recoveryFigures // nil unless measured
	catalog               *catalogFigures  // nil unless measured
	sp                    *spawner
	gatewayBin, clientBin string
	scratch               string
	machine               machine
	loadStart, loadEnd    string
	elapsed               time.Duration

	segments   []segment
	walTime    time.Duration
	pgbenchTPS string

	runs    int       // timed pushes per configuration
	configs []*config // configs[0] is the headline

	baseline   samples // Go copy + fsync + directory fsync, in-process
	cpExec     samples // exec of cp, no fsync
	versionRun samples // exec of 'walgate-client version': the process floor
	versionRSS int64
	versionFlt int64   // minor page faults of 'walgate-client version'
	floorRSS   int64   // KiB: the spawn helper's own peak (see spawn.go)
	faultCost  float64 // microseconds per first touch of an anonymous page

	fetch    samples // wal-fetch of the headline configuration
	fetchCPU samples
	fetchRSS int64

	inproc samples // client.PushWAL in this process, headline configuration

	sustained struct {
		pushes int
		bytes  int64
		wall   time.Duration
		gwCPU  time.Duration
		rss    []int64 // KiB, per push
	}

	psiStart, psiEnd int64 // /proc/pressure/cpu "some" total, microseconds
	psiWall          time.Duration

	gatewayHWM, gatewayRSS int64 // KiB
	gatewayCPU             time.Duration

	backup *backupFigures // nil with -backup-scale 0
}

// config is one client configuration under test.
type config struct {
	Name        string
	Compression codec.Compression
	Encrypt     bool
	cluster     string
	env         []string
	key         *codec.Key

	wall, cpu samples
	rss       []int64 // KiB, per push
	minflt    []int64 // minor page faults, per push
	gw        samples // the gateway's own time for the PUT, from its request log
	codec     samples

	stored, plain           int64
	storedPhase, plainPhase map[string]int64
}

// samples are durations of repeated runs.
type samples []time.Duration

func (s samples) sorted() samples {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func (s samples) median() time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// pct is the nearest-rank percentile p (0 < p <= 100).
func (s samples) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := s.sorted()
	i := int(math.Ceil(p/100*float64(len(c)))) - 1
	return c[max(i, 0)]
}

func (s samples) min() time.Duration { return s.pct(0.0001) }
func (s samples) max() time.Duration { return s.pct(100) }

// item is one timed push: a segment under a name.
type item struct {
	seg  *segment
	name string
	path string // a file named name with the segment's bytes
}

// result of one exec of the client.
type execResult struct {
	wall, cpu time.Duration
	user, sys time.Duration // cpu split
	maxRSS    int64         // KiB
	minflt    int64         // minor page faults
	output    string        // stdout and stderr together (their last 64 KiB)
}

// measure runs everything against one gateway.
func (b *bench) measure(ctx context.Context, cl *cleanups) error {
	g, err := startGateway(ctx, b.gatewayBin, filepath.Join(b.scratch, "gateway"), filepath.Join(b.scratch, "gateway.log"))
	if err != nil {
		return err
	}
	cl.add(g.stop)
	pid := g.cmd.Process.Pid
	psiT0 := time.Now()
	b.psiStart = readPSI()
	defer func() {
		b.psiEnd = readPSI()
		b.psiWall = time.Since(psiT0)
	}()
	logf("gateway pid %d on %s, store %s", pid, g.url, filepath.Join(g.data, "store"))

	sustainedEnv, inprocEnv, err := b.walConfigs(ctx, g)
	if err != nil {
		return err
	}
	names := filepath.Join(b.scratch, "names")
	if err := os.Mkdir(names, 0o755); err != nil {
		return err
	}
	items, err := b.timedItems(names)
	if err != nil {
		return err
	}
	cpPath, err := exec.LookPath("cp")
	if err != nil {
		return err
	}
	baseDir := filepath.Join(b.scratch, "baseline-store")
	cpDir := filepath.Join(b.scratch, "cp-store")
	for _, d := range []string{baseDir, cpDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}

	if err := b.warmUp(ctx, names, baseDir, cpPath); err != nil {
		return err
	}
	if err := b.measureProcessFloor(ctx); err != nil {
		return err
	}
	if err := b.measureRounds(ctx, items, baseDir, cpDir, cpPath); err != nil {
		return err
	}
	if err := b.measureWALFetch(ctx, items); err != nil {
		return err
	}
	if err := b.measureInProcess(ctx, items, inprocEnv); err != nil {
		return err
	}
	if err := b.measureSustained(ctx, names, sustainedEnv, pid); err != nil {
		return err
	}
	if err := b.readGatewayFigures(g, pid); err != nil {
		return err
	}
	return b.measureStoredSizes(g)
}

// newBenchKey returns a random encryption key, as hex for the client's
// environment and parsed for the in-process codec.
func newBenchKey() (string, *codec.Key, error) {
	var raw [codec.KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, err
	}
	keyHex := hex.EncodeToString(raw[:])
	key, err := codec.ParseKey(keyHex, "hex")
	if err != nil {
		return "", nil, err
	}
	return keyHex, key, nil
}

// walConfigs makes b.configs, the WAL client configurations measured, each
// with its own cluster and token, and the environments of the sustained
// and in-process runs.
func (b *bench) walConfigs(ctx context.Context, g *gateway) (sustainedEnv, inprocEnv []string, err error) {
	keyHex, key, err := newBenchKey()
	if err != nil {
		return nil, nil, err
	}
	newEnv := func(cluster string, comp codec.Compression, enc bool) ([]string, error) {
		tok, err := g.addToken(ctx, cluster)
		if err != nil {
			return nil, err
		}
		env := []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"WALGATE_URL=" + g.url,
			"WALGATE_TOKEN=" + tok,
			"WALGATE_COMPRESSION=" + string(comp),
		}
		if enc {
			env = append(env, "WALGATE_ENCRYPTION_KEY="+keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex")
		}
		return env, nil
	}
	for _, c := range []struct {
		comp codec.Compression
		enc  bool
	}{
		{codec.Zstd, true}, {codec.Zstd, false}, {codec.LZ4, false}, {codec.LZ4, true},
		{codec.Brotli, false}, {codec.None, false},
	} {
		cf := &config{Name: string(c.comp), Compression: c.comp, Encrypt: c.enc, cluster: "bench-" + string(c.comp),
			storedPhase: map[string]int64{}, plainPhase: map[string]int64{}}
		if c.enc {
			cf.Name += " + encryption"
			cf.cluster += "-enc"
			cf.key = key
		}
		if cf.env, err = newEnv(cf.cluster, c.comp, c.enc); err != nil {
			return nil, nil, err
		}
		b.configs = append(b.configs, cf)
	}
	if sustainedEnv, err = newEnv("bench-sustained", codec.Zstd, true); err != nil {
		return nil, nil, err
	}
	if inprocEnv, err = newEnv("bench-inproc", codec.Zstd, true); err != nil {
		return nil, nil, err
	}
	return sustainedEnv, inprocEnv, nil
}

// linkSegment makes name in dir a hard link to the segment's file: the
// same bytes pushed under another WAL file name.
func linkSegment(dir string, seg *segment, name string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.Link(seg.Path, p)
}

// timedItems sets b.runs and returns the timed pushes: every real segment
// once, then real segments under made-up names (linked in names) until
// there are opts.minRuns.
func (b *bench) timedItems(names string) ([]item, error) {
	n := len(b.segments)
	b.runs = max(n, b.opts.minRuns)
	items := make([]item, b.runs)
	for j := range items {
		seg := &b.segments[j%n]
		items[j] = item{seg: seg, name: seg.Name, path: seg.Path}
		if j >= n {
			name := syntheticName(0x10, j-n)
			p, err := linkSegment(names, seg, name)
			if err != nil {
				return nil, err
			}
			items[j] = item{seg: seg, name: name, path: p}
		}
	}
	return items, nil
}

// warmUp runs everything once, untimed: page cache for the binaries, the
// gateway's first requests, one push per configuration under a name not
// measured, one baseline copy of each kind.
func (b *bench) warmUp(ctx context.Context, names, baseDir, cpPath string) error {
	logf("warm-up")
	head := b.configs[0]
	for range 3 {
		if _, err := b.execClient(ctx, head.env, "version"); err != nil {
			return err
		}
	}
	warm, err := linkSegment(names, &b.segments[0], syntheticName(warmBlock, 0))
	if err != nil {
		return err
	}
	for _, c := range b.configs {
		if _, err := b.execClient(ctx, c.env, "wal-push", warm); err != nil {
			return err
		}
	}
	if _, err := copyFsync(b.segments[0].Path, filepath.Join(baseDir, "warm-up")); err != nil {
		return err
	}
	_, err = b.sp.run(ctx, cpPath, nil, "--version")
	return err
}

// measureProcessFloor times `walgate-client version`: what any exec of the
// client costs before it does anything.
func (b *bench) measureProcessFloor(ctx context.Context) error {
	logf("process floor: %d x walgate-client version", b.runs)
	head := b.configs[0]
	var vflt []int64
	for range b.runs {
		r, err := b.execClient(ctx, head.env, "version")
		if err != nil {
			return err
		}
		b.versionRun = append(b.versionRun, r.wall)
		b.versionRSS = max(b.versionRSS, r.maxRSS)
		vflt = append(vflt, r.minflt)
	}
	b.versionFlt = medianOf(vflt)
	b.faultCost = measureFaultCost()
	return nil
}

// measureRounds times the pushes. Each round pushes one segment in every
// configuration and copies it for the baselines, in an order that rotates
// from round to round, so that load from elsewhere on the machine falls on
// all of them alike.
func (b *bench) measureRounds(ctx context.Context, items []item, baseDir, cpDir, cpPath string) error {
	logf("%d rounds: %d configurations + 2 baselines per round", b.runs, len(b.configs))
	head := b.configs[0]
	type step func(it item) error
	var steps []step
	for _, c := range b.configs {
		steps = append(steps, func(it item) error {
			r, err := b.execClient(ctx, c.env, "wal-push", it.path)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			c.wall = append(c.wall, r.wall)
			c.cpu = append(c.cpu, r.cpu)
			c.rss = append(c.rss, r.maxRSS)
			c.minflt = append(c.minflt, r.minflt)
			return nil
		})
	}
	steps = append(steps, func(it item) error {
		d, err := copyFsync(it.path, filepath.Join(baseDir, it.name))
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		b.baseline = append(b.baseline, d)
		return os.Remove(filepath.Join(baseDir, it.name))
	})
	steps = append(steps, func(it item) error {
		dst := filepath.Join(cpDir, it.name)
		r, err := b.sp.run(ctx, cpPath, []string{"PATH=/usr/bin:/bin"}, it.path, dst)
		if err != nil {
			return fmt.Errorf("cp baseline: %w", err)
		}
		b.cpExec = append(b.cpExec, r.wall)
		// Unlinked before writeback: its dirty pages are dropped and do
		// not disturb the next fsync.
		return os.Remove(dst)
	})
	for j, it := range items {
		for k := range steps {
			if err := steps[(j+k)%len(steps)](it); err != nil {
				return err
			}
		}
		if (j+1)%5 == 0 || j+1 == len(items) {
			logf("  round %d/%d: %s median so far %s", j+1, len(items), head.Name, fmtDur(head.wall.median()))
		}
	}
	return nil
}

// measureWALFetch times wal-fetch of every timed item in the headline
// configuration and checks what it restored.
func (b *bench) measureWALFetch(ctx context.Context, items []item) error {
	head := b.configs[0]
	logf("wal-fetch: %d x %s", b.runs, head.Name)
	fetchDir := filepath.Join(b.scratch, "fetch")
	if err := os.Mkdir(fetchDir, 0o755); err != nil {
		return err
	}
	for _, it := range items {
		dst := filepath.Join(fetchDir, it.name)
		r, err := b.execClient(ctx, head.env, "wal-fetch", it.name, dst)
		if err != nil {
			return err
		}
		b.fetch = append(b.fetch, r.wall)
		b.fetchCPU = append(b.fetchCPU, r.cpu)
		b.fetchRSS = max(b.fetchRSS, r.maxRSS)
		if err := sameContent(dst, it.seg.SHA256); err != nil {
			return fmt.Errorf("wal-fetch %s: %w", it.name, err)
		}
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	return nil
}

// measureInProcess times, in this process and interleaved per segment, the
// client's codec pipeline alone for every configuration and the whole push
// through the client library for the headline one. Both run warm (buffers
// already faulted in, codec tables built), unlike an exec'd client.
func (b *bench) measureInProcess(ctx context.Context, items []item, inprocEnv []string) error {
	logf("in-process: codec pipeline x %d configurations and client-library push, %d segments", len(b.configs), b.runs)
	getenv := envFunc(inprocEnv)
	for _, it := range items {
		data, err := os.ReadFile(it.path)
		if err != nil {
			return err
		}
		for _, c := range b.configs {
			d, err := encodeLikeClient(data, c.Compression, c.key)
			if err != nil {
				return err
			}
			c.codec = append(c.codec, d)
		}
		data = nil
		t0 := time.Now()
		cfg, err := client.LoadConfig(getenv)
		if err != nil {
			return err
		}
		c, err := client.New(cfg)
		if err != nil {
			return err
		}
		_, err = c.PushWAL(ctx, it.path)
		c.Close()
		if err != nil {
			return fmt.Errorf("in-process push of %s: %w", it.name, err)
		}
		b.inproc = append(b.inproc, time.Since(t0))
	}
	return nil
}

// measureSustained times opts.sustained sequential pushes of the headline
// configuration under new names, and the gateway's CPU time meanwhile.
func (b *bench) measureSustained(ctx context.Context, names string, env []string, pid int) error {
	logf("sustained: %d sequential pushes, %s", b.opts.sustained, b.configs[0].Name)
	n := len(b.segments)
	sitems := make([]item, b.opts.sustained)
	for i := range sitems {
		seg := &b.segments[i%n]
		name := syntheticName(0x20, i)
		p, err := linkSegment(names, seg, name)
		if err != nil {
			return err
		}
		sitems[i] = item{seg: seg, name: name, path: p}
	}
	cpu0, _ := procCPU(pid)
	t0 := time.Now()
	for _, it := range sitems {
		r, err := b.execClient(ctx, env, "wal-push", it.path)
		if err != nil {
			return err
		}
		b.sustained.bytes += it.seg.Size
		b.sustained.rss = append(b.sustained.rss, r.maxRSS)
	}
	b.sustained.wall = time.Since(t0)
	b.sustained.pushes = len(sitems)
	if cpu1, err := procCPU(pid); err == nil {
		b.sustained.gwCPU = cpu1 - cpu0
	}
	return nil
}

// readGatewayFigures reads the gateway's memory and CPU time, stops it and
// reads its log.
func (b *bench) readGatewayFigures(g *gateway, pid int) error {
	mem, err := procStatus(pid, "VmHWM", "VmRSS")
	if err != nil {
		return fmt.Errorf("reading the gateway's memory: %w", err)
	}
	b.gatewayHWM, b.gatewayRSS = mem["VmHWM"], mem["VmRSS"]
	b.gatewayCPU, _ = procCPU(pid)
	b.floorRSS = b.sp.peakRSS()
	g.stop()
	return b.readGatewayLog(g.logPath)
}

// measureStoredSizes adds up the stored sizes of the real segments, as the
// fs backend holds them, per configuration and phase.
func (b *bench) measureStoredSizes(g *gateway) error {
	for _, c := range b.configs {
		dir := filepath.Join(g.data, "store", c.cluster, "wal_005")
		for _, s := range b.segments {
			name := s.Name
			if ext := c.Compression.Ext(); ext != "" {
				name += "." + ext
			}
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("stored object of %s: %w", c.Name, err)
			}
			c.stored += fi.Size()
			c.plain += s.Size
			c.storedPhase[s.Phase] += fi.Size()
			c.plainPhase[s.Phase] += s.Size
		}
	}
	return nil
}

// execClient runs the client binary with env, as archive_command does, and
// returns its wall time, CPU time and peak RSS.
func (b *bench) execClient(ctx context.Context, env []string, args ...string) (execResult, error) {
	return b.sp.run(ctx, b.clientBin, env, args...)
}

// copyFsync is the baseline: what a careful 'cp %p DIR/%f' does, in
// process: copy, fsync the file, close, fsync the directory.
func copyFsync(src, dst string) (time.Duration, error) {
	t0 := time.Now()
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	_, err = io.CopyBuffer(out, in, make([]byte, 256<<10))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return 0, err
	}
	err = d.Sync()
	d.Close()
	return time.Since(t0), err
}

// encodeLikeClient does what wal-push does to a segment before it sends
// it: compress, encrypt, hash the output, compute the content ID.
func encodeLikeClient(data []byte, comp codec.Compression, key *codec.Key) (time.Duration, error) {
	t0 := time.Now()
	sent := sha256.New()
	enc, err := codec.NewWriter(sent, comp, key)
	if err != nil {
		return 0, err
	}
	cid := codec.NewContentID(key)
	if _, err := io.CopyBuffer(enc, io.TeeReader(bytes.NewReader(data), cid), make([]byte, 256<<10)); err != nil {
		return 0, err
	}
	if err := enc.Close(); err != nil {
		return 0, err
	}
	_ = sent.Sum(nil)
	_ = cid.String()
	return time.Since(t0), nil
}

func sameContent(path string, want [32]byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return errors.New("restored bytes differ from the segment pushed")
	}
	return nil
}

func envFunc(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// readGatewayLog takes the gateway's own time for every PUT of a timed
// configuration from its request log lines ("msg=request method=PUT
// path=/v1/clusters/C/wal/N status=201 ms=18 ...").
func (b *bench) readGatewayLog(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	byCluster := map[string]*config{}
	for _, c := range b.configs {
		byCluster[c.cluster] = c
	}
	for _, line := range strings.Split(string(data), "\n") {
		kv := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		if kv["msg"] != "request" || kv["method"] != "PUT" || kv["status"] != "201" {
			continue
		}
		parts := strings.Split(kv["path"], "/") // "", v1, clusters, C, wal, N
		if len(parts) != 6 {
			continue
		}
		c := byCluster[parts[3]]
		ms, err := strconv.Atoi(kv["ms"])
		if c == nil || err != nil || parts[5] == syntheticName(warmBlock, 0) {
			continue // not timed, or the warm-up push
		}
		c.gw = append(c.gw, time.Duration(ms)*time.Millisecond)
	}
	for _, c := range b.configs {
		if len(c.gw) == 0 {
			logf("warning: no request log line for the PUTs of %s in %s: the gateway's time is not reported", c.Name, path)
		}
	}
	return nil
}

// maxOf and medianOf summarise KiB or count samples.
func maxOf(v []int64) int64 {
	var m int64
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func medianOf(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	c := slices.Clone(v)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// readPSI returns the "some" total of /proc/pressure/cpu: microseconds in
// which at least one runnable task waited for a CPU; -1 if unavailable.
func readPSI() int64 {
	data, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// measureFaultCost times the first touch of fresh anonymous pages: what a
// new process pays for every page of memory it uses. Median of 5 rounds of
// 64 MiB, in microseconds per page.
func measureFaultCost() float64 {
	const size = 64 << 20
	page := os.Getpagesize()
	var costs []float64
	for range 5 {
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return 0
		}
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		t0 := time.Now()
		for i := 0; i < size; i += page {
			mem[i] = 1
		}
		d := time.Since(t0)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		syscall.Munmap(mem)
		if n := ru1.Minflt - ru0.Minflt; n > 0 {
			costs = append(costs, float64(d.Nanoseconds())/1000/float64(n))
		}
	}
	if len(costs) == 0 {
		return 0
	}
	slices.Sort(costs)
	return costs[len(costs)/2]
}
