package client

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walgate/walgate/index/pgname"
)

// DefaultPrefetch is how many segments after the one restore_command asked
// for wal-fetch restores ahead in the background (WALGATE_PREFETCH).
const DefaultPrefetch = 8

// PrefetchLifetime bounds the life of one background prefetch process.
const PrefetchLifetime = 3 * time.Minute

// prefetchWait bounds how long a wal-fetch waits for a background prefetch
// of the same segment to finish before fetching it itself.
const prefetchWait = 30 * time.Second

// prefetchWorkers is how many segments a background prefetch downloads at
// once.
const prefetchWorkers = 4

// Suffixes of the files next to a prefetched segment NAME in
// pg_wal/walgate/prefetch: NAME.lock is locked (flock) by whoever fetches,
// serves or removes NAME; NAME.verified records that NAME was fetched,
// verified and renamed into place, which file it is, and in which boot of
// the machine.
const (
	lockSuffix     = ".lock"
	verifiedSuffix = ".verified"
)

// PrefetchDir is where restored segments wait for restore_command, for a
// restore whose destination is in walDir.
func PrefetchDir(walDir string) string { return filepath.Join(walDir, StateDir, "prefetch") }

// PrefetchPlan says which segments to restore ahead after name was
// restored to dest: the next n full segments of name's timeline, for a
// segment size read from dest. It is empty unless name is a full segment,
// dest is in a directory named pg_wal (PostgreSQL's restore_command) and
// dest has a WAL segment's size.
func PrefetchPlan(name, dest string, n int) (walDir string, next []string) {
	f, err := pgname.ParseWALFile(name)
	walDir = filepath.Dir(dest)
	if err != nil || f.Kind != pgname.Segment || n <= 0 || filepath.Base(walDir) != "pg_wal" {
		return "", nil
	}
	fi, err := os.Stat(dest)
	if err != nil || !pgname.IsSegmentSize(fi.Size()) {
		return "", nil
	}
	size := pgname.SegmentSize(fi.Size())
	no := size.Number(f)
	for i := 1; i <= n; i++ {
		next = append(next, size.Name(f.Timeline, no+uint64(i)))
	}
	return walDir, next
}

// BootIDPath is where Linux publishes the random id it draws at every
// boot (proc(5)).
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// readBootID returns the boot id in path, or "" when there is none to read.
func readBootID(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	if len(id) < 16 || len(id) > 64 {
		return ""
	}
	return id
}

// prefetchState is pg_wal/walgate/prefetch for one gateway and cluster.
//
// boot is the kernel's boot id. Prefetched files and their records are
// written without fsync and record the boot id: within one boot every
// process reads what another wrote (the page cache), also after the writer
// was killed, so that a record names a complete verified file for as long
// as the machine runs; a crash of the machine may lose either, so files
// recorded in another boot are never served. Without a boot id (no
// /proc), files and records are synced before they count, and records
// carry no boot id.
type prefetchState struct {
	dir              string
	gateway, cluster string
	boot             string
}

func (c *Client) prefetchState(walDir string) prefetchState {
	path := c.bootIDPath
	if path == "" {
		path = BootIDPath
	}
	return prefetchState{dir: PrefetchDir(walDir), gateway: c.cfg.gatewayKey(), cluster: c.cfg.Cluster, boot: readBootID(path)}
}

// FetchWALPrefetched restores name to dest from the prefetch directory
// next to dest when a background prefetch left it there complete and
// verified, and otherwise exactly as FetchWAL does. served says which.
// It waits (up to prefetchWait) for a prefetch of name still under way.
// It also removes prefetched files that no later request can use: those
// of segments before name, or more than window segments after it.
func (c *Client) FetchWALPrefetched(ctx context.Context, name, dest string, window int) (served bool, err error) {
	f, perr := pgname.ParseWALFile(name)
	walDir := filepath.Dir(dest)
	if perr != nil || f.Kind != pgname.Segment || filepath.Base(walDir) != "pg_wal" {
		return false, c.FetchWAL(ctx, name, dest)
	}
	ps := c.prefetchState(walDir)
	if _, err := os.Stat(ps.dir); err != nil {
		return false, c.FetchWAL(ctx, name, dest)
	}
	ps.clean(f, window)
	if unlock, ok := ps.lock(name, prefetchWait); ok {
		// Held while fetching too, so that no prefetch fetches it again.
		defer unlock()
		if ps.take(name, dest) {
			return true, nil
		}
	}
	return false, c.FetchWAL(ctx, name, dest)
}

// take moves a verified prefetched name to dest; the caller holds name's
// lock. A file without a matching record is removed.
func (ps prefetchState) take(name, dest string) bool {
	path := filepath.Join(ps.dir, name)
	ok := ps.verified(name)
	if ok && os.Rename(path, dest) == nil {
		os.Remove(path + verifiedSuffix)
		return true
	}
	os.Remove(path)
	os.Remove(path + verifiedSuffix)
	return false
}

// verified reports whether name is prefetched, complete, and the very file
// its record describes, from this gateway and cluster, recorded in this
// boot of the machine.
func (ps prefetchState) verified(name string) bool {
	path := filepath.Join(ps.dir, name)
	rec, err := readStateRecord(path + verifiedSuffix)
	return err == nil && rec.Boot == ps.boot && rec.proves(name, path, ps.gateway, ps.cluster)
}

// lock takes name's lock (NAME.lock, see lockFile), waiting up to wait.
func (ps prefetchState) lock(name string, wait time.Duration) (unlock func(), ok bool) {
	return lockName(ps.dir, name+lockSuffix, wait)
}

