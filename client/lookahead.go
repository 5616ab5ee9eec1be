package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/pgname"
)

// DefaultLookahead is how many further ".ready" segments one wal-push
// archives besides its own (WALGATE_LOOKAHEAD).
const DefaultLookahead = 8

// MaxLookahead bounds WALGATE_LOOKAHEAD and WALGATE_PREFETCH.
const MaxLookahead = 64

// StateDir is the directory inside pg_wal where walgate-client keeps its
// own small files: "pushed" (records of segments archived ahead of
// PostgreSQL's archiver) and "prefetch" (segments restored ahead of
// restore_command). PostgreSQL only looks at names of WAL files and at
// archive_status in pg_wal, and base backups copy no file under pg_wal.
const StateDir = "walgate"

// staleTemp is how old a temporary file in the state directories must be
// before it counts as left over by a killed process.
const staleTemp = 10 * time.Minute

// stateRecord says that a file under pg_wal/walgate was archived ahead
// of the archiver (pushed/) or restored ahead of restore_command
// (prefetch/), and exactly which file it was, for which gateway and
// cluster: it proves nothing about any other file.
type stateRecord struct {
	Name    string `json:"name"`
	Dev     uint64 `json:"dev"`
	Inode   uint64 `json:"inode"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	Gateway string `json:"gateway"`
	Cluster string `json:"cluster"`
	// SHA256 and Status are the gateway's acknowledgement of a push.
	SHA256 string `json:"sha256,omitempty"`
	Status string `json:"status,omitempty"`
	// Boot is the kernel's boot id when a prefetched segment was recorded
	// without fsync: the record and its file hold only within that boot.
	Boot string `json:"boot,omitempty"`
}

func newStateRecord(name string, id fileIdentity, gateway, cluster string) stateRecord {
	return stateRecord{Name: name, Dev: id.Dev, Inode: id.Inode, Size: id.Size, MtimeNS: id.MtimeNS, Gateway: gateway, Cluster: cluster}
}

// readStateRecord reads a record (a few hundred bytes; at most 4 KiB).
func readStateRecord(path string) (stateRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return stateRecord{}, err
	}
	defer f.Close()
	var rec stateRecord
	err = json.NewDecoder(io.LimitReader(f, 4<<10)).Decode(&rec)
	return rec, err
}

// proves reports whether the record describes the file at path, named
// name, for gateway and cluster: device, inode, size and modification
// time all the same.
func (r stateRecord) proves(name, path, gateway, cluster string) bool {
	id, ok := statIdentity(path)
	return ok && r.Name == name && r.Gateway == gateway && r.Cluster == cluster &&
		id == fileIdentity{Dev: r.Dev, Inode: r.Inode, Size: r.Size, MtimeNS: r.MtimeNS}
}

// fileIdentity is what makes two looks at a path the same file.
type fileIdentity struct {
	Dev, Inode uint64
	Size       int64
	MtimeNS    int64
}

func identityOf(fi os.FileInfo) (fileIdentity, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fileIdentity{}, false
	}
	return fileIdentity{Dev: uint64(st.Dev), Inode: st.Ino, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}, true
}

func statIdentity(path string) (fileIdentity, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileIdentity{}, false
	}
	return identityOf(fi)
}

// Timing of archiving ahead (variables for tests).
var (
	// PushAheadLifetime bounds how long one background push-ahead
	// process takes new segments on; the next wal-push starts another.
	PushAheadLifetime = 3 * time.Minute
	// aheadIdle is how long a background push-ahead waits for the
	// archiver to move on (new segments in its window) before it ends.
	aheadIdle = time.Second
	// aheadPoll is how often it looks at archive_status meanwhile (and
	// at once when one of its pushes ends).
	aheadPoll = 20 * time.Millisecond
	// aheadWait bounds how long wal-push waits for a push of its segment
	// under way in the background before it pushes the segment itself.
	aheadWait = time.Minute
)

// aheadLock, in pg_wal/walgate/pushed, is locked (flock) by the one
// background push-ahead process of that pg_wal and holds its process id.
// NAME.lock next to it is locked by whoever pushes NAME.
const aheadLock = ".ahead"

// AheadStarter starts a background push-ahead of the ready segments after
// name in walDir (StartPushAhead runs "walgate-client wal-push-ahead") and
// reports whether it started one.
type AheadStarter func(walDir, name string) bool

// PushWALLookahead archives the WAL file at path as PushWAL does and, when
// it is a full segment with further segments of its timeline that
// PostgreSQL has marked ready (archive_status/NAME.ready), has up to
// lookahead of them archived ahead of the archiver by a background process
// (start), unless one is running already. That process records each
// segment the gateway acknowledged in pg_wal/walgate/pushed (PushAhead);
// when the archiver later hands over one of them, the call returns at once
// if the file is provably the one archived (device, inode, size,
// modification time and name match the record, and the gateway and
// cluster are the same), and archives it normally otherwise. A call whose
// segment is being pushed in the background waits for that push (up to
// aheadWait) and then looks for its record.
//
// The result and error are those of path alone: the background work only
// leaves records or none. Nothing here touches archive_status: PostgreSQL
// alone marks a file done. A record is written (temp file, fsync, rename,
// fsync of the directory) only after the gateway's acknowledgement, so a
// process killed at any point leaves either no record (the segment is
// archived again later) or a true one.
func (c *Client) PushWALLookahead(ctx context.Context, path string, lookahead int, start AheadStarter) (PushResult, error) {
	name := filepath.Base(path)
	wf, err := protocol.ValidateWALName(name)
	if err != nil {
		return c.PushWAL(ctx, path)
	}
	walDir := filepath.Dir(path)
	statusDir := filepath.Join(walDir, "archive_status")
	ps := c.pushedState(walDir)
	ps.clean(statusDir)
	cleanOldPrefetch(walDir)
	// Only in a pg_wal whose archive_status marks segments ready after
	// this one. Records are only ever made inside the push-ahead's window
	// (lookahead+1 ready segments), so twice that many ready names hold
	// every unrecorded candidate lookaheadCandidates may pick.
	var ready []string
	if lookahead > 0 && wf.Kind == pgname.Segment && start != nil {
		ready = readyFrom(statusDir, wf, fileSize(path), 2*lookahead+1)
	}
	ahead := len(ready) > 0
	if ahead {
		makeStateDir(ps.dir) // no directory: no lock, no records
	}
	if _, err := os.Stat(ps.dir); err == nil {
		// Held while pushing too, so that no push ahead starts on it.
		if unlock, ok := lockName(ps.dir, name+lockSuffix, aheadWait); ok {
			defer unlock()
		}
	}
	// A push-ahead runs from here on whenever segments after this one
	// wait unrecorded: also when this call is answered from a record,
	// since the last push-ahead may have ended while the archiver was
	// slow.
	aheadRuns := ahead && len(lookaheadCandidates(wf, ready, lookahead, func(n string) bool {
		_, ok := ps.matching(n, filepath.Join(walDir, n))
		return ok
	})) > 0 && (ps.aheadRunning() || start(walDir, name))
	if rec, ok := ps.matching(name, path); ok {
		// The archiver will mark it done; should it ask again after a
		// crash, the segment is archived again (the gateway answers
		// "exists" for the same content).
		ps.remove(name)
		return PushResult{Name: name, Status: "pushed ahead", Size: rec.Size, PlainSize: rec.Size, SHA256: rec.SHA256}, nil
	}
	// Alone, the push may use both cores; beside a push-ahead, one.
	return c.pushWAL(ctx, path, !aheadRuns, nil)
}

// lookaheadCandidates picks, from the names with a ".ready" file, the full
// segments of cur's timeline after cur, oldest first, at most n, leaving
// out those already recorded. Timeline history files, partial segments
// and backup history files are left to the archiver, which hands them over
// in its own order.
func lookaheadCandidates(cur pgname.WALFile, ready []string, n int, recorded func(string) bool) []string {
	var out []string
	for _, r := range timelineSegments(ready, cur.Timeline) {
		if r <= cur.Name || recorded(r) {
			continue
		}
		out = append(out, r)
		if len(out) == n {
			break
		}
	}
	return out
}

// PushAhead is the background half of wal-push: it archives ready
// segments ahead of PostgreSQL's archiver and records each one the gateway
// acknowledged (pushAhead). Its window is the lookahead+1 oldest ready
// segments of name's timeline from name on: the one the archiver is on
// and lookahead after it. It pushes up to workers at once, compressing up
// to encoders of them at once (their uploads overlap), follows the
// archiver as it moves on, and ends when there has been nothing to do for
// aheadIdle, or when ctx ends. It returns at once when another process of
// the same pg_wal is at it. Each segment is pushed under its lock, only
// while it is still ready and not recorded; one whose push failed is left
// to the archiver.
func (c *Client) PushAhead(ctx context.Context, walDir, name string, lookahead, workers, encoders int) {
	wf, err := pgname.ParseWALFile(name)
	if err != nil || wf.Kind != pgname.Segment || lookahead <= 0 || workers <= 0 {
		return
	}
	ps := c.pushedState(walDir)
	if makeStateDir(ps.dir) != nil {
		return
	}
	// A wal-push looking whether one runs holds the lock for an instant.
	lf, ok := lockFile(filepath.Join(ps.dir, aheadLock), 100*time.Millisecond)
	if !ok {
		return
	}
	defer lf.Close()
	lf.Truncate(0)
	lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	type job struct {
		name   string
		unlock func()
	}
	work := make(chan job)
	done := make(chan string, workers)
	var slots chan struct{}
	if encoders > 0 && encoders < workers {
		slots = make(chan struct{}, encoders)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				c.pushAhead(ctx, ps, filepath.Join(walDir, j.name), slots)
				j.unlock()
				done <- j.name
			}
		}()
	}
	win := &aheadWindow{
		statusDir: filepath.Join(walDir, "archive_status"),
		cursor:    wf,
		segBytes:  fileSize(filepath.Join(walDir, name)),
		size:      lookahead + 1,
	}
	busy := map[string]bool{}
	tried := map[string]bool{}
	last := time.Now()
	for ctx.Err() == nil {
		if len(busy) < workers {
			if n, unlock, ok := ps.nextAhead(win, busy, tried); ok {
				busy[n], tried[n] = true, true
				work <- job{n, unlock}
				last = time.Now()
				continue
			}
		}
		if len(busy) == 0 && time.Since(last) > aheadIdle {
			break
		}
		select {
		case n := <-done:
			delete(busy, n)
			last = time.Now()
		case <-time.After(aheadPoll):
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

// aheadWindow is the archiver's window as a push-ahead follows it: the
// size oldest segments of the timeline that archive_status marks ready,
// from cursor on. The cursor only moves forward, to the oldest ready
// segment of the last look: the segments before it were not ready then,
// and PostgreSQL's archiver hands them over oldest first. (A segment
// before the cursor marked ready again, after a crash lost its status,
// is only not pushed ahead: the archiver hands it over as any other.)
type aheadWindow struct {
	statusDir string
	cursor    pgname.WALFile
	// segBytes is the size of the segment the push-ahead started from:
	// the cluster's wal_segment_size, by which the names that follow are
	// known (see readyFrom).
	segBytes int64
	size     int
}

// look returns the window's segments, oldest first, and moves the cursor.
func (w *aheadWindow) look() []string {
	names := readyFrom(w.statusDir, w.cursor, w.segBytes, w.size)
	if len(names) > 0 {
		if f, err := pgname.ParseWALFile(names[0]); err == nil {
			w.cursor = f
		}
	}
	return names
}

// nextAhead picks the oldest segment in the archiver's window that is
// neither busy, tried, recorded nor locked by another process, and
// returns it locked, still ready.
func (ps pushedState) nextAhead(win *aheadWindow, busy, tried map[string]bool) (string, func(), bool) {
	statusDir := win.statusDir
	walDir := filepath.Dir(statusDir)
	for _, n := range win.look() {
		if busy[n] || tried[n] {
			continue
		}
		if _, ok := ps.matching(n, filepath.Join(walDir, n)); ok {
			continue
		}
		unlock, ok := lockName(ps.dir, n+lockSuffix, 0)
		if !ok {
			continue
		}
		// Under the lock: the archiver may have had it pushed and
		// marked it done meanwhile, or a push ahead recorded it.
		_, err := os.Stat(filepath.Join(statusDir, n+".ready"))
		if _, rec := ps.matching(n, filepath.Join(walDir, n)); err != nil || rec {
			unlock()
			continue
		}
		return n, unlock, true
	}
	return "", nil, false
}

// aheadRunning reports whether a background push-ahead holds this
// pg_wal's lock.
func (ps pushedState) aheadRunning() bool {
	f, ok := lockFile(filepath.Join(ps.dir, aheadLock), 0)
	if ok {
		f.Close()
	}
	return !ok
}

// pushAhead archives one segment ahead of the archiver and records it
// when the gateway acknowledged it and the file did not change meanwhile.
func (c *Client) pushAhead(ctx context.Context, ps pushedState, path string, slots chan struct{}) {
	before, ok := statIdentity(path)
	if !ok {
		return
	}
	res, err := c.pushWAL(ctx, path, false, slots)
	if err != nil {
		return
	}
	after, ok := statIdentity(path)
	if !ok || after != before || res.PlainSize != before.Size {
		return
	}
	rec := newStateRecord(res.Name, before, ps.gateway, ps.cluster)
	rec.SHA256, rec.Status = res.SHA256, res.Status
	ps.record(rec)
}

// lockName takes the lock dir/name (see lockFile) and returns its release.
func lockName(dir, name string, wait time.Duration) (unlock func(), ok bool) {
	f, ok := lockFile(filepath.Join(dir, name), wait)
	if !ok {
		return nil, false
	}
	return func() { f.Close() }, true
}

// lockFile takes an exclusive flock on path, made if need be, waiting up
// to wait; ok is false when another process holds it that long. Closing
// the file releases it, as does the holder's death. A lock file removed
// while being taken is taken again, so that the file may be removed by
// whoever holds its lock.
func lockFile(path string, wait time.Duration) (*os.File, bool) {
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, false
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			held, herr := f.Stat()
			now, nerr := os.Stat(path)
			if herr == nil && nerr == nil && os.SameFile(held, now) {
				return f, true
			}
			f.Close() // removed meanwhile: lock the new one
			continue
		}
		f.Close()
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// pushedState is pg_wal/walgate/pushed for one gateway and cluster.
type pushedState struct {
	dir              string
	gateway, cluster string
}

// matching returns name's record if there is one and path is the very
// file it describes, for this gateway and cluster.
func (ps pushedState) matching(name, path string) (stateRecord, bool) {
	rec, err := readStateRecord(filepath.Join(ps.dir, name))
	return rec, err == nil && rec.proves(name, path, ps.gateway, ps.cluster)
}

func (c *Client) pushedState(walDir string) pushedState {
	return pushedState{dir: filepath.Join(walDir, StateDir, "pushed"), gateway: c.cfg.gatewayKey(), cluster: c.cfg.Cluster}
}

func (ps pushedState) record(rec stateRecord) {
	if err := makeStateDir(ps.dir); err != nil {
		return
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return
	}
	writeAtomic(ps.dir, rec.Name, data) // no record: archived again later
}

func (ps pushedState) remove(name string) { os.Remove(filepath.Join(ps.dir, name)) }

// clean removes records that can no longer serve: their name is not
// ready any more (PostgreSQL marked it done, or removed it), their file is
// gone or changed, or they are not WAL file names; the locks of names no
// longer ready; and temporary files a killed process left. It looks up in
// archive_status only the names it holds, a few: archive_status itself
// may list thousands of segments waiting.
func (ps pushedState) clean(statusDir string) {
	// Records first, their names' status after: a record is written only
	// for a ready name, which stays ready until the archiver is done with
	// it, so no record is taken for stale while it can still serve.
	recs, err := os.ReadDir(ps.dir)
	if err != nil {
		return
	}
	isReady := func(name string) bool { return exists(filepath.Join(statusDir, name+".ready")) }
	walDir := filepath.Dir(filepath.Dir(ps.dir))
	for _, e := range recs {
		n := e.Name()
		if n == aheadLock {
			continue
		}
		if strings.HasPrefix(n, ".tmp-") {
			removeIfOld(filepath.Join(ps.dir, n))
			continue
		}
		if base, ok := strings.CutSuffix(n, lockSuffix); ok {
			// A lock no push needs any more, removed under itself.
			if _, err := pgname.ParseWALFile(base); err == nil && !isReady(base) {
				if unlock, ok := lockName(ps.dir, n, 0); ok {
					os.Remove(filepath.Join(ps.dir, n))
					unlock()
				}
				continue
			}
		}
		if _, err := pgname.ParseWALFile(n); err != nil {
			removeIfOld(filepath.Join(ps.dir, n))
			continue
		}
		if !isReady(n) {
			ps.remove(n)
			continue
		}
		if _, ok := ps.matching(n, filepath.Join(walDir, n)); !ok {
			ps.remove(n)
		}
	}
}

// cleanOldPrefetch removes what restores ahead left in walDir over
// staleTemp ago: once a server archives, it has ended recovery (or, with
// archive_mode = always, a recent wal-fetch keeps its files younger).
func cleanOldPrefetch(walDir string) {
	dir := PrefetchDir(walDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		removeIfOld(filepath.Join(dir, e.Name()))
	}
}

// makeStateDir makes dir, pg_wal/walgate/X, and pg_wal/walgate if need be,
// but never pg_wal itself: a process that outlived a scratch restore (a
// drill's) must not bring its directory back.
func makeStateDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

// removeIfOld removes path when it was last changed over staleTemp ago:
// a younger one may belong to a process still running.
func removeIfOld(path string) {
	if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > staleTemp {
		os.RemoveAll(path)
	}
}

// writeAtomic makes dir/name hold data, or leaves it as it was: a
// temporary file is written, synced and renamed over name, and dir is
// synced.
func writeAtomic(dir, name string, data []byte) error {
	return writeReplacing(dir, name, data, true)
}

// writeReplacing makes dir/name hold data, or leaves it as it was, for
// every process: a temporary file is written and renamed over name. With
// durable, the temporary file is synced before the rename and dir after
// it, so that the outcome also survives a crash of the machine.
func writeReplacing(dir, name string, data []byte, durable bool) (err error) {
	tmp, err := os.CreateTemp(dir, ".tmp-"+name+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if durable {
		if err = tmp.Sync(); err != nil {
			return err
		}
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	return syncPath(dir)
}

// StartPushAhead runs exe (walgate-client) as "wal-push-ahead WALDIR NAME"
// in a new session, detached: its output goes nowhere and nobody waits for
// it, so archive_command returns as soon as its own segment is archived.
// The process inherits the environment; walDir is made absolute, since
// PostgreSQL passes %p relative to the data directory.
func StartPushAhead(exe, walDir, name string) error {
	abs, err := filepath.Abs(walDir)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "wal-push-ahead", abs, name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// ErrPushAheadArgs is returned for a wal-push-ahead call that is not the
// one StartPushAhead makes.
var ErrPushAheadArgs = errors.New("wal-push-ahead takes the absolute path of pg_wal and the name of the segment the archiver is on")

// ParsePushAheadArgs checks the arguments of wal-push-ahead.
func ParsePushAheadArgs(args []string) (walDir, name string, err error) {
	if len(args) != 2 || !filepath.IsAbs(args[0]) {
		return "", "", ErrPushAheadArgs
	}
	if f, err := pgname.ParseWALFile(args[1]); err != nil || f.Kind != pgname.Segment {
		return "", "", errors.Join(ErrPushAheadArgs, errors.New("not a segment name: "+strconv.Quote(args[1])))
	}
	return args[0], args[1], nil
}
