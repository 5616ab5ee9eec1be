package basebackup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrUnsafeMember is wrapped by ExtractTar's error for a member it refuses
// to write: a name that could leave the target directory, or a type other
// than a regular file or a directory.
var ErrUnsafeMember = errors.New("unsafe tar member")

// ExtractOptions tunes ExtractTar.
type ExtractOptions struct {
	// Fsync flushes every file written, and at the end every directory
	// that received entries, to stable storage.
	Fsync bool
	// Writeback starts each file's disk write while the restore goes on
	// (see writebackWriter), for a caller that flushes everything at the
	// end instead of file by file (Fsync false, then syncfs).
	Writeback bool
	// TablespaceDir, when set, gives the directory that replaces
	// pg_tblspc/<oid> for the tablespace oid: members named
	// pg_tblspc/<oid>/rest are written to TablespaceDir(oid)/rest, the
	// member pg_tblspc/<oid> itself sets that directory's mode and time.
	// It is called once per oid; an error stops the extraction. When nil,
	// such members are written under dir like any other (the caller then
	// owns the tablespace links).
	TablespaceDir func(oid string) (string, error)
	// Chain, when set, extracts one backup of a delta chain (see
	// ChainRestore): members the chain does not need are skipped,
	// increments are applied, and older whole copies only fill pages no
	// newer backup wrote.
	Chain *ChainLevel

	// startWriteback, when set, replaces startFileWriteback (tests
	// record what would be started).
	startWriteback func(f *os.File, off, n int64) error
}

// ExtractTar reads a tar stream and writes its members under dir, which
// must exist, and returns the member names written, in stream order.
//
// A member name loses one leading "/" (WAL-G names data members
// "/base/5/1234"); what remains must be a relative path without "." or ".."
// components, or the member is refused with an error wrapping
// ErrUnsafeMember, as is every member that is not a regular file or a
// directory (symbolic and hard links, devices, FIFOs, GNU sparse files in
// either the old or the PAX form, global headers): PostgreSQL's tablespace links are never stored in the tars, and
// nothing else needs them. All writes go through os.Root, so a symbolic link
// already present under dir cannot lead a write outside it either.
//
// Missing parent directories are created with mode 0700. Files are created
// or truncated, then get the member's permission bits and modification
// time; directories get theirs once the whole stream is written (so that a
// read-only mode or an old time is not undone by the files written into
// them); a later tar writing into the same directory changes its time
// again, which PostgreSQL does not mind. Ownership is not restored. The member "/" (the data directory
// itself) sets dir's mode and time.
//
// On error the members written so far stay on disk; the caller removes the
// restore directory.
func ExtractTar(r io.Reader, dir string, opts ExtractOptions) ([]string, error) {
	x := &extractor{opts: opts, roots: map[string]*os.Root{}, tsDirs: map[string]*os.Root{}, parents: map[rootPath]*os.Root{}, toSync: map[rootPath]bool{}}
	defer x.close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	x.roots[""] = root
	tr := tar.NewReader(r)
	buf := make([]byte, copyBufferSize)
	var written []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return written, fmt.Errorf("extract: read tar: %w", err)
		}
		if err := x.member(hdr, tr, buf); err != nil {
			return written, err
		}
		written = append(written, hdr.Name)
	}
	if err := x.finishDirs(); err != nil {
		return written, err
	}
	return written, nil
}

// CleanMemberName returns the path a tar member is written to, relative to
// the extraction directory ("." for the member "/"), or an error wrapping
// ErrUnsafeMember if the name could leave it.
func CleanMemberName(name string) (string, error) {
	rel := strings.TrimPrefix(name, "/")
	rel = strings.TrimSuffix(rel, "/") // directories may carry a trailing slash
	if rel == "" {
		if name == "/" {
			return ".", nil
		}
		return "", fmt.Errorf("%w: empty name %q", ErrUnsafeMember, name)
	}
	if strings.ContainsRune(rel, 0) || strings.ContainsRune(rel, '\\') {
		return "", fmt.Errorf("%w: %q contains a NUL or backslash", ErrUnsafeMember, name)
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return "", fmt.Errorf("%w: %q is absolute or has an empty, . or .. component", ErrUnsafeMember, name)
		}
	}
	return rel, nil
}

type extractor struct {
	opts   ExtractOptions
	roots  map[string]*os.Root // "" is the extraction directory
	tsDirs map[string]*os.Root // by tablespace oid
	// parents are the directories files were written in, opened once:
	// a file is then opened, and its time set, by its name alone, not by
	// a walk of its whole path each time.
	parents map[rootPath]*os.Root
	dirs    []pendingDir      // directory members, in stream order
	toSync  map[rootPath]bool // directories that received entries (Fsync)
}

// pendingDir is a directory member whose mode and time are set at the end.
type pendingDir struct {
	at    rootPath
	mode  os.FileMode
	mtime time.Time
}

// rootPath is a path inside one of the extractor's roots.
type rootPath struct {
	root *os.Root
	rel  string
}

func (x *extractor) close() {
	for _, r := range x.parents {
		r.Close()
	}
	for _, r := range x.roots {
		r.Close()
	}
	for _, r := range x.tsDirs {
		r.Close()
	}
}

