package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// The peer section measures walgate and pgBackRest (Debian's package) side
// by side in the same run, on the same PostgreSQL cluster, the same
// segments and the same disk: pgBackRest's posix repository and the
// gateway's fs store both live in the scratch directory.

const (
	peerBegin = "<!-- peer: begin -->"
	peerEnd   = "<!-- peer: end -->"
	// peerSegPushes is how many distinct real segments each tool pushes
	// one at a time (the median is reported).
	peerSegPushes = 30
	// peerArchiveProcs is pgBackRest's process-max for archiving: as many
	// pushes at once as walgate-client's lookahead runs beside the
	// segment PostgreSQL asked for (WALGATE_LOOKAHEAD, default 8).
	peerArchiveProcs = 8
	// peerBackupProcs and peerRestoreProcs match walgate-client's
	// WALGATE_UPLOAD_CONCURRENCY and WALGATE_DOWNLOAD_CONCURRENCY defaults.
	peerBackupProcs  = 2
	peerRestoreProcs = 4
	// peerDrainRounds is how many times each tool drains the segments:
	// one drain cannot tell 10% apart on a busy 2-CPU machine.
	peerDrainRounds = 3
)

type peerFigures struct {
	scale     int
	drainSegs int
	version   string
	dataBytes int64

	pushWalgate, pushPBR samples // one exec per distinct segment
	rssWalgate, rssPBR   []int64 // KiB, VmHWM at exit

	drains []peerDrain
	// encodeCPU is the CPU time (user + system) this process took to
	// compress and encrypt the drained segments with walgate's codec, one
	// at a time: no drain through walgate-client can spend less.
	encodeCPU time.Duration

	fullWalgate, fullPBR       samples
	incrWalgate, incrPBR       samples
	restoreWalgate, restorePBR samples
	changedPct                 float64 // pages the load between full and incremental changed
	elapsed                    time.Duration
}

// peerDrain is PostgreSQL's own archiver emptying the same .ready
// segments through one archive_command.
type peerDrain struct {
	name    string
	command string
	segs    int
	wall    time.Duration // of one run; in peerFigures, the median run
	runs    samples       // in peerFigures: every run, in order
	failed  int64         // pg_stat_archiver.failed_count growth
}

func (d peerDrain) mibs() float64 { return float64(d.segs) * 16 / d.wall.Seconds() }

// pgbackrest is one pgBackRest configuration: a config file, a repository
// and the OS user that runs it (the repository must stay that user's).
type pgbackrest struct {
	conf string
	user string // "" for this process's user
}

func (p pgbackrest) cmd(args ...string) (string, []string) {
	full := append([]string{"--config=" + p.conf, "--stanza=bench"}, args...)
	if p.user == "" {
		return "/usr/bin/pgbackrest", full
	}
	return "/usr/sbin/runuser", append([]string{"-u", p.user, "--", "/usr/bin/pgbackrest"}, full...)
}

