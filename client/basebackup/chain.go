package basebackup

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// ChainRestore restores a delta chain so that every page is written once
// and each file's newest version wins, whatever order the backups' tars
// are read in: they may be fetched all at once. Only the files the newest
// backup lists are restored (a file missing there was deleted). A file is
// taken from the newest backup holding it whole and from the increments
// of the backups newer than that one; older backups' copies of it are not
// written, and a tar holding nothing else is not needed at all
// (ChainLevel.Tars). A file the newest backup holds whole is written at
// once. A file restored from increments gets its final size from the
// newest increment, each increment's pages unless a newer increment wrote
// the same page, and the whole copy fills the pages no increment wrote.
//
// Levels are registered newest first (Level); their tars may then be
// extracted in any order and concurrently, or one backup after the other
// (NeededTars then also drops tars whose files are already complete).
//
// Memory: per file restored from increments, one bitmap per backup
// holding an increment of it, one bit per 8 KiB page (16 KiB per 1 GiB
// segment file); the member names of every backup of the chain.
type ChainRestore struct {
	mu     sync.Mutex
	wanted map[string]bool // files and directories of the newest backup
	files  map[string]*chainFile
	levels []*ChainLevel // newest first
}

type chainFile struct {
	mu       sync.Mutex
	size     int64 // final size; -1 until the newest holder's member is read
	written  map[int][]uint64
	complete bool
	meta     bool // mode and mtime are the newest holder's
	mode     os.FileMode
	mtime    time.Time
}

// newerHas reports whether an increment of a backup newer than level
// wrote page b.
func (f *chainFile) newerHas(level int, b int64) bool {
	for l, bits := range f.written {
		if l < level && b/64 < int64(len(bits)) && bits[b/64]&(1<<(b%64)) != 0 {
			return true
		}
	}
	return false
}

// anyHas reports whether any increment wrote page b.
func (f *chainFile) anyHas(b int64) bool { return f.newerHas(int(^uint(0)>>1), b) }

func (f *chainFile) set(level int, b int64) {
	bits := f.written[level]
	if need := int(b/64) + 1; len(bits) < need {
		bits = append(bits, make([]uint64, need-len(bits))...)
	}
	bits[b/64] |= 1 << (b % 64)
	f.written[level] = bits
}

// NewChainRestore starts the restore of a chain whose newest backup has
// the files metadata newest.
func NewChainRestore(newest FilesMetadata) *ChainRestore {
	c := &ChainRestore{wanted: map[string]bool{}, files: map[string]*chainFile{}}
	for m := range newest.Files {
		c.wanted[m] = true
	}
	return c
}

// ChainLevel is one backup of a chain being applied; it plugs into
// ExtractOptions.Chain.
type ChainLevel struct {
	c      *ChainRestore
	index  int // 0 for the newest backup
	newest bool
	fm     FilesMetadata
}

// Level registers the next older backup of the chain, given its files
// metadata, and returns its ExtractOptions hook; newest is true for the
// backup being restored, which is registered first.
func (c *ChainRestore) Level(fm FilesMetadata, newest bool) *ChainLevel {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := &ChainLevel{c: c, index: len(c.levels), newest: newest, fm: fm}
	c.levels = append(c.levels, l)
	return l
}

// holds reports whether the backup stores member in its tars: whole,
// or as an increment when incremented is true.
func (l *ChainLevel) holds(member string) (held, incremented bool) {
	d, ok := l.fm.Files[member]
	if !ok || d.IsSkipped {
		return false, false
	}
	return true, d.IsIncremented
}

// plan says what this backup contributes to member: nothing (a newer
// backup holds it whole, or it is not restored), its whole copy, or its
// increment; newestHolder is true when no newer backup stores it at all,
// newerIncrements when a newer one holds an increment of it.
func (l *ChainLevel) plan(member string) (act chainAction, newestHolder bool) {
	c := l.c
	c.mu.Lock()
	levels := c.levels
	wanted := c.wanted[member]
	c.mu.Unlock()
	// The member is in this backup's tar: held, whatever the metadata
	// says, which only tells whether it is an increment.
	inc := l.fm.Files[member].IsIncremented
	if !wanted {
		return chainSkip, false
	}
	newestHolder = true
	newerIncrements := false
	for _, n := range levels[:l.index] {
		h, i := n.holds(member)
		if !h {
			continue
		}
		if !i {
			return chainSkip, false
		}
		newestHolder, newerIncrements = false, true
	}
	switch {
	case inc:
		return chainIncrement, newestHolder
	case newerIncrements:
		return chainFill, false
	}
	return chainWhole, newestHolder
}

