package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/protocol"
)

// Delta-backup targets.
const (
	targetDeltaSizeSlack = 0.10 // delta data within 10% of the changed pages' size
	targetDeltaPushRatio = 0.35 // delta push time <= 0.35 x full push time, about 15% of the pages changed
	targetChain6Restore  = 1.2  // chain-6 restore <= 1.2 x full restore
)

// The load before each delta is a number of pgbench transactions, not a
// time: the share of pages it changes is then the same on a fast and a
// slow or busy machine. 20000 of pgbench's TPC-B-like transactions change
// about 15% of the pages of a scale-100 database, the share the push
// target is set for; 8000 about 6%.
const (
	deltaFirstTx = 20000
	deltaLaterTx = 8000
)

// deltaFigures are the delta-backup measurements.
type deltaFigures struct {
	scale      int
	firstTx    int // pgbench transactions before delta 1
	laterTx    int // pgbench transactions before each later delta
	tps        string
	full       protocol.BackupSummary
	deltas     []protocol.BackupSummary // depth 1..n
	fullPush   execResult
	deltaPush  []execResult
	changed    changedData        // between the full and delta 1, measured apart
	restores   map[int]execResult // the median run of each depth
	restoreAll map[int][]time.Duration
	restoreDir map[int]int64 // bytes restored per depth
	elapsed    time.Duration
}

// changedData is what changed on disk between two snapshots, measured by
// comparing the files page by page, without walgate's page scan.
type changedData struct {
	pages      int64 // pages of relation files present before that differ, or were added
	allPages   int64 // pages of those relation files now
	pagedBytes int64 // those pages' bytes plus each increment's header
	wholeBytes int64 // files a delta holds whole (not relation files, or new)
	files      int
}

func (c changedData) total() int64 { return c.pagedBytes + c.wholeBytes }

// share is the fraction of the relation files' pages that changed.
func (c changedData) share() float64 {
	if c.allPages == 0 {
		return 0
	}
	return float64(c.pages) / float64(c.allPages)
}

const (
	deltaChain         = 6
	deltaRestoreRounds = 3
)

