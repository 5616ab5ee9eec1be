package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// The recovery section measures archive recovery: the same base backup
// and the same archived segments replayed by PostgreSQL through
// restore_command = 'cp ARCHIVE/%f %p' (the floor: a local copy, nothing
// to verify) and through walgate-client wal-fetch with its defaults
// (prefetch on), alternating. Both run with fsync on, as production
// servers do. The CPU time of restore_command's processes (wal-fetch and
// the wal-prefetch processes it starts, or cp) is added up in a cgroup
// they join, where the machine has a cgroup v1 cpuacct hierarchy.

const (
	recoveryBegin = "<!-- recovery: begin -->"
	recoveryEnd   = "<!-- recovery: end -->"
	// recoveryTarget is the bound: recovery through walgate at
	// most this many times the cp recovery.
	recoveryTarget = 1.05
)

type recoveryFigures struct {
	segs, scale, runs  int
	walgate, cp        samples // from pg_ctl start to the end of recovery
	walgateCPU, cpCPU  samples // user + system time of restore_command's processes, per recovery
	cpuNote            string  // why the CPU time was not measured, when it was not
	walBytes           int64   // WAL replayed: end LSN minus the backup's start LSN
	loadStart, loadEnd string
	elapsed            time.Duration
}

func (b *bench) measureRecovery(ctx context.Context, cl *cleanups) error {
	t0 := time.Now()
	rf := &recoveryFigures{segs: b.opts.recoverySegs, scale: 10, runs: max(1, b.opts.recoveryRuns)}
	b.recovery = rf

	shared, err := pgtest.MakeSharedDir()
	if err != nil {
		return err
	}
	cl.add(func() { os.RemoveAll(shared) })
	archive := filepath.Join(shared, "archive")
	if err := os.Mkdir(archive, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("chown", "postgres", archive).CombinedOutput(); err != nil {
		return fmt.Errorf("chown %s: %v: %s", archive, err, out)
	}

	logf("recovery: creating a PostgreSQL 15 cluster, pgbench -i -s %d", rf.scale)
	c, err := backupCluster(ctx, cl)
	if err != nil {
		return err
	}
	g, err := startGateway(ctx, b.gatewayBin, filepath.Join(b.scratch, "recovery-gateway"), filepath.Join(b.scratch, "recovery-gateway.log"))
	if err != nil {
		return err
	}
	cl.add(g.stop)
	tok, err := g.addToken(ctx, "recovery")
	if err != nil {
		return err
	}
	keyHex, _, err := newBenchKey()
	if err != nil {
		return err
	}
	settings := []string{"WALGATE_URL=" + g.url, "WALGATE_TOKEN=" + tok, "WALGATE_COMPRESSION=zstd",
		"WALGATE_ENCRYPTION_KEY=" + keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex"}
	env := append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + b.scratch,
		"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(c.Port), "PGUSER=postgres", "PGDATABASE=postgres", "PGSSLMODE=disable"}, settings...)
	client, err := c.InstallExecutable(b.clientBin)
	if err != nil {
		return err
	}
	// Every segment goes to both archives: the local copy the cp
	// recovery reads, and the gateway.
	if err := setArchiveCommand(ctx, c, "cp %p "+archive+"/%f && "+strings.Join(settings, " ")+" "+client+" wal-push %p"); err != nil {
		return err
	}
	if _, err := c.Pgbench(ctx, "-i", "-q", "-s", strconv.Itoa(rf.scale)); err != nil {
		return err
	}
	if r, err := b.execClient(ctx, env, "backup-push", "--full", c.DataDir); err != nil {
		return fmt.Errorf("backup-push: %w (%s)", err, r.output)
	}
	startLSN, err := c.QueryString(ctx, "SELECT pg_current_wal_lsn()")
	if err != nil {
		return err
	}
	logf("recovery: writing %d segments of WAL (UPDATEs of pgbench_accounts), archived to a directory and to the gateway", rf.segs)
	endLSN, err := writeWAL(ctx, c, startLSN, rf.segs)
	if err != nil {
		return err
	}
	if err := waitAllArchived(ctx, c); err != nil {
		return err
	}
	if n, err := c.QueryString(ctx, "SELECT pg_wal_lsn_diff($1, $2)::bigint", endLSN, startLSN); err == nil {
		rf.walBytes, _ = strconv.ParseInt(n, 10, 64)
	}
	if err := c.Stop(ctx); err != nil {
		return err
	}

	base := filepath.Join(b.scratch, "recovery-base")
	if r, err := b.execClient(ctx, env, "backup-fetch", base, "LATEST"); err != nil {
		return fmt.Errorf("backup-fetch: %w (%s)", err, r.output)
	}
	cl.add(func() { os.RemoveAll(base) })

	commands := map[string]string{
		"cp":      "cp " + archive + "/%f %p",
		"walgate": strings.Join(settings, " ") + " " + client + " wal-fetch %f %p",
	}
	rf.loadStart = readLoadavg()
	logf("recovery: %d recoveries each, cp and walgate-client wal-fetch alternating", rf.runs)
	for i := range rf.runs {
		order := []string{"cp", "walgate"}
		if i%2 == 1 {
			order = []string{"walgate", "cp"}
		}
		for _, how := range order {
			group, err := newCPUGroup(fmt.Sprintf("walgate-bench-recovery-%d-%s-%d", os.Getpid(), how, i))
			command := commands[how]
			if err != nil {
				rf.cpuNote = err.Error()
			} else {
				command = group.join(command)
			}
			d, err := timedRecovery(ctx, base, command, endLSN)
			var cpu time.Duration
			if group != nil {
				// The prefetch processes restore_command started may
				// still run (past the end of the archive): count them.
				var gerr error
				cpu, gerr = group.finish(ctx, 2*time.Minute)
				if err == nil && gerr != nil {
					err = gerr
				}
			}
			if err != nil {
				return fmt.Errorf("recovery through %s: %w", how, err)
			}
			logf("recovery:   %s %.1f s, restore_command CPU %.1f s", how, d.Seconds(), cpu.Seconds())
			if how == "cp" {
				rf.cp = append(rf.cp, d)
				if group != nil {
					rf.cpCPU = append(rf.cpCPU, cpu)
				}
			} else {
				rf.walgate = append(rf.walgate, d)
				if group != nil {
					rf.walgateCPU = append(rf.walgateCPU, cpu)
				}
			}
		}
	}
	rf.loadEnd = readLoadavg()
	rf.elapsed = time.Since(t0)
	return nil
}

// writeWAL updates pgbench_accounts until at least segs segments of WAL
// follow from, then switches to a new segment; it returns the LSN of the
// switch (the end of the WAL to replay).
func writeWAL(ctx context.Context, c *pgtest.Cluster, from string, segs int) (string, error) {
	rows, err := c.QueryString(ctx, "SELECT count(*) FROM pgbench_accounts")
	if err != nil {
		return "", err
	}
	total, _ := strconv.Atoi(rows)
	const chunk = 100_000
	for lo := 1; ; lo += chunk {
		if lo > total {
			lo = 1
		}
		n, err := c.QueryString(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint", from)
		if err != nil {
			return "", err
		}
		if written, _ := strconv.ParseInt(n, 10, 64); written >= int64(segs)<<24 {
			break
		}
		if err := c.Exec(ctx, fmt.Sprintf("UPDATE pgbench_accounts SET abalance = abalance + 1, filler = md5(random()::text) WHERE aid BETWEEN %d AND %d", lo, lo+chunk-1)); err != nil {
			return "", err
		}
	}
	return c.QueryString(ctx, "SELECT pg_switch_wal()")
}

// waitAllArchived waits until the archiver has no .ready segment left.
func waitAllArchived(ctx context.Context, c *pgtest.Cluster) error {
	deadline := time.Now().Add(20 * time.Minute)
	for {
		ready, err := readySegments(c)
		if err != nil {
			return err
		}
		if len(ready) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d segments still not archived (first %s): see the server log", len(ready), ready[0])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// timedRecovery makes a cluster from the plain base backup in base and
// times it from pg_ctl start to the end of archive recovery (promoted at
// the end of the archive), then checks that it replayed up to endLSN.
func timedRecovery(ctx context.Context, base, restoreCommand, endLSN string) (time.Duration, error) {
	// fsync on, as in production (the harness's default is off): the
	// server's own flushes during recovery count for both commands.
	rc, err := pgtest.CreateFromBackup(ctx, base, "", pgtest.Recovery{RestoreCommand: restoreCommand}, pgtest.Options{NoStart: true, Fsync: true})
	if err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rc.Stop(sctx); err != nil {
			rc.Kill(sctx)
		}
		rc.Remove()
	}()
	syscall.Sync()
	t0 := time.Now()
	if err := rc.Start(ctx); err != nil {
		return 0, err
	}
	outcome, err := rc.WaitRecoveryEnd(ctx)
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if outcome != pgtest.RecoveryPromoted {
		return 0, fmt.Errorf("recovery ended %s, not promoted", outcome)
	}
	past, err := rc.QueryString(ctx, "SELECT (pg_current_wal_lsn() >= $1::pg_lsn)::text", endLSN)
	if err != nil {
		return 0, err
	}
	if past != "true" {
		return 0, fmt.Errorf("recovery ended before %s, the end of the archived WAL%s", endLSN, "\n"+rc.LogTail(20))
	}
	return d, nil
}

func (rf *recoveryFigures) markdown() string {
	var w strings.Builder
	w.WriteString(recoveryBegin + "\n## Archive recovery through restore_command, same run\n\n")
	fmt.Fprintf(&w, "Command: `go run ./cmd/walgate-bench -sections recovery -out docs/benchmarks.md` (part of `make bench`). A PostgreSQL 15 cluster loaded by `pgbench -i -s %d`, a full `backup-push`, then UPDATEs of pgbench_accounts writing %d segments (%.0f MiB of WAL written after the backup), archived by `cp` into a local directory and by `walgate-client wal-push` (zstd + encryption) into a gateway on its defaults. The backup, fetched once with `backup-fetch`, is recovered %d times through each restore_command, alternating which goes first. Both recoveries run with `fsync = on`, as a production server does: PostgreSQL then syncs every segment restore_command restored before it reads it.\n\n",
		rf.scale, rf.segs, float64(rf.walBytes)/(1<<20), rf.runs)
	rows := [][]string{{"restore_command", "recovery (median)", "all runs", "/ cp", "restore_command CPU per segment (median)"}}
	all := func(s samples) string {
		var parts []string
		for _, d := range s {
			parts = append(parts, fmt.Sprintf("%.1f", d.Seconds()))
		}
		return strings.Join(parts, ", ") + " s"
	}
	rows = append(rows,
		[]string{"`cp ARCHIVE/%f %p` (local copy, nothing verified)", fmtSec(rf.cp.median()), all(rf.cp), "1.00", rf.cpuPerSegment(rf.cpCPU)},
		[]string{"`walgate-client wal-fetch %f %p` (defaults: prefetch 8, verified, decrypted)", fmtSec(rf.walgate.median()), all(rf.walgate), ratio(rf.walgate.median(), rf.cp.median()), rf.cpuPerSegment(rf.walgateCPU)})
	mdTable(&w, rows)
	r := rf.walgate.median().Seconds() / rf.cp.median().Seconds()
	perSeg := (rf.walgate.median() - rf.cp.median()) / time.Duration(max(rf.segs, 1))
	w.WriteString("\n")
	mdTable(&w, [][]string{{"Target", "Measured", "Result"},
		{fmt.Sprintf("recovery of %d segments through walgate-client at most %.2fx the same recovery through cp", rf.segs, recoveryTarget),
			fmt.Sprintf("%sx (%+.1f ms per segment)", againstTarget(r, recoveryTarget), float64(perSeg)/float64(time.Millisecond)), passFail(r <= recoveryTarget)}})
	fmt.Fprintf(&w, "\n**Method.** Each recovery is a fresh copy of the restored backup (untimed) with `recovery.signal`, the restore_command and `archive_mode = off`; `sync(2)` before the clock starts at `pg_ctl start`; it stops when `pg_is_in_recovery()` (polled every 100 ms) turns false: PostgreSQL replayed every archived segment, found no next one and promoted. Each run is checked to have replayed past the last archived segment's end. The recovery includes PostgreSQL's own start-up and end-of-recovery checkpoint, the same for both. %s Load average %s before the recoveries, %s after. The section took %s.\n",
		rf.cpuMethod(), rf.loadStart, rf.loadEnd, rf.elapsed.Round(time.Second))
	w.WriteString(recoveryEnd + "\n")
	return w.String()
}

// cpuPerSegment is the median CPU time of restore_command per archived
// segment, in milliseconds.
func (rf *recoveryFigures) cpuPerSegment(cpu samples) string {
	if len(cpu) == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%.1f ms", float64(cpu.median())/float64(time.Millisecond)/float64(max(rf.segs, 1)))
}

// cpuMethod says how restore_command's CPU time was measured.
func (rf *recoveryFigures) cpuMethod() string {
	if len(rf.walgateCPU) == 0 || len(rf.cpCPU) == 0 {
		return "The CPU time of restore_command was not measured: " + rf.cpuNote + "."
	}
	return "*restore_command CPU* is the user + system time of every process restore_command ran (for walgate, the wal-fetch processes and the wal-prefetch processes they started, until the last ended), added up in a cgroup (cpuacct) that each command joins first, over the archived segments; PostgreSQL's own replay is not in it."
}

// cpuGroup is a cgroup of the cgroup v1 cpuacct hierarchy that adds up the
// CPU time of the processes in it, their children included.
type cpuGroup struct{ dir string }

// errNoCPUAcct: the machine has no cgroup v1 cpuacct hierarchy (a
// cgroup v2 only machine), so restore_command's CPU is not measured.
var errNoCPUAcct = errors.New("no cgroup v1 cpuacct hierarchy")

// cpuacctRoot is where Linux mounts the cgroup v1 cpuacct hierarchy.
const cpuacctRoot = "/sys/fs/cgroup/cpuacct"

// newCPUGroup makes the group name under cpuacctRoot, which the server's
// user may join.
func newCPUGroup(name string) (*cpuGroup, error) {
	if _, err := os.Stat(filepath.Join(cpuacctRoot, "cpuacct.usage")); err != nil {
		return nil, fmt.Errorf("%w at %s", errNoCPUAcct, cpuacctRoot)
	}
	dir := filepath.Join(cpuacctRoot, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make a cgroup: %v", err)
	}
	if out, err := exec.Command("chown", "postgres", filepath.Join(dir, "cgroup.procs")).CombinedOutput(); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("chown of %s/cgroup.procs: %v: %s", dir, err, out)
	}
	return &cpuGroup{dir: dir}, nil
}

// join makes a restore_command that moves its shell into the group, then
// runs command in its place: command and every process it starts are
// counted.
func (g *cpuGroup) join(command string) string {
	return "echo $$ > " + g.dir + "/cgroup.procs && exec " + envPrefixed(command)
}

// envPrefixed puts env in front of a command that starts with variable
// assignments, which exec does not take.
func envPrefixed(command string) string {
	if first, _, _ := strings.Cut(command, " "); strings.Contains(first, "=") {
		return "env " + command
	}
	return command
}

// finish waits (up to wait) until no process is left in the group, reads
// its CPU time and removes it.
func (g *cpuGroup) finish(ctx context.Context, wait time.Duration) (time.Duration, error) {
	defer os.Remove(g.dir)
	deadline := time.Now().Add(wait)
	for {
		procs, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
		if err != nil {
			return 0, err
		}
		if len(strings.TrimSpace(string(procs))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("processes of restore_command still running after %s: %s", wait, strings.Fields(string(procs)))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, err := os.ReadFile(filepath.Join(g.dir, "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s/cpuacct.usage: %v", g.dir, err)
	}
	return time.Duration(ns), nil
}