// clean removes what no request after cur can use: files of segments
// before cur or more than window after it (any timeline: a request for a
// timeline that is not archived is followed by one for its parent's
// segment of the same number), files without their record, and temporary
// files a killed process left. Files being fetched (locked) are left.
func (ps prefetchState) clean(cur pgname.WALFile, window int) {
	entries, err := os.ReadDir(ps.dir)
	if err != nil {
		return
	}
	size := pgname.DefaultSegmentSize
	names := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			removeIfOld(filepath.Join(ps.dir, n))
			continue
		}
		base := strings.TrimSuffix(strings.TrimSuffix(n, lockSuffix), verifiedSuffix)
		f, err := pgname.ParseWALFile(base)
		if err != nil || f.Kind != pgname.Segment {
			removeIfOld(filepath.Join(ps.dir, n))
			continue
		}
		names[base] = true
		// Every segment has the cluster's segment size.
		if fi, err := e.Info(); err == nil && n == base && fi.Mode().IsRegular() && pgname.IsSegmentSize(fi.Size()) {
			size = pgname.SegmentSize(fi.Size())
		}
	}
	curNo := size.Number(cur)
	for base := range names {
		f, _ := pgname.ParseWALFile(base)
		no := size.Number(f)
		gone := no < curNo || no > curNo+uint64(window)
		if !gone && ps.verified(base) {
			continue
		}
		unlock, ok := ps.lock(base, 0)
		if !ok {
			continue
		}
		if gone || !ps.verified(base) {
			os.Remove(filepath.Join(ps.dir, base))
			os.Remove(filepath.Join(ps.dir, base+verifiedSuffix))
			if gone {
				os.Remove(filepath.Join(ps.dir, base+lockSuffix))
			}
		}
		unlock()
	}
}

// PrefetchNeeded reports whether starting a prefetch of names is worth a
// process: at least half of them (at least one) are neither prefetched nor
// being prefetched. Starting one for a single missing segment would cost
// restore_command a process start for every segment; waiting until half
// the window is missing costs one for every half window, while the other
// half is still there to serve.
func (c *Client) PrefetchNeeded(walDir string, names []string) bool {
	ps := c.prefetchState(walDir)
	if _, err := os.Stat(ps.dir); err != nil {
		return len(names) > 0
	}
	missing := 0
	for _, n := range names {
		if ps.verified(n) {
			continue
		}
		if unlock, ok := ps.lock(n, 0); ok {
			unlock()
			missing++
		}
	}
	return missing > 0 && missing >= (len(names)+1)/2
}

// Prefetch restores names into the prefetch directory of walDir, a few at
// once, each under its lock and skipped when another process holds it or
// it is there already: fetched and verified as FetchWAL does, renamed into
// place, and only then recorded, with the boot id (see prefetchState).
// Failures leave nothing behind and are not reported: restore_command
// fetches such a segment itself.
func (c *Client) Prefetch(ctx context.Context, walDir string, names []string) {
	ps := c.prefetchState(walDir)
	if makeStateDir(ps.dir) != nil {
		return
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(prefetchWorkers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				ps.fetch(ctx, c, n)
			}
		}()
	}
	for _, n := range names {
		if ctx.Err() != nil {
			break
		}
		work <- n
	}
	close(work)
	wg.Wait()
}

func (ps prefetchState) fetch(ctx context.Context, c *Client, name string) {
	unlock, ok := ps.lock(name, 0)
	if !ok {
		return
	}
	defer unlock()
	if ps.verified(name) {
		return
	}
	path := filepath.Join(ps.dir, name)
	os.Remove(path + verifiedSuffix)
	if err := c.FetchWAL(ctx, name, path); err != nil {
		return
	}
	id, ok := statIdentity(path)
	durable := ps.boot == ""
	if !ok || durable && (syncPath(path) != nil || syncPath(ps.dir) != nil) {
		os.Remove(path)
		return
	}
	if !durable {
		startWriteback(path)
	}
	rec := newStateRecord(name, id, ps.gateway, ps.cluster)
	rec.Boot = ps.boot
	data, err := json.Marshal(rec)
	if err != nil || writeReplacing(ps.dir, name+verifiedSuffix, data, durable) != nil {
		os.Remove(path)
	}
}

// StartPrefetch runs exe (walgate-client) as "wal-prefetch WALDIR NAME..."
// in a new session, detached: its output goes nowhere and nobody waits for
// it, so restore_command returns at once. The process inherits the
// environment and ends within PrefetchLifetime.
func StartPrefetch(exe, walDir string, names []string) error {
	cmd := exec.Command(exe, append([]string{"wal-prefetch", walDir}, names...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// ErrPrefetchArgs is returned for a wal-prefetch call that is not the one
// StartPrefetch makes.
var ErrPrefetchArgs = errors.New("wal-prefetch takes the pg_wal directory and the segment names to restore ahead")

// ParsePrefetchArgs checks the arguments of wal-prefetch.
func ParsePrefetchArgs(args []string) (walDir string, names []string, err error) {
	if len(args) < 2 || len(args) > MaxLookahead+1 || filepath.Base(args[0]) != "pg_wal" {
		return "", nil, ErrPrefetchArgs
	}
	for _, n := range args[1:] {
		if f, err := pgname.ParseWALFile(n); err != nil || f.Kind != pgname.Segment {
			return "", nil, errors.Join(ErrPrefetchArgs, errors.New("not a segment name: "+strconv.Quote(n)))
		}
	}
	return args[0], args[1:], nil
}
