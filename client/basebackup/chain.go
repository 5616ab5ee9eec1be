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

// ChainRestore restores a delta chain so that every page is written once:
// the newest backup first, then each parent, down to the full backup. Only
// the files the newest backup lists are restored (a file missing there was
// deleted). A file the newest backup holds whole is done at once; a file
// it holds as an increment gets its final size and the increment's pages,
// and each older backup then adds only the pages nothing newer wrote, until
// a whole copy of the file fills the rest.
//
// Memory: a bitmap of written pages per file restored from increments, one
// bit per 8 KiB page (16 KiB per 1 GiB segment file), and the member names
// of the newest backup.
type ChainRestore struct {
	mu     sync.Mutex
	wanted map[string]bool // regular files of the newest backup
	files  map[string]*chainFile
}

type chainFile struct {
	size     int64 // final size
	written  []uint64
	complete bool
	mode     os.FileMode
	mtime    time.Time
}

func (f *chainFile) has(b int64) bool { return f.written[b/64]&(1<<(b%64)) != 0 }
func (f *chainFile) set(b int64)      { f.written[b/64] |= 1 << (b % 64) }

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
	c           *ChainRestore
	newest      bool
	incremented map[string]bool
}

// Level returns the ExtractOptions hook for one backup of the chain, given
// its files metadata; newest is true for the backup being restored.
func (c *ChainRestore) Level(fm FilesMetadata, newest bool) *ChainLevel {
	l := &ChainLevel{c: c, newest: newest, incremented: map[string]bool{}}
	for m, d := range fm.Files {
		if d.IsIncremented {
			l.incremented[m] = true
		}
	}
	return l
}

// NeededTars returns the data tars of fm (names inside the tar folder,
// sorted) holding a member the chain still has to write: an older backup's
// tar whose files are all done, or not restored at all, is not fetched.
func (c *ChainRestore) NeededTars(fm FilesMetadata) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var need []string
	for object, members := range fm.TarFileSets {
		if strings.HasPrefix(object, "pg_control.tar") || strings.HasPrefix(object, "backup_label.tar") {
			continue
		}
		for _, m := range members {
			if c.wanted[m] && (c.files[m] == nil || !c.files[m].complete) {
				need = append(need, object)
				break
			}
		}
	}
	sort.Strings(need)
	return need
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
		if f := c.files[m]; f == nil || !f.complete {
			miss = append(miss, m)
		}
	}
	sort.Strings(miss)
	return miss
}

// chainAction is what the extractor does with one regular-file member.
type chainAction int

const (
	chainSkip      chainAction = iota // not restored, or already complete
	chainWhole                        // first copy of the file, whole: write it normally
	chainIncrement                    // apply an increment
	chainFill                         // whole copy of a file newer increments touched: fill missing pages
)

func (l *ChainLevel) action(member string) (chainAction, *chainFile) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if !l.c.wanted[member] {
		return chainSkip, nil
	}
	f := l.c.files[member]
	switch {
	case f != nil && f.complete:
		return chainSkip, nil
	case l.incremented[member]:
		return chainIncrement, f
	case f != nil:
		return chainFill, f
	}
	return chainWhole, nil
}

func (l *ChainLevel) markComplete(member string, size int64) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	f := l.c.files[member]
	if f == nil {
		f = &chainFile{size: size}
		l.c.files[member] = f
	}
	f.complete, f.written = true, nil
}

// chainMember writes one regular-file member of a chain level. handled is
// false when the extractor should write the member as usual (a first,
// whole copy); it then calls markComplete.
func (x *extractor) chainMember(hdr *tar.Header, body io.Reader, root *os.Root, rel string, buf []byte) (handled bool, err error) {
	l := x.opts.Chain
	act, f := l.action(hdr.Name)
	switch act {
	case chainSkip:
		return true, nil
	case chainWhole:
		return false, nil
	}
	mode := os.FileMode(hdr.Mode).Perm()
	if act == chainIncrement {
		inc, err := ReadIncrementHeader(body, hdr.Size)
		if err != nil {
			return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		if f == nil {
			// The newest increment of this file: it sets the final size.
			f = &chainFile{size: inc.FileSize, mode: mode, mtime: hdr.ModTime}
			f.written = make([]uint64, (inc.FileSize/BlockSize+63)/64)
			l.c.mu.Lock()
			l.c.files[hdr.Name] = f
			l.c.mu.Unlock()
		}
		out, err := x.openChainFile(root, rel, hdr.Name, f)
		if err != nil {
			return true, err
		}
		page := buf[:BlockSize]
		nblocks := f.size / BlockSize
		for _, b := range inc.Blocks {
			if _, err := io.ReadFull(body, page); err != nil {
				out.Close()
				return true, fmt.Errorf("extract %s: %w: reading page %d: %v", hdr.Name, ErrBadIncrement, b, err)
			}
			if int64(b) >= nblocks || f.has(int64(b)) {
				continue
			}
			if _, err := out.WriteAt(page, int64(b)*BlockSize); err != nil {
				out.Close()
				return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
			}
			f.set(int64(b))
		}
		return true, x.closeChainFile(out, root, rel, hdr.Name, f)
	}
	// chainFill: a whole copy under pages newer increments wrote.
	out, err := x.openChainFile(root, rel, hdr.Name, f)
	if err != nil {
		return true, err
	}
	var off int64
	for off < hdr.Size {
		chunk := buf[:min(int64(len(buf)), hdr.Size-off)]
		if _, err := io.ReadFull(body, chunk); err != nil {
			out.Close()
			return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		// Runs of pages no newer backup wrote go out in one write each.
		limit := min(int64(len(chunk)), max(f.size-off, 0))
		for p := int64(0); p < limit; {
			if f.has((off + p) / BlockSize) {
				p += BlockSize
				continue
			}
			end := p
			for end < limit && !f.has((off+end)/BlockSize) {
				end = min(end+BlockSize, limit)
			}
			if _, err := out.WriteAt(chunk[p:end], off+p); err != nil {
				out.Close()
				return true, fmt.Errorf("extract %s: %w", hdr.Name, err)
			}
			p = end
		}
		off += int64(len(chunk))
	}
	if err := x.closeChainFile(out, root, rel, hdr.Name, f); err != nil {
		return true, err
	}
	l.markComplete(hdr.Name, f.size)
	return true, nil
}

// openChainFile opens (creating it at its final size the first time) a
// file restored from increments.
func (x *extractor) openChainFile(root *os.Root, rel, name string, f *chainFile) (*os.File, error) {
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", name, err)
	}
	if fi, err := out.Stat(); err == nil && fi.Size() != f.size {
		if err := out.Truncate(f.size); err != nil {
			out.Close()
			return nil, fmt.Errorf("extract %s: %w", name, err)
		}
	}
	return out, nil
}

func (x *extractor) closeChainFile(out *os.File, root *os.Root, rel, name string, f *chainFile) error {
	if err := out.Chmod(f.mode); err != nil {
		out.Close()
		return fmt.Errorf("extract %s: %w", name, err)
	}
	if x.opts.Fsync {
		if err := out.Sync(); err != nil {
			out.Close()
			return fmt.Errorf("extract %s: fsync: %w", name, err)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return root.Chtimes(rel, f.mtime, f.mtime)
}