// run runs pgbackrest untimed.
func (p pgbackrest) run(ctx context.Context, args ...string) error {
	path, argv := p.cmd(args...)
	out, err := exec.CommandContext(ctx, path, argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbackrest %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newPGBackRest writes a configuration for the cluster with its repository,
// lock and spool directories under dir, owned by user.
func newPGBackRest(dir, user string, c *pgtest.Cluster, cipherPass string, processMax int, async bool) (pgbackrest, error) {
	for _, d := range []string{"repo", "lock", "spool", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return pgbackrest{}, err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[global]\nrepo1-path=%s\nrepo1-retention-full=9999\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=%s\n",
		filepath.Join(dir, "repo"), cipherPass)
	fmt.Fprintf(&b, "compress-type=zst\nprocess-max=%d\nlog-level-console=warn\nlog-level-file=off\nlock-path=%s\nspool-path=%s\nlog-path=%s\n",
		processMax, filepath.Join(dir, "lock"), filepath.Join(dir, "spool"), filepath.Join(dir, "log"))
	// The cluster archives with /bin/true while backups are measured, as
	// walgate's backups are; pgBackRest would otherwise refuse.
	b.WriteString("start-fast=y\narchive-check=n\n")
	if async {
		b.WriteString("archive-async=y\n")
	}
	fmt.Fprintf(&b, "\n[bench]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\npg1-user=postgres\n", c.DataDir, c.Port, c.Dir)
	conf := filepath.Join(dir, "pgbackrest.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o640); err != nil {
		return pgbackrest{}, err
	}
	if user != "" {
		if out, err := exec.Command("chown", "-R", user, dir).CombinedOutput(); err != nil {
			return pgbackrest{}, fmt.Errorf("chown %s: %v: %s", dir, err, out)
		}
	}
	return pgbackrest{conf: conf, user: user}, nil
}

// measurePeer runs the peer section.
func (b *bench) measurePeer(ctx context.Context, cl *cleanups) error {
	if _, err := os.Stat("/usr/bin/pgbackrest"); err != nil {
		return errors.New("pgbackrest is missing: run 'STEPS=pgbackrest .ci/install-deps.sh' (make bench does)")
	}
	t0 := time.Now()
	pf := &peerFigures{scale: b.opts.backupScale, drainSegs: b.opts.drainSegs}
	b.peer = pf
	if pf.scale <= 0 {
		pf.scale = 50
	}
	if out, err := exec.Command("/usr/bin/pgbackrest", "version").Output(); err == nil {
		pf.version = strings.TrimSpace(string(out))
	}

	logf("peer: creating a PostgreSQL 15 cluster, pgbench -i -s %d", pf.scale)
	c, err := backupCluster(ctx, cl)
	if err != nil {
		return err
	}
	if _, err := c.Pgbench(ctx, "-i", "-q", "-s", strconv.Itoa(pf.scale)); err != nil {
		return err
	}
	if err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	if ts, err := sizeOfTree(c.DataDir); err == nil {
		pf.dataBytes = ts.bytes
	}

	g, err := startGateway(ctx, b.gatewayBin, filepath.Join(b.scratch, "peer-gateway"), filepath.Join(b.scratch, "peer-gateway.log"))
	if err != nil {
		return err
	}
	cl.add(g.stop)
	keyHex, key, err := newBenchKey()
	if err != nil {
		return err
	}
	walgateEnv := func(cluster string) ([]string, error) {
		tok, err := g.addToken(ctx, cluster)
		if err != nil {
			return nil, err
		}
		return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + b.scratch, "WALGATE_URL=" + g.url, "WALGATE_TOKEN=" + tok,
			"WALGATE_COMPRESSION=zstd", "WALGATE_ENCRYPTION_KEY=" + keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex",
			"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(c.Port), "PGUSER=postgres", "PGDATABASE=postgres", "PGSSLMODE=disable"}, nil
	}
	var pass [24]byte
	rand.Read(pass[:])
	cipherPass := hex.EncodeToString(pass[:])

	// Segments to drain: PostgreSQL keeps .ready segments until they are
	// archived, so with archiving switched off the load below leaves
	// drainSegs of them in pg_wal, real WAL of this cluster.
	if err := setArchiveCommand(ctx, c, ""); err != nil {
		return err
	}
	logf("peer: writing %d segments of WAL with archiving off (UPDATEs of pgbench_accounts)", pf.drainSegs)
	ready, err := makeReadySegments(ctx, c, pf.drainSegs)
	if err != nil {
		return err
	}

	// One push at a time, each of a distinct segment, both tools as root
	// from the spawn helper (timed as the WAL section times its pushes).
	segDir := filepath.Join(b.scratch, "peer-segments")
	if err := os.MkdirAll(segDir, 0o755); err != nil {
		return err
	}
	n := min(peerSegPushes, len(ready))
	for _, name := range ready[:n] {
		if err := copyFile(filepath.Join(c.DataDir, "pg_wal", name), filepath.Join(segDir, name)); err != nil {
			return err
		}
	}
	wenv, err := walgateEnv("peer-push")
	if err != nil {
		return err
	}
	pbrRoot, err := newPGBackRest(filepath.Join(b.scratch, "peer-pgbackrest-push"), "", c, cipherPass, peerBackupProcs, false)
	if err != nil {
		return err
	}
	if err := pbrRoot.run(ctx, "stanza-create"); err != nil {
		return err
	}
	logf("peer: %d single pushes each: walgate-client wal-push and pgbackrest archive-push, alternating", n)
	for i, name := range ready[:n] {
		seg := filepath.Join(segDir, name)
		pushW := func() error {
			r, err := b.execClient(ctx, wenv, "wal-push", seg)
			if err != nil {
				return err
			}
			pf.pushWalgate, pf.rssWalgate = append(pf.pushWalgate, r.wall), append(pf.rssWalgate, r.maxRSS)
			return nil
		}
		pushP := func() error {
			path, argv := pbrRoot.cmd("archive-push", seg)
			r, err := b.sp.run(ctx, path, []string{"PATH=/usr/bin:/bin"}, argv...)
			if err != nil {
				return err
			}
			pf.pushPBR, pf.rssPBR = append(pf.pushPBR, r.wall), append(pf.rssPBR, r.maxRSS)
			return nil
		}
		first, second := pushW, pushP
		if i%2 == 1 {
			first, second = pushP, pushW
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}

	// PostgreSQL's archiver drains the same .ready segments through each
	// tool, peerDrainRounds times, the tools in a rotated order each round
	// and each run into a fresh archive (a tool finding a segment already
	// archived would skip its work).
	shared, err := pgtest.MakeSharedDir()
	if err != nil {
		return err
	}
	cl.add(func() { os.RemoveAll(shared) })
	client, err := c.InstallExecutable(b.clientBin)
	if err != nil {
		return err
	}
	roundDrains := func(round int) ([]peerDrain, error) {
		denv, err := walgateEnv(fmt.Sprintf("peer-drain-%d", round))
		if err != nil {
			return nil, err
		}
		var assigns []string
		for _, kv := range denv {
			if strings.HasPrefix(kv, "WALGATE_") {
				assigns = append(assigns, kv)
			}
		}
		pbrAsync, err := newPGBackRest(filepath.Join(shared, fmt.Sprintf("pgbackrest-async-%d", round)), "postgres", c, cipherPass, peerArchiveProcs, true)
		if err != nil {
			return nil, err
		}
		pbrSync, err := newPGBackRest(filepath.Join(shared, fmt.Sprintf("pgbackrest-sync-%d", round)), "postgres", c, cipherPass, peerArchiveProcs, false)
		if err != nil {
			return nil, err
		}
		for _, p := range []pgbackrest{pbrAsync, pbrSync} {
			if err := p.run(ctx, "stanza-create"); err != nil {
				return nil, err
			}
		}
		cpDir := filepath.Join(shared, fmt.Sprintf("cp-%d", round))
		if err := os.Mkdir(cpDir, 0o755); err != nil {
			return nil, err
		}
		if out, err := exec.Command("chown", "postgres", cpDir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown %s: %v: %s", cpDir, err, out)
		}
		return []peerDrain{
			{name: "walgate-client wal-push (lookahead 8)", command: strings.Join(assigns, " ") + " " + client + " wal-push %p"},
			{name: fmt.Sprintf("pgbackrest archive-push, asynchronous (process-max %d, spool)", peerArchiveProcs),
				command: "pgbackrest --config=" + pbrAsync.conf + " --stanza=bench archive-push %p"},
			{name: "pgbackrest archive-push, synchronous", command: "pgbackrest --config=" + pbrSync.conf + " --stanza=bench archive-push %p"},
			{name: "cp %p DIR/%f (no fsync: the floor)", command: "cp %p " + cpDir + "/%f"},
		}, nil
	}
	for round := range peerDrainRounds {
		drains, err := roundDrains(round)
		if err != nil {
			return err
		}
		if pf.drains == nil {
			for _, d := range drains {
				pf.drains = append(pf.drains, peerDrain{name: d.name})
			}
		}
		for k := range drains {
			i := (k + round) % len(drains)
			d := &drains[i]
			logf("peer: round %d of %d: PostgreSQL's archiver drains %d segments through %s", round+1, peerDrainRounds, len(ready), d.name)
			if err := drainReady(ctx, c, d, ready); err != nil {
				return fmt.Errorf("drain through %s: %w", d.name, err)
			}
			logf("peer:   %.1f s, %.0f MiB/s", d.wall.Seconds(), d.mibs())
			pd := &pf.drains[i]
			pd.runs = append(pd.runs, d.wall)
			pd.failed += d.failed
			pd.segs = d.segs
		}
	}
	for i := range pf.drains {
		pf.drains[i].wall = pf.drains[i].runs.median()
	}
	logf("peer: encoding the %d segments in this process, one at a time (the drain's CPU floor)", len(ready))
	if pf.encodeCPU, err = encodeCPU(filepath.Join(c.DataDir, "pg_wal"), ready, key); err != nil {
		return err
	}
	if err := setArchiveCommand(ctx, c, "/bin/true"); err != nil {
		return err
	}

	// Base backups: full, then incremental after a load, then restores of
	// the full, each tool in turn, as root.
	benv, err := walgateEnv("peer-backup")
	if err != nil {
		return err
	}
	pbrBackup, err := newPGBackRest(filepath.Join(b.scratch, "peer-pgbackrest-backup"), "", c, cipherPass, peerBackupProcs, false)
	if err != nil {
		return err
	}
	if err := pbrBackup.run(ctx, "stanza-create"); err != nil {
		return err
	}
	timedPBR := func(args ...string) (time.Duration, error) {
		syscall.Sync()
		path, argv := pbrBackup.cmd(args...)
		r, err := b.sp.run(ctx, path, []string{"PATH=/usr/bin:/bin"}, argv...)
		return r.wall, err
	}
	timedWalgate := func(args ...string) (time.Duration, error) {
		syscall.Sync()
		r, err := b.execClient(ctx, benv, args...)
		return r.wall, err
	}
	runs := max(1, b.opts.backupRuns)
	logf("peer: %d full backups each", runs)
	for i := range runs {
		var w, p time.Duration
		var err error
		if i%2 == 0 {
			if w, err = timedWalgate("backup-push", "--full", c.DataDir); err == nil {
				p, err = timedPBR("backup", "--type=full")
			}
		} else {
			if p, err = timedPBR("backup", "--type=full"); err == nil {
				w, err = timedWalgate("backup-push", "--full", c.DataDir)
			}
		}
		if err != nil {
			return err
		}
		pf.fullWalgate, pf.fullPBR = append(pf.fullWalgate, w), append(pf.fullPBR, p)
	}
	fullSum, err := latestBackup(ctx, benv)
	if err != nil {
		return err
	}
	logf("peer: a load that changes part of the pages, then %d incremental backups each", runs)
	for i := range runs {
		pct, err := changePages(ctx, c, pf.scale, i)
		if err != nil {
			return err
		}
		pf.changedPct = pct
		w, err := timedWalgate("backup-push", "--delta", c.DataDir)
		if err != nil {
			return err
		}
		p, err := timedPBR("backup", "--type=incr")
		if err != nil {
			return err
		}
		pf.incrWalgate, pf.incrPBR = append(pf.incrWalgate, w), append(pf.incrPBR, p)
	}
	logf("peer: %d restores of the full backup each", runs)
	out := filepath.Join(b.scratch, "peer-restore")
	for range runs {
		os.RemoveAll(out)
		w, err := timedWalgate("backup-fetch", out, fullSum.Name)
		if err != nil {
			return err
		}
		os.RemoveAll(out)
		if err := os.Mkdir(out, 0o700); err != nil { // pgBackRest restores into an existing, empty directory
			return err
		}
		p, err := timedPBR("restore", "--set="+pgBackRestFullLabel(pbrBackup), "--pg1-path="+out,
			fmt.Sprintf("--process-max=%d", peerRestoreProcs), "--type=immediate", "--archive-mode=off")
		if err != nil {
			return err
		}
		pf.restoreWalgate, pf.restorePBR = append(pf.restoreWalgate, w), append(pf.restorePBR, p)
	}
	os.RemoveAll(out)
	g.stop()
	pf.elapsed = time.Since(t0)
	return nil
}

// pgBackRestFullLabel is the label of the newest full backup in the
// repository (its directory name: YYYYMMDD-HHMMSSF).
func pgBackRestFullLabel(p pgbackrest) string {
	conf, _ := os.ReadFile(p.conf)
	for _, line := range strings.Split(string(conf), "\n") {
		if repo, ok := strings.CutPrefix(line, "repo1-path="); ok {
			ents, _ := os.ReadDir(filepath.Join(repo, "backup", "bench"))
			var full []string
			for _, e := range ents {
				if e.IsDir() && strings.HasSuffix(e.Name(), "F") {
					full = append(full, e.Name())
				}
			}
			slices.Sort(full)
			if len(full) > 0 {
				return full[len(full)-1]
			}
		}
	}
	return "latest"
}

// setArchiveCommand sets archive_command and reloads.
func setArchiveCommand(ctx context.Context, c *pgtest.Cluster, cmd string) error {
	if err := c.Exec(ctx, "ALTER SYSTEM SET archive_command = '"+strings.ReplaceAll(cmd, "'", "''")+"'"); err != nil {
		return err
	}
	return c.Exec(ctx, "SELECT pg_reload_conf()")
}

// makeReadySegments writes WAL until n more segments are complete and
// waiting (.ready), and returns their names in order.
func makeReadySegments(ctx context.Context, c *pgtest.Cluster, n int) ([]string, error) {
	start, err := c.QueryString(ctx, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	if err != nil {
		return nil, err
	}
	rows, err := c.QueryString(ctx, "SELECT count(*) FROM pgbench_accounts")
	if err != nil {
		return nil, err
	}
	total, _ := strconv.Atoi(rows)
	const chunk = 500_000
	for lo := 1; ; lo += chunk {
		if lo > total {
			lo = 1
		}
		ready, err := readySegments(c)
		if err != nil {
			return nil, err
		}
		var after []string
		for _, r := range ready {
			if r > start {
				after = append(after, r)
			}
		}
		if len(after) >= n {
			return after[:n], nil
		}
		if err := c.Exec(ctx, fmt.Sprintf("UPDATE pgbench_accounts SET abalance = abalance + 1, filler = md5(random()::text) WHERE aid BETWEEN %d AND %d", lo, lo+chunk-1)); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// readySegments lists the segments PostgreSQL marked ready, sorted.
func readySegments(c *pgtest.Cluster) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(c.DataDir, "pg_wal", "archive_status"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".ready"); ok && len(name) == 24 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// drainReady marks segs ready again (a previous drain marked them done),
// points archive_command at d.command and times until PostgreSQL has
// archived every one of them.
func drainReady(ctx context.Context, c *pgtest.Cluster, d *peerDrain, segs []string) error {
	status := filepath.Join(c.DataDir, "pg_wal", "archive_status")
	for _, s := range segs {
		done := filepath.Join(status, s+".done")
		if _, err := os.Stat(done); err == nil {
			if err := os.Rename(done, filepath.Join(status, s+".ready")); err != nil {
				return err
			}
		}
	}
	failed0, err := c.QueryString(ctx, "SELECT failed_count FROM pg_stat_archiver")
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := setArchiveCommand(ctx, c, d.command); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Minute)
	for {
		left := 0
		for _, s := range segs {
			if _, err := os.Stat(filepath.Join(status, s+".ready")); err == nil {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d segments still not archived after 15 minutes:\n%s", left, len(segs), c.LogTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.wall, d.segs = time.Since(t0), len(segs)
	if err := setArchiveCommand(ctx, c, ""); err != nil {
		return err
	}
	failed1, err := c.QueryString(ctx, "SELECT failed_count FROM pg_stat_archiver")
	if err != nil {
		return err
	}
	f0, _ := strconv.ParseInt(failed0, 10, 64)
	f1, _ := strconv.ParseInt(failed1, 10, 64)
	d.failed = f1 - f0
	return nil
}

// changePages updates 15% of pgbench_accounts' rows, a contiguous range of
// aid (so about 15% of its pages; a different range each round), and
// checkpoints; it returns that share in percent.
func changePages(ctx context.Context, c *pgtest.Cluster, scale, round int) (float64, error) {
	rows := scale * 100_000
	n := rows * 15 / 100
	lo := 1 + (round*n)%max(1, rows-n)
	if err := c.Exec(ctx, fmt.Sprintf("UPDATE pgbench_accounts SET abalance = abalance - 1 WHERE aid BETWEEN %d AND %d", lo, lo+n-1)); err != nil {
		return 0, err
	}
	if err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, err
	}
	return 15, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (pf *peerFigures) markdown() string {
	var w strings.Builder
	w.WriteString(peerBegin + "\n## Side by side with pgBackRest, same run\n\n")
	fmt.Fprintf(&w, "Command: `go run ./cmd/walgate-bench -sections peer -out docs/benchmarks.md` (part of `make bench`). %s from Debian's package, a posix repository in the same scratch directory as the gateway's fs store, `compress-type=zst` (level 3, its default) and `repo1-cipher-type=aes-256-cbc`; walgate with zstd (level 3) and encryption, through one gateway on its defaults. One PostgreSQL 15 cluster, `pgbench -i -s %d` (data directory %.0f MiB). Ratios are walgate / pgBackRest: below 1 walgate is faster.\n\n",
		pf.version, pf.scale, mib(pf.dataBytes))
	rows := [][]string{{"measure", "walgate", "pgBackRest", "walgate / pgBackRest"}}
	rows = append(rows, []string{fmt.Sprintf("one push of a real 16 MiB segment (exec'd, median of %d distinct segments; pgBackRest `archive-push`, synchronous)", len(pf.pushWalgate)),
		fmtSec(pf.pushWalgate.median()), fmtSec(pf.pushPBR.median()), ratio(pf.pushWalgate.median(), pf.pushPBR.median())})
	rows = append(rows, []string{"the same, 90th percentile", fmtSec(pf.pushWalgate.pct(90)), fmtSec(pf.pushPBR.pct(90)), ratio(pf.pushWalgate.pct(90), pf.pushPBR.pct(90))})
	rows = append(rows, []string{"peak RSS of one push (median, VmHWM at exit)", fmtKiB(medianOf(pf.rssWalgate)), fmtKiB(medianOf(pf.rssPBR)), fmt.Sprintf("%.2f", float64(medianOf(pf.rssWalgate))/float64(max(1, medianOf(pf.rssPBR))))})
	var wd, pa, ps, cp peerDrain
	for _, d := range pf.drains {
		switch {
		case strings.HasPrefix(d.name, "walgate"):
			wd = d
		case strings.Contains(d.name, "asynchronous"):
			pa = d
		case strings.Contains(d.name, "synchronous"):
			ps = d
		default:
			cp = d
		}
	}
	if wd.segs > 0 {
		rows = append(rows, []string{fmt.Sprintf("PostgreSQL's archiver draining %d `.ready` segments (median of %d runs; every run), against pgBackRest asynchronous", wd.segs, len(wd.runs)),
			drainText(wd), drainText(pa), ratio(wd.wall, pa.wall)})
		rows = append(rows, []string{"the same, against pgBackRest synchronous",
			"", drainText(ps), ratio(wd.wall, ps.wall)})
	}
	rows = append(rows, []string{fmt.Sprintf("full backup (median of %d)", len(pf.fullWalgate)), fmtSec(pf.fullWalgate.median()), fmtSec(pf.fullPBR.median()), ratio(pf.fullWalgate.median(), pf.fullPBR.median())})
	rows = append(rows, []string{fmt.Sprintf("incremental after updating %.0f%% of pgbench_accounts' rows (walgate `--delta`, pgBackRest `--type=incr`)", pf.changedPct),
		fmtSec(pf.incrWalgate.median()), fmtSec(pf.incrPBR.median()), ratio(pf.incrWalgate.median(), pf.incrPBR.median())})
	rows = append(rows, []string{"restore of the full backup (walgate `backup-fetch`, pgBackRest `restore`)", fmtSec(pf.restoreWalgate.median()), fmtSec(pf.restorePBR.median()), ratio(pf.restoreWalgate.median(), pf.restorePBR.median())})
	mdTable(&w, rows)
	w.WriteString("\n")
	targets := [][]string{{"target (same-run ratios)", "figure", "result"}}
	pushRatio := pf.pushWalgate.median().Seconds() / max(1e-9, pf.pushPBR.median().Seconds())
	targets = append(targets, []string{"one exec'd wal-push at most 0.6x pgBackRest's synchronous archive-push (median)", againstTarget(pushRatio, 0.6) + "x", passFail(pushRatio <= 0.6)})
	if wd.segs > 0 {
		targets = append(targets, []string{"PostgreSQL's archiver through walgate-client at least 250 MiB/s", fmt.Sprintf("%.0f MiB/s", wd.mibs()), passFail(wd.mibs() >= 250)})
		rate := wd.mibs() / max(1e-9, pa.mibs())
		targets = append(targets, []string{"... and at least 1.5x pgBackRest's asynchronous archiving", againstTarget(rate, 1.5) + "x the rate", passFail(rate >= 1.5)})
	}
	fr := pf.fullPBR.median().Seconds() / max(1e-9, pf.fullWalgate.median().Seconds())
	rr := pf.restorePBR.median().Seconds() / max(1e-9, pf.restoreWalgate.median().Seconds())
	targets = append(targets, []string{"backup-push at least 2x as fast as pgBackRest's full backup", againstTarget(fr, 2) + "x", passFail(fr >= 2)})
	targets = append(targets, []string{"backup-fetch at least 2x as fast as pgBackRest's restore", againstTarget(rr, 2) + "x", passFail(rr >= 2)})
	mdTable(&w, targets)
	w.WriteString("\n")
	if cp.segs > 0 {
		fmt.Fprintf(&w, "The floor of the drain: `archive_command = 'cp %%p DIR/%%f'` (no compression, no encryption, no fsync) took %s. ", drainText(cp))
	}
	if wd.segs > 0 && pf.encodeCPU > 0 {
		cpus := runtime.NumCPU()
		floor := pf.encodeCPU / time.Duration(cpus)
		fmt.Fprintf(&w, "Its CPU floor: compressing (zstd, walgate's default level) and encrypting the same %d segments in one process, one after the other and nothing else, took %.1f s of CPU, %.0f ms per segment; spread perfectly over the %d CPUs that is %.1f s, %.0f MiB/s, before content IDs, uploads, process starts and PostgreSQL's own work. The walgate drain took %.2fx that. ",
			wd.segs, pf.encodeCPU.Seconds(), pf.encodeCPU.Seconds()*1000/float64(wd.segs), cpus, floor.Seconds(), float64(wd.segs)*16/floor.Seconds(), wd.wall.Seconds()/floor.Seconds())
	}
	for _, d := range pf.drains {
		if d.failed > 0 {
			fmt.Fprintf(&w, "%s: %d failed archive_command calls during the drain. ", d.name, d.failed)
		}
	}
	fmt.Fprintf(&w, "\n\n**Method.** Single pushes: both tools exec'd as root from the spawn helper, alternating which goes first, each on a distinct real segment of the cluster (copied out of pg_wal). The drain: with archiving switched off, UPDATEs of pgbench_accounts leave %d segments `.ready` in pg_wal; then `archive_command` is pointed at one tool, PostgreSQL's archiver is reloaded and the clock runs until no `.ready` of those segments is left; the segments are marked `.ready` again for the next tool (no checkpoint runs in between, so they stay in pg_wal). Every tool drains them %d times, in rounds that rotate the order of the tools, each run into a fresh archive (a new walgate cluster, a new pgBackRest repository); the figures are the median runs. pgBackRest archives as the postgres user into a repository of its own per configuration, with `process-max=%d` (walgate-client pushes the segment it is given, and a background process it starts keeps up to 8 ready ones pushed ahead of the archiver, up to 8 at once, compressing one per CPU at a time). Backups and restores: both as root, `syncfs` before each, pgBackRest with `process-max=%d` for backups (walgate's WALGATE_UPLOAD_CONCURRENCY default) and %d for restores (WALGATE_DOWNLOAD_CONCURRENCY), `start-fast=y` and `archive-check=n` (the cluster archives with /bin/true while backups are measured, for both tools). Every tool's restore includes its own flushing: walgate-client fsyncs the restored files, pgBackRest syncs each file it writes. The section took %s.\n",
		pf.drainSegs, peerDrainRounds, peerArchiveProcs, peerBackupProcs, peerRestoreProcs, pf.elapsed.Round(time.Second))
	w.WriteString(peerEnd + "\n")
	return w.String()
}

// drainText is a drain's median run and rate, then every run.
func drainText(d peerDrain) string {
	var runs []string
	for _, r := range d.runs {
		runs = append(runs, fmt.Sprintf("%.1f", r.Seconds()))
	}
	return fmt.Sprintf("%.1f s, %.0f MiB/s (runs: %s s)", d.wall.Seconds(), d.mibs(), strings.Join(runs, ", "))
}

// encodeCPU compresses and encrypts each named segment in walDir with
// walgate's codec (zstd at the default level, the given key) into nothing,
// one after the other, and returns the CPU time this process spent on it.
func encodeCPU(walDir string, names []string, key *codec.Key) (time.Duration, error) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	buf := make([]byte, 256<<10)
	t0 := cpu()
	for _, n := range names {
		f, err := os.Open(filepath.Join(walDir, n))
		if err != nil {
			return 0, err
		}
		enc, err := codec.NewSegmentWriter(io.Discard, codec.Zstd, key, codec.LevelDefault)
		if err == nil {
			_, err = io.CopyBuffer(enc, f, buf)
			if cerr := enc.Close(); err == nil {
				err = cerr
			}
		}
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", n, err)
		}
	}
	return cpu() - t0, nil
}