// Tars returns the data tars of this backup (names inside the tar folder,
// sorted) holding a member the chain needs from it: a tar whose files are
// all held whole by newer backups, or not restored at all, is not needed.
// All levels newer than this one must be registered.
func (l *ChainLevel) Tars() []string {
	var need []string
	for object, members := range l.fm.TarFileSets {
		if strings.HasPrefix(object, "pg_control.tar") || strings.HasPrefix(object, "backup_label.tar") {
			continue
		}
		for _, m := range members {
			if act, _ := l.plan(m); act != chainSkip {
				need = append(need, object)
				break
			}
		}
	}
	sort.Strings(need)
	return need
}

// NeededTars returns the data tars of fm (names inside the tar folder,
// sorted) holding a member the chain still has to write: a tar whose
// files are all complete, or not restored at all, is not fetched.
func (c *ChainRestore) NeededTars(fm FilesMetadata) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var need []string
	for object, members := range fm.TarFileSets {
		if strings.HasPrefix(object, "pg_control.tar") || strings.HasPrefix(object, "backup_label.tar") {
			continue
		}
		for _, m := range members {
			if c.wanted[m] && !c.isComplete(m) {
				need = append(need, object)
				break
			}
		}
	}
	sort.Strings(need)
	return need
}

// isComplete: c.mu is held.
func (c *ChainRestore) isComplete(m string) bool {
	f := c.files[m]
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.complete
}

// Missing returns the files of the newest backup that no backup of the
// chain held whole: after the full backup is applied it must be empty, or
// the chain is broken.
func (c *ChainRestore) Missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var miss []string
	for m := range c.wanted {
		if strings.HasSuffix(m, "/global/pg_control") || m == "/global/pg_control" {
			continue // restored from its own tar
		}
		if !c.isComplete(m) {
			miss = append(miss, m)
		}
	}
	sort.Strings(miss)
	return miss
}

// chainAction is what the extractor does with one regular-file member.
type chainAction int

const (
	chainSkip      chainAction = iota // not restored, or a newer backup holds it whole
	chainWhole                        // the file's only copy to write: write it normally
	chainIncrement                    // apply an increment
	chainFill                         // whole copy of a file newer increments touched: fill the other pages
)

// file returns member's state, made on first use.
func (l *ChainLevel) file(member string) *chainFile {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	f := l.c.files[member]
	if f == nil {
		f = &chainFile{size: -1, written: map[int][]uint64{}}
		l.c.files[member] = f
	}
	return f
}

func (l *ChainLevel) markComplete(member string, size int64) {
	f := l.file(member)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.complete = true
}