// target resolves a member name to the root it is written in and the
// path inside that root.
func (x *extractor) target(name string) (*os.Root, string, error) {
	rel, err := CleanMemberName(name)
	if err != nil {
		return nil, "", err
	}
	root := x.roots[""]
	if x.opts.TablespaceDir == nil {
		return root, rel, nil
	}
	rest, ok := strings.CutPrefix(rel, tablespaceDir+"/")
	if !ok {
		return root, rel, nil
	}
	oid, inner, _ := strings.Cut(rest, "/")
	if inner == "" {
		inner = "."
	}
	ts, ok := x.tsDirs[oid]
	if !ok {
		loc, err := x.opts.TablespaceDir(oid)
		if err != nil {
			return nil, "", fmt.Errorf("extract %s: tablespace %s: %w", name, oid, err)
		}
		if err := os.MkdirAll(loc, 0o700); err != nil {
			return nil, "", fmt.Errorf("extract %s: tablespace %s: %w", name, oid, err)
		}
		if ts, err = os.OpenRoot(loc); err != nil {
			return nil, "", fmt.Errorf("extract %s: tablespace %s: %w", name, oid, err)
		}
		x.tsDirs[oid] = ts
	}
	return ts, inner, nil
}

func (x *extractor) member(hdr *tar.Header, body io.Reader, buf []byte) error {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	default:
		return fmt.Errorf("extract %q: %w: type %q (only regular files and directories are allowed)", hdr.Name, ErrUnsafeMember, hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			// A sparse map could expand a small tar into a huge file.
			return fmt.Errorf("extract %q: %w: sparse file", hdr.Name, ErrUnsafeMember)
		}
	}
	root, rel, err := x.target(hdr.Name)
	if err != nil {
		if errors.Is(err, ErrUnsafeMember) {
			return fmt.Errorf("extract: %w", err)
		}
		return err
	}
	mode := os.FileMode(hdr.Mode).Perm()
	if hdr.Typeflag == tar.TypeDir && x.opts.Chain != nil {
		if !x.opts.Chain.newest {
			return nil // the newest backup made every directory
		}
		x.opts.Chain.markComplete(hdr.Name, 0)
	}
	if hdr.Typeflag == tar.TypeDir {
		if err := root.MkdirAll(rel, 0o700); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		x.dirs = append(x.dirs, pendingDir{at: rootPath{root, rel}, mode: mode, mtime: hdr.ModTime})
		if x.opts.Fsync {
			x.toSync[rootPath{root, rel}] = true
			x.toSync[rootPath{root, filepath.Dir(rel)}] = true
		}
		return nil
	}
	dir, name := root, rel // the file's directory, its name there
	if parent := filepath.Dir(rel); parent != "." {
		if dir, err = x.parent(root, parent); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		name = filepath.Base(rel)
	}
	if x.opts.Chain != nil {
		handled, err := x.chainMember(hdr, body, dir, name, buf)
		if handled || err != nil {
			return err
		}
		defer x.opts.Chain.markComplete(hdr.Name, hdr.Size)
	}
	f, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	var dst io.Writer = f
	var wb *writebackWriter
	if x.opts.Writeback {
		wb = x.newWriteback(f)
		dst = struct{ io.Writer }{wb}
	}
	if _, err := io.CopyBuffer(dst, body, buf); err != nil {
		f.Close()
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	if wb != nil {
		wb.startWriteback()
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	if x.opts.Fsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("extract %s: fsync: %w", hdr.Name, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	if err := dir.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	if x.opts.Fsync {
		x.toSync[rootPath{root, filepath.Dir(rel)}] = true
	}
	return nil
}

// maxOpenParents bounds the directories one extraction keeps open: a data
// directory with thousands of databases must not cost a descriptor each
// (tars list a directory's files together, so a few suffice).
const maxOpenParents = 64

// parent returns the directory rel inside root, made if need be, opened
// once while it stays among the maxOpenParents kept open.
func (x *extractor) parent(root *os.Root, rel string) (*os.Root, error) {
	k := rootPath{root, rel}
	if d, ok := x.parents[k]; ok {
		return d, nil
	}
	if len(x.parents) >= maxOpenParents {
		for pk, d := range x.parents {
			d.Close()
			delete(x.parents, pk)
		}
	}
	if err := root.MkdirAll(rel, 0o700); err != nil {
		return nil, err
	}
	d, err := root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	x.parents[k] = d
	return d, nil
}

// newWriteback returns the writebackWriter of a file this extraction
// writes from its start.
func (x *extractor) newWriteback(f *os.File) *writebackWriter {
	wb := newWritebackWriter(f, 0)
	if x.opts.startWriteback != nil {
		wb.start = x.opts.startWriteback
	}
	return wb
}

// finishDirs fsyncs the directories that received entries (with Fsync),
// then sets the directory members' modes and times, deepest first.
func (x *extractor) finishDirs() error {
	for d := range x.toSync {
		if err := syncDir(d.root, d.rel); err != nil {
			return err
		}
	}
	sort.SliceStable(x.dirs, func(i, j int) bool {
		return strings.Count(x.dirs[i].at.rel, "/") > strings.Count(x.dirs[j].at.rel, "/")
	})
	for _, d := range x.dirs {
		if err := d.at.root.Chmod(d.at.rel, d.mode); err != nil {
			return fmt.Errorf("extract: set mode of %s: %w", d.at.rel, err)
		}
		if err := d.at.root.Chtimes(d.at.rel, d.mtime, d.mtime); err != nil {
			return fmt.Errorf("extract: set time of %s: %w", d.at.rel, err)
		}
	}
	return nil
}

func syncDir(root *os.Root, rel string) error {
	d, err := root.Open(rel)
	if err != nil {
		return fmt.Errorf("extract: fsync directory %s: %w", rel, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("extract: fsync directory %s: %w", rel, err)
	}
	return nil
}