// measureDeltas takes a full backup and a chain of six deltas of a
// pgbench database under load, and restores depths 0, 1, 3 and 6.
func (b *bench) measureDeltas(ctx context.Context, cl *cleanups) error {
	t0 := time.Now()
	df := &deltaFigures{scale: b.opts.deltaScale, firstTx: deltaFirstTx, laterTx: deltaLaterTx,
		restores: map[int]execResult{}, restoreDir: map[int]int64{}, restoreAll: map[int][]time.Duration{}}
	b.delta = df
	logf("delta backups: creating a PostgreSQL 15 cluster, pgbench -i -s %d", df.scale)
	c, err := backupCluster(ctx, cl)
	if err != nil {
		return err
	}
	if _, err := c.Pgbench(ctx, "-i", "-q", "-s", strconv.Itoa(df.scale)); err != nil {
		return err
	}
	for _, q := range []string{"VACUUM", "CHECKPOINT"} {
		if err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	g, err := startGateway(ctx, b.gatewayBin, filepath.Join(b.scratch, "delta-gateway"), filepath.Join(b.scratch, "delta-gateway.log"))
	if err != nil {
		return err
	}
	cl.add(g.stop)
	tok, err := g.addToken(ctx, "bench-delta")
	if err != nil {
		return err
	}
	var raw [32]byte
	rand.Read(raw[:])
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + b.scratch, "WALGATE_URL=" + g.url, "WALGATE_TOKEN=" + tok,
		"WALGATE_COMPRESSION=zstd", "WALGATE_ENCRYPTION_KEY=" + hex.EncodeToString(raw[:]), "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex",
		"WALGATE_DELTA_MAX_STEPS=" + strconv.Itoa(deltaChain),
		"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(c.Port), "PGUSER=postgres", "PGDATABASE=postgres", "PGSSLMODE=disable"}
	if b.opts.keep {
		// With -keep, the chain can be fetched again by hand: start
		// 'walgate serve --data delta-gateway' on the same address and
		// source this file (the key is made for this run only).
		if err := os.WriteFile(filepath.Join(b.scratch, "delta.env"), []byte(strings.Join(env, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}

	push := func(args ...string) (execResult, protocol.BackupSummary, error) {
		syscall.Sync()
		r, err := b.execClient(ctx, env, append(append([]string{"backup-push"}, args...), c.DataDir)...)
		if err != nil {
			return r, protocol.BackupSummary{}, err
		}
		sum, err := latestBackup(ctx, env)
		if err == nil && !strings.Contains(r.output, "backup "+sum.Name+" committed") {
			err = fmt.Errorf("backup-push: the newest backup is %s, but the client said: %s", sum.Name, strings.TrimSpace(r.output))
		}
		return r, sum, err
	}
	logf("delta backups: full backup")
	if df.fullPush, df.full, err = push("--full"); err != nil {
		return err
	}
	// The state the first delta is measured against: a copy of the
	// relation files right after the full backup (no writes in between).
	snap := filepath.Join(b.scratch, "delta-snapshot")
	if err := copyTree(c.DataDir, snap); err != nil {
		return err
	}
	cl.add(func() { os.RemoveAll(snap) })

	for depth := 1; depth <= deltaChain; depth++ {
		load := df.laterTx
		if depth == 1 {
			load = df.firstTx
		}
		// pgbench's defaults: one client, TPC-B-like transactions.
		out, err := c.Pgbench(ctx, "-t", strconv.Itoa(load), "-n")
		if err != nil {
			return err
		}
		if depth == 1 {
			df.tps = pgbenchTPS(out)
			if err := c.Exec(ctx, "CHECKPOINT"); err != nil {
				return err
			}
			if df.changed, err = compareTrees(snap, c.DataDir); err != nil {
				return err
			}
			os.RemoveAll(snap)
		}
		logf("delta backups: delta %d after %d pgbench transactions", depth, load)
		r, sum, err := push()
		if err != nil {
			return err
		}
		if sum.Kind != "delta" || sum.DeltaCount != depth {
			return fmt.Errorf("backup %d of the chain is %s with depth %d, want a delta of depth %d", depth, sum.Kind, sum.DeltaCount, depth)
		}
		df.deltaPush = append(df.deltaPush, r)
		df.deltas = append(df.deltas, sum)
	}
	outDir := filepath.Join(b.scratch, "delta-restore")
	cl.add(func() { os.RemoveAll(outDir) })
	// Three rounds, the depths interleaved; the median run of each is
	// reported.
	runs := map[int][]execResult{}
	for round := 0; round < deltaRestoreRounds; round++ {
		for _, depth := range []int{0, 1, 3, 6} {
			name := df.full.Name
			if depth > 0 {
				name = df.deltas[depth-1].Name
			}
			dst := filepath.Join(outDir, strconv.Itoa(depth))
			syscall.Sync()
			r, err := b.execClient(ctx, env, "backup-fetch", dst, name)
			if err != nil {
				return err
			}
			if !strings.Contains(r.output, "restored "+name+" into") {
				return fmt.Errorf("backup-fetch %s: %s", name, strings.TrimSpace(r.output))
			}
			got, err := sizeOfTree(dst)
			if err != nil {
				return err
			}
			runs[depth] = append(runs[depth], r)
			df.restoreAll[depth] = append(df.restoreAll[depth], r.wall)
			df.restoreDir[depth] = got.bytes
			os.RemoveAll(dst)
			syscall.Sync()
			logf("delta backups: restore of depth %d: %.2f s", depth, r.wall.Seconds())
		}
	}
	for depth, rs := range runs {
		sort.Slice(rs, func(i, j int) bool { return rs[i].wall < rs[j].wall })
		df.restores[depth] = rs[len(rs)/2]
	}
	df.elapsed = time.Since(t0)
	return nil
}

// copyTree copies the regular files of dir (a stopped-writes snapshot of a
// data directory), skipping pg_wal.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "pg_wal" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// compareTrees counts what a delta of cur over before must hold: for
// relation files present in both, the pages whose bytes differ (or that
// were added); other files whole. It compares bytes, not page LSNs.
func compareTrees(before, cur string) (changedData, error) {
	var c changedData
	a, bb := make([]byte, basebackup.BlockSize), make([]byte, basebackup.BlockSize)
	err := filepath.WalkDir(cur, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(cur, p)
		if rel == "pg_wal" || rel == "pg_stat_tmp" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), "postmaster.") || rel == "global/pg_control" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		member := "/" + filepath.ToSlash(rel)
		old, err := os.Open(filepath.Join(before, rel))
		if err != nil || !basebackup.IsPagedFile(member) || fi.Size()%basebackup.BlockSize != 0 || fi.Size() == 0 {
			if old != nil {
				old.Close()
			}
			c.wholeBytes += fi.Size()
			return nil
		}
		defer old.Close()
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var pages int64
		for off := int64(0); off < fi.Size(); off += basebackup.BlockSize {
			if _, err := io.ReadFull(f, a); err != nil {
				return err
			}
			n, _ := old.ReadAt(bb, off)
			if n < len(bb) || !bytes.Equal(a, bb) {
				pages++
			}
		}
		c.allPages += fi.Size() / basebackup.BlockSize
		if pages == 0 {
			return nil // recorded as skipped, stored nowhere
		}
		c.files++
		c.pages += pages
		c.pagedBytes += 16 + pages*(4+basebackup.BlockSize)
		return nil
	})
	return c, err
}

// pgbenchTPS picks the tps figure from pgbench's output.
func pgbenchTPS(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "tps = ") {
			f := strings.Fields(l)
			if len(f) >= 3 {
				return f[2] + " tps"
			}
		}
	}
	return "? tps"
}