// chainMember writes one regular-file member of a chain level. handled is
// false when the extractor should write the member as usual (the file's
// only copy to write); it then calls markComplete.
func (x *extractor) chainMember(hdr *tar.Header, body io.Reader, root *os.Root, rel string, buf []byte) (handled bool, err error) {
	l := x.opts.Chain
	act, newestHolder := l.plan(hdr.Name)
	switch act {
	case chainSkip:
		return true, nil
	case chainWhole:
		return false, nil
	}
	f := l.file(hdr.Name)
	mode := os.FileMode(hdr.Mode).Perm()
	if act == chainIncrement {
		inc, err := ReadIncrementHeader(body, hdr.Size)
		if err != nil {
			return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		if newestHolder {
			// The newest increment of this file: it sets the final size,
			// mode and time.
			f.mu.Lock()
			f.size, f.meta, f.mode, f.mtime = inc.FileSize, true, mode, hdr.ModTime
			f.mu.Unlock()
		}
		out, err := x.openChainFile(root, rel, hdr.Name, f)
		if err != nil {
			return true, err
		}
		// Consecutive pages are written together, up to len(buf) bytes
		// at a time: one write per run instead of one per page.
		run, first := buf[:0], int64(0)
		for _, b := range inc.Blocks {
			if len(run) > 0 && (int64(b) != first+int64(len(run)/BlockSize) || len(run)+BlockSize > len(buf)) {
				if err := writeIncrementRun(out, f, l.index, first, run); err != nil {
					out.Close()
					return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
				}
				run = buf[:0]
			}
			if len(run) == 0 {
				first = int64(b)
			}
			page := buf[len(run) : len(run)+BlockSize]
			if _, err := io.ReadFull(body, page); err != nil {
				out.Close()
				return true, fmt.Errorf("extract %s: %w: reading page %d: %v", hdr.Name, ErrBadIncrement, b, err)
			}
			run = buf[:len(run)+BlockSize]
		}
		if err := writeIncrementRun(out, f, l.index, first, run); err != nil {
			out.Close()
			return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		return true, x.closeChainFile(out, root, rel, hdr.Name, f)
	}
	// chainFill: a whole copy under pages newer increments wrote.
	out, err := x.openChainFile(root, rel, hdr.Name, f)
	if err != nil {
		return true, err
	}
	var wb *writebackWriter
	if x.opts.Writeback {
		wb = x.newWriteback(out)
	}
	var off int64
	for off < hdr.Size {
		chunk := buf[:min(int64(len(buf)), hdr.Size-off)]
		if _, err := io.ReadFull(body, chunk); err != nil {
			out.Close()
			return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		// Runs of pages no increment wrote go out in one write each.
		f.mu.Lock()
		limit := int64(len(chunk))
		if f.size >= 0 {
			limit = min(limit, max(f.size-off, 0))
		}
		for p := int64(0); p < limit; {
			if f.anyHas((off + p) / BlockSize) {
				p += BlockSize
				continue
			}
			end := p
			for end < limit && !f.anyHas((off+end)/BlockSize) {
				end = min(end+BlockSize, limit)
			}
			if _, err := out.WriteAt(chunk[p:end], off+p); err != nil {
				f.mu.Unlock()
				out.Close()
				return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
			}
			p = end
		}
		f.mu.Unlock()
		off += int64(len(chunk))
		if wb != nil {
			wb.advance(int64(len(chunk)))
		}
	}
	if wb != nil {
		wb.startWriteback()
	}
	if err := x.closeChainFile(out, root, rel, hdr.Name, f); err != nil {
		return true, err
	}
	l.markComplete(hdr.Name, hdr.Size)
	return true, nil
}

// writeIncrementRun writes the pages of run, an increment's pages of
// consecutive blocks from block first, that the chain still takes from
// this level: those inside the file's final size that no newer increment
// wrote. The check and the write are one step under f.mu, so that a newer
// level's page is never overwritten.
func writeIncrementRun(out *os.File, f *chainFile, level int, first int64, run []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := int64(len(run) / BlockSize)
	take := func(i int64) bool {
		b := first + i
		return !(f.size >= 0 && b >= f.size/BlockSize) && !f.newerHas(level, b)
	}
	for i := int64(0); i < n; {
		if !take(i) {
			i++
			continue
		}
		end := i + 1
		for end < n && take(end) {
			end++
		}
		if _, err := out.WriteAt(run[i*BlockSize:end*BlockSize], (first+i)*BlockSize); err != nil {
			return err
		}
		for j := i; j < end; j++ {
			f.set(level, first+j)
		}
		i = end
	}
	return nil
}

// openChainFile opens (creating it the first time) a file restored from
// increments, cut or extended to its final size once that is known.
func (x *extractor) openChainFile(root *os.Root, rel, name string, f *chainFile) (*os.File, error) {
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.size < 0 {
		return out, nil
	}
	if fi, err := out.Stat(); err == nil && fi.Size() != f.size {
		if err := out.Truncate(f.size); err != nil {
			out.Close()
			return nil, fmt.Errorf("extract %s: %w", name, err)
		}
	}
	return out, nil
}

// closeChainFile closes a file restored from increments. Whichever member
// of the file closes last after the newest increment was read leaves the
// newest backup's mode and time on it.
func (x *extractor) closeChainFile(out *os.File, root *os.Root, rel, name string, f *chainFile) error {
	if x.opts.Fsync {
		if err := out.Sync(); err != nil {
			out.Close()
			return fmt.Errorf("extract %s: fsync: %w", name, err)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.meta {
		return nil
	}
	if err := root.Chmod(rel, f.mode); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return root.Chtimes(rel, f.mtime, f.mtime)
}
