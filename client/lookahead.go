package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
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

// PushWALLookahead archives the WAL file at path as PushWAL does and, when
// it is a full segment, also archives up to lookahead further segments of
// the same timeline that PostgreSQL has marked ready (archive_status/NAME.ready)
// in parallel. Each of those that the gateway acknowledged is recorded in
// pg_wal/walgate/pushed; when the archiver later hands over one of them,
// the call returns at once if the file is provably the one archived
// (device, inode, size, modification time and name match the record, and
// the gateway and cluster are the same), and archives it normally
// otherwise.
//
// The result and error are those of path alone: a failed lookahead push
// only leaves no record. Nothing here touches archive_status: PostgreSQL
// alone marks a file done. A record is written (temp file, fsync, rename,
// fsync of the directory) only after the gateway's acknowledgement, so a
// process killed at any point leaves either no record (the segment is
// archived again later) or a true one.
func (c *Client) PushWALLookahead(ctx context.Context, path string, lookahead int) (PushResult, error) {
	name := filepath.Base(path)
	wf, err := protocol.ValidateWALName(name)
	if err != nil {
		return c.PushWAL(ctx, path)
	}
	walDir := filepath.Dir(path)
	ps := pushedState{dir: filepath.Join(walDir, StateDir, "pushed"), gateway: c.cfg.gatewayKey(), cluster: c.cfg.Cluster}
	ready := ps.clean(filepath.Join(walDir, "archive_status"))
	cleanOldPrefetch(walDir)
	if rec, ok := ps.matching(name, path); ok {
		// The archiver will mark it done; should it ask again after a
		// crash, the segment is archived again (the gateway answers
		// "exists" for the same content).
		ps.remove(name)
		return PushResult{Name: name, Status: "pushed ahead", Size: rec.Size, PlainSize: rec.Size, SHA256: rec.SHA256}, nil
	}
	var ahead []string
	if lookahead > 0 && wf.Kind == pgname.Segment {
		ahead = lookaheadCandidates(wf, ready, lookahead, func(n string) bool {
			_, ok := ps.matching(n, filepath.Join(walDir, n))
			return ok
		})
	}
	var wg sync.WaitGroup
	for _, n := range ahead {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.pushAhead(ctx, ps, filepath.Join(walDir, n))
		}()
	}
	// Alone, the push may use both cores; beside pushes ahead, one.
	res, err := c.pushWAL(ctx, path, len(ahead) == 0)
	wg.Wait()
	return res, err
}

// lookaheadCandidates picks, from the names with a ".ready" file, the full
// segments of cur's timeline after cur, oldest first, at most n, leaving
// out those already recorded. Timeline history files, partial segments
// and backup history files are left to the archiver, which hands them over
// in its own order.
func lookaheadCandidates(cur pgname.WALFile, ready []string, n int, recorded func(string) bool) []string {
	var out []string
	for _, r := range ready {
		f, err := pgname.ParseWALFile(r)
		// Segment names of one timeline compare as their numbers do,
		// whatever the segment size: fixed-width upper-case hex.
		if err != nil || f.Kind != pgname.Segment || f.Timeline != cur.Timeline || r <= cur.Name {
			continue
		}
		if recorded(r) {
			continue
		}
		out = append(out, r)
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// pushAhead archives one segment ahead of the archiver and records it
// when the gateway acknowledged it and the file did not change meanwhile.
func (c *Client) pushAhead(ctx context.Context, ps pushedState, path string) {
	before, ok := statIdentity(path)
	if !ok {
		return
	}
	res, err := c.pushWAL(ctx, path, false)
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

// clean lists the names archive_status marks ready and removes records
// that can no longer serve: their name is not ready any more (PostgreSQL
// marked it done, or removed it), their file is gone or changed, or they
// are not WAL file names; and temporary files a killed process left.
func (ps pushedState) clean(statusDir string) (ready []string) {
	entries, _ := os.ReadDir(statusDir)
	isReady := map[string]bool{}
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".ready"); ok {
			ready = append(ready, n)
			isReady[n] = true
		}
	}
	recs, err := os.ReadDir(ps.dir)
	if err != nil {
		return ready
	}
	walDir := filepath.Dir(filepath.Dir(ps.dir))
	for _, e := range recs {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") {
			removeIfOld(filepath.Join(ps.dir, n))
			continue
		}
		if _, err := pgname.ParseWALFile(n); err != nil {
			removeIfOld(filepath.Join(ps.dir, n))
			continue
		}
		if !isReady[n] {
			ps.remove(n)
			continue
		}
		if _, ok := ps.matching(n, filepath.Join(walDir, n)); !ok {
			ps.remove(n)
		}
	}
	return ready
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