// deltaMarkdown is the delta section of docs/benchmarks.md, between
// markers so that a run of this section alone can replace it.
func (df *deltaFigures) markdown() string {
	var w strings.Builder
	w.WriteString(deltaBegin + "\n## Delta backups\n\n")
	fmt.Fprintf(&w, "`pgbench -i -s %d`, `VACUUM`, a full backup, then %d transactions of `pgbench -t` with its defaults (one client; %s) before the first delta and %d before each of the next five: a chain of %d deltas, zstd + encryption, `WALGATE_DELTA_MAX_STEPS=%d`. Then `backup-fetch` (with its fsync) of the full backup and of depths 1, 3 and 6, three rounds interleaved. Measured with `go run ./cmd/walgate-bench -sections delta -out docs/benchmarks.md`.\n\n",
		df.scale, df.firstTx, df.tps, df.laterTx, deltaChain, deltaChain)
	d1 := df.deltas[0]
	sizeRatio := float64(d1.UncompressedSize) / float64(df.changed.total())
	pushRatio := df.deltaPush[0].wall.Seconds() / df.fullPush.wall.Seconds()
	r6 := df.restores[6].wall.Seconds() / df.restores[0].wall.Seconds()
	pass := func(ok bool) string {
		if ok {
			return "pass"
		}
		return "**FAIL**"
	}
	w.WriteString("### Targets\n\n")
	mdTable(&w, [][]string{
		{"Target", "Measured", "Verdict"},
		{"Delta data within 10% of the changed pages' size", fmt.Sprintf("delta 1 holds %.1f MiB of data; the changed pages (counted by comparing the files page by page with a copy taken after the full backup) plus the files a delta holds whole: %.1f MiB; ratio %.3f", mib(d1.UncompressedSize), mib(df.changed.total()), sizeRatio), pass(sizeRatio >= 1-targetDeltaSizeSlack && sizeRatio <= 1+targetDeltaSizeSlack)},
		{fmt.Sprintf("Delta push time <= %.2f x full push time", targetDeltaPushRatio), fmt.Sprintf("%.2f s vs %.2f s: %s, with %.0f%% of the pages changed", df.deltaPush[0].wall.Seconds(), df.fullPush.wall.Seconds(), againstTarget(pushRatio, targetDeltaPushRatio), 100*df.changed.share()), pass(pushRatio <= targetDeltaPushRatio)},
		{fmt.Sprintf("(the same, for the smaller deltas 2-6 after %d transactions each)", df.laterTx), laterPush(df), "(for reference)"},
		{fmt.Sprintf("Chain-6 restore <= %.1f x full restore", targetChain6Restore), fmt.Sprintf("%.2f s vs %.2f s: %s", df.restores[6].wall.Seconds(), df.restores[0].wall.Seconds(), againstTarget(r6, targetChain6Restore)), pass(r6 <= targetChain6Restore)},
	})
	w.WriteString("### The chain\n\n")
	rows := [][]string{{"Backup", "Depth", "Data (tar payload)", "Stored", "Stored / full", "Push wall", "Client CPU", "Client peak RSS"}}
	row := func(b protocol.BackupSummary, r execResult) {
		rows = append(rows, []string{b.Name, strconv.Itoa(b.DeltaCount), fmt.Sprintf("%.1f MiB", mib(b.UncompressedSize)), fmt.Sprintf("%.1f MiB", mib(b.StoredSize)),
			fmt.Sprintf("%.3f", float64(b.StoredSize)/float64(df.full.StoredSize)), fmt.Sprintf("%.2f s", r.wall.Seconds()),
			fmt.Sprintf("%.2f s", r.cpu.Seconds()), fmt.Sprintf("%.0f MiB", float64(r.maxRSS)/1024)})
	}
	row(df.full, df.fullPush)
	for i, d := range df.deltas {
		row(d, df.deltaPush[i])
	}
	mdTable(&w, rows)
	fmt.Fprintf(&w, "Changed between the full backup and delta 1, by byte comparison: %d pages in %d relation files, plus %.1f MiB of files stored whole (free space and visibility maps, SLRUs, catalogs' small files).\n\n", df.changed.pages, df.changed.files, mib(df.changed.wholeBytes))
	fmt.Fprintf(&w, "A delta push skips the files whose modification time is the parent's, reads every page of the other relation files (the scan, by as many workers as partitions are uploaded at once), then reads the changed pages again to compress and encrypt them, in partitions cut by their payload. Its cost is the scan, at local read speed, plus the encoding of the changed data, so its time follows the share of changed pages: %.0f%% of the pages before delta 1 here (the target is set for about 15%%).\n\n", 100*df.changed.share())
	w.WriteString("### Restore by chain depth\n\n")
	rrows := [][]string{{"Depth", "backup-fetch wall (median of 3)", "all runs", "/ full", "Client CPU", "Client peak RSS", "Restored"}}
	for _, depth := range []int{0, 1, 3, 6} {
		r := df.restores[depth]
		var all []string
		for _, d := range df.restoreAll[depth] {
			all = append(all, fmt.Sprintf("%.2f", d.Seconds()))
		}
		rrows = append(rrows, []string{strconv.Itoa(depth), fmt.Sprintf("%.2f s", r.wall.Seconds()), strings.Join(all, ", "), fmt.Sprintf("%.2f", r.wall.Seconds()/df.restores[0].wall.Seconds()),
			fmt.Sprintf("%.2f s", r.cpu.Seconds()), fmt.Sprintf("%.0f MiB", float64(r.maxRSS)/1024), fmt.Sprintf("%.1f MiB", mib(df.restoreDir[depth]))})
	}
	mdTable(&w, rrows)
	chainData := func(depth int) int64 {
		n := df.full.UncompressedSize
		for i := 0; i < depth; i++ {
			n += df.deltas[i].UncompressedSize
		}
		return n
	}
	fmt.Fprintf(&w, "A chain is applied with every link's tars fetched at once, newest first: each older backup contributes only the pages and files nothing newer wrote (its tars holding only finished files are not fetched at all), an increment's consecutive pages go out in one write, and the disk write of each file starts as its whole copy fills it. The writes are about those of one full restore, but a fetched tar is decoded whole (a compressed stream cannot be skipped into), and the full backup's tars are always needed for the unchanged pages: %.0f MiB of tar data at depth 6 against %.0f MiB for the full alone (%.2f x), which on two cores shows in the client's CPU time and so in the wall time. The ratio to a full restore therefore follows the deltas' sizes; the first delta here holds %.0f%% of the data.\n\n",
		mib(chainData(6)), mib(chainData(0)), float64(chainData(6))/float64(chainData(0)), 100*float64(df.deltas[0].UncompressedSize)/float64(df.full.UncompressedSize))
	fmt.Fprintf(&w, "The delta part took %s.\n%s\n", df.elapsed.Round(time.Second), deltaEnd)
	return w.String()
}

// laterPush summarises the push-time ratio of deltas 2 and later.
func laterPush(df *deltaFigures) string {
	var parts []string
	for i := 1; i < len(df.deltas); i++ {
		parts = append(parts, fmt.Sprintf("%.2f", df.deltaPush[i].wall.Seconds()/df.fullPush.wall.Seconds()))
	}
	var share []string
	for i := 1; i < len(df.deltas); i++ {
		share = append(share, fmt.Sprintf("%.0f%%", 100*float64(df.deltas[i].UncompressedSize)/float64(df.full.UncompressedSize)))
	}
	return "push time / full push: " + strings.Join(parts, ", ") + " at " + strings.Join(share, ", ") + " of the full's data"
}

const (
	deltaBegin = "<!-- delta-backups: begin -->"
	deltaEnd   = "<!-- delta-backups: end -->"
)
