package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// segmentSize is the size of every input segment: PostgreSQL's default.
const segmentSize = 16 << 20

// Phases of the workload that wrote a segment.
const (
	phaseLoad = "COPY load"
	phaseOLTP = "OLTP"
)

// segment is one real WAL segment copied aside as benchmark input.
type segment struct {
	Name   string // as PostgreSQL archived it
	Path   string // the copy in the scratch directory
	Size   int64
	Phase  string
	SHA256 [32]byte
}

// makeWAL runs a PostgreSQL 15 cluster with archive_command = 'cp %p
// DIR/%f', loads it with pgbench -i and runs pgbench OLTP on it, waits for
// archiving, stops and removes it, and copies the archived segments into
// the scratch directory.
func (b *bench) makeWAL(ctx context.Context, cl *cleanups) error {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()

	archive, err := pgtest.MakeSharedDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(archive)

	logf("creating a PostgreSQL 15 cluster archiving with cp to %s", archive)
	c, err := pgtest.Create(ctx, "", pgtest.Options{Conf: []string{
		"archive_mode = on",
		"archive_command = " + pgtest.QuoteConf("cp %p "+archive+"/%f"),
		// Keep checkpoints out of the way except the one asked for below.
		"max_wal_size = '2GB'",
		"checkpoint_timeout = '30min'",
	}})
	if err != nil {
		return err
	}
	stopCluster := func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := c.Stop(sctx); err != nil {
			logf("%v; killing it", err)
			c.Kill(sctx)
		}
		if err := c.Remove(); err != nil {
			logf("%v", err)
		}
	}
	stopped := false
	cl.add(func() {
		if !stopped {
			stopCluster()
		}
	})

	if b.machine.Postgres == "" {
		if v, err := c.QueryString(ctx, "SELECT version()"); err == nil {
			b.machine.Postgres = v
		}
	}

	logf("pgbench -i -s %d (COPY load)", b.opts.scale)
	if _, err := c.Pgbench(ctx, "-i", "-s", strconv.Itoa(b.opts.scale)); err != nil {
		return err
	}
	loadEnd, err := c.QueryString(ctx, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	if err != nil {
		return err
	}
	// A checkpoint between the load and the OLTP run, as a production
	// system has every few minutes: the OLTP segments then carry the full
	// page images that follow every checkpoint.
	if err := c.Exec(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	secs := int(b.opts.oltp.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	logf("pgbench -c %d -j 2 -T %d (OLTP)", b.opts.clients, secs)
	out, err := c.Pgbench(ctx, "-c", strconv.Itoa(b.opts.clients), "-j", "2", "-T", strconv.Itoa(secs))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "tps = "); ok {
			f, _, _ := strings.Cut(v, " ")
			if x, err := strconv.ParseFloat(f, 64); err == nil {
				b.pgbenchTPS = fmt.Sprintf("%.0f transactions/s", x)
			}
		}
	}
	last, err := c.QueryString(ctx, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	if err != nil {
		return err
	}
	logf("waiting for segment %s to be archived", last)
	if _, err := c.WaitArchived(ctx, ""); err != nil {
		return err
	}
	stopCluster()
	stopped = true

	dir := filepath.Join(b.scratch, "segments")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(archive)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !isSegmentName(name) || name > last {
			continue // history files; the segment the shutdown checkpoint wrote
		}
		seg, err := copySegment(filepath.Join(archive, name), filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if seg.Size != segmentSize {
			continue
		}
		seg.Phase = phaseOLTP
		if name <= loadEnd {
			seg.Phase = phaseLoad
		}
		b.segments = append(b.segments, seg)
	}
	sort.Slice(b.segments, func(i, j int) bool { return b.segments[i].Name < b.segments[j].Name })
	if len(b.segments) == 0 {
		return fmt.Errorf("no 16 MiB segment was archived to %s", archive)
	}
	b.walTime = time.Since(t0)
	load, oltp := b.phaseCounts()
	logf("%d segments (%d COPY load, %d OLTP) in %.0f s", len(b.segments), load, oltp, b.walTime.Seconds())
	return nil
}

func (b *bench) phaseCounts() (load, oltp int) {
	for _, s := range b.segments {
		if s.Phase == phaseLoad {
			load++
		} else {
			oltp++
		}
	}
	return load, oltp
}

// copySegment copies src to dst and hashes it.
func copySegment(src, dst string) (segment, error) {
	in, err := os.Open(src)
	if err != nil {
		return segment{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return segment{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return segment{}, err
	}
	seg := segment{Name: filepath.Base(dst), Path: dst, Size: n}
	copy(seg.SHA256[:], h.Sum(nil))
	return seg, nil
}

func isSegmentName(s string) bool {
	if len(s) != 24 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// warmBlock is the log file number of the untimed warm-up push's name.
const warmBlock = 0xFFF

// syntheticName is a valid segment name far from the real ones: timeline
// 1, log file block+i/256, segment i%256.
func syntheticName(block, i int) string {
	return fmt.Sprintf("%08X%08X%08X", 1, block+i/256, i%256)
}
