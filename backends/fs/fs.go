package fs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walgate/walgate/backends"
)

const (
	// tempPrefix starts the name of every file a Put is still writing. Keys
	// whose segments start with it are refused, List skips such files and
	// CleanTemp removes them.
	tempPrefix = ".walgate-tmp-"
	// filePerm and dirPerm are the modes objects and directories are
	// created with (before the umask).
	filePerm = 0o640
	dirPerm  = 0o750
	// copyBufferSize bounds the memory one Put uses for data.
	copyBufferSize = 256 << 10
	// maxNameLen is the longest file name (one key segment) the kernel takes.
	maxNameLen = 255
	// tempAttempts bounds how often Put retries creating its temp file when
	// a concurrent Delete removed an empty parent directory under it.
	tempAttempts = 10
)

// errClosed is returned by every method called after Close.
var errClosed = errors.New("backend is closed")

// Options tune a Backend. The zero value is the right choice on a local
// filesystem with extended attributes (ext4, xfs, btrfs, zfs).
type Options struct {
	// IgnoreMetadata stores objects without their metadata: Put drops
	// PutOptions.Metadata (after validating it) and Stat and List return
	// none. Set it only for a filesystem without user extended attributes
	// (some NFS and FUSE mounts); otherwise Put with metadata fails there
	// with an error wrapping backends.ErrUnsupported.
	IgnoreMetadata bool
	// Now is the clock CleanTemp measures the age of temp files against;
	// nil means time.Now.
	Now func() time.Time
}

// Backend stores objects as files under a root directory. See the package
// documentation. It is safe for concurrent use, also by several processes
// sharing one root.
type Backend struct {
	root   string // absolute, symlinks resolved: what every walk starts from
	name   string // "fs:" + the absolute root as configured
	opts   Options
	closed atomic.Bool
	// observe, when set (by tests only), is told of every durability step
	// before it runs and may fail it instead; see step.
	observe func(op fileOp, rel string) error
}

// fileOp names a step that an object's durability depends on.
type fileOp string

const (
	opMkdir   fileOp = "mkdir"     // a directory on the key's path is made
	opWrite   fileOp = "write"     // the data goes into the temp file
	opSync    fileOp = "fsync"     // the temp file is flushed
	opRename  fileOp = "rename"    // the temp file replaces the object
	opLink    fileOp = "link"      // the temp file is linked in (IfNotExists)
	opUnlink  fileOp = "unlink"    // a name is removed
	opSyncDir fileOp = "fsync-dir" // a directory's entries are flushed
)

// step runs do, one durability step on rel (a path relative to the root,
// "." for the root itself). Tests observe the order of steps, and fail
// steps, through b.observe.
func (b *Backend) step(op fileOp, rel string, do func() error) error {
	if b.observe != nil {
		if err := b.observe(op, rel); err != nil {
			return err
		}
	}
	return do()
}

// relPath is the path of segs relative to the root.
func relPath(segs []string) string {
	if len(segs) == 0 {
		return "."
	}
	return strings.Join(segs, "/")
}

var _ backends.Backend = (*Backend)(nil)

// New returns a Backend storing objects under root, which must be an
// existing directory (a missing root usually means a missing mount, so it is
// not created). A symbolic link naming the root itself is resolved once,
// here; links below the root are never followed.
func New(root string, opts Options) (*Backend, error) {
	if root == "" {
		return nil, errors.New("fs: root directory is empty")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fs: root %q: %w", root, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("fs: root %q: %w", root, err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, fmt.Errorf("fs: root %q: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fs: root %q is not a directory", root)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Backend{root: resolved, name: "fs:" + abs, opts: opts}, nil
}

// Name returns "fs:" and the absolute root directory.
func (b *Backend) Name() string { return b.name }

// Close marks the backend closed; later calls fail. The fs backend holds no
// resources between calls.
func (b *Backend) Close() error {
	b.closed.Store(true)
	return nil
}

func (b *Backend) checkOpen() error {
	if b.closed.Load() {
		return errClosed
	}
	return nil
}

// opErr wraps err with the operation and key, as every backend does.
func opErr(op, key string, err error) error {
	return fmt.Errorf("fs %s %q: %w", op, key, err)
}

// splitKey checks key against the shared grammar and the fs backend's own
// limits, and returns its segments.
func splitKey(key string) ([]string, error) {
	if err := backends.ValidateKey(key); err != nil {
		return nil, err
	}
	segs := strings.Split(key, "/")
	for _, s := range segs {
		if strings.HasPrefix(s, tempPrefix) {
			return nil, fmt.Errorf("%w: segment %q starts with %q, which the fs backend reserves for temp files",
				backends.ErrInvalidKey, s, tempPrefix)
		}
		if len(s) > maxNameLen {
			return nil, fmt.Errorf("segment of %d bytes is longer than a file name may be (%d): %w",
				len(s), maxNameLen, backends.ErrUnsupported)
		}
	}
	return segs, nil
}

// Put stores r under key: temp file, fsync, rename (or link with
// IfNotExists), fsync of the directory. See backends.Backend.
//
// One failure breaks the all-or-nothing rule: if syncing the directory fails
// after the rename, the object may be visible although Put returns an error.
func (b *Backend) Put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	info, err := b.put(ctx, key, r, size, opts)
	if err != nil {
		return backends.ObjectInfo{}, opErr("put", key, err)
	}
	return info, nil
}

func (b *Backend) put(ctx context.Context, key string, r io.Reader, size int64, opts backends.PutOptions) (backends.ObjectInfo, error) {
	if err := b.checkOpen(); err != nil {
		return backends.ObjectInfo{}, err
	}
	segs, err := splitKey(key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := validateMetadata(opts.Metadata); err != nil {
		return backends.ObjectInfo{}, err
	}
	md := opts.Metadata
	if b.opts.IgnoreMetadata {
		md = nil
	}
	if size < -1 {
		return backends.ObjectInfo{}, fmt.Errorf("invalid size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, err
	}
	name := segs[len(segs)-1]
	dirRel := relPath(segs[:len(segs)-1])

	dir, tmpName, fd, err := b.createTemp(segs[:len(segs)-1])
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	committed := false
	defer func() {
		if !committed {
			_ = unix.Unlinkat(dfd, tmpName, 0)
		}
	}()

	// Fail fast when IfNotExists cannot succeed; the link below is what
	// makes it safe against concurrent writers.
	if opts.IfNotExists {
		if err := existsAt(dfd, name, key); err != nil {
			unix.Close(fd)
			return backends.ObjectInfo{}, err
		}
	}
	// Metadata goes on before the data so that a filesystem without
	// extended attributes fails before the whole object was read.
	if err := setMetadata(fd, md); err != nil {
		unix.Close(fd)
		return backends.ObjectInfo{}, err
	}

	f := os.NewFile(uintptr(fd), tmpName)
	tmpRel := path.Join(dirRel, tmpName)
	var n int64
	err = b.step(opWrite, tmpRel, func() (err error) {
		n, err = copyChecked(ctx, f, r, size)
		return err
	})
	if err == nil {
		err = b.step(opSync, tmpRel, f.Sync)
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	// The last moment a cancellation can still leave nothing behind.
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, err
	}

	if opts.IfNotExists {
		err = b.step(opLink, key, func() error { return unix.Linkat(dfd, tmpName, dfd, name, 0) })
		if errors.Is(err, unix.EEXIST) {
			if err := existsAt(dfd, name, key); err != nil {
				return backends.ObjectInfo{}, err
			}
			return backends.ObjectInfo{}, fmt.Errorf("%w (link: %v)", backends.ErrExists, err)
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return backends.ObjectInfo{}, fmt.Errorf("IfNotExists needs hard links, which this filesystem refuses (%v): %w",
				err, backends.ErrUnsupported)
		}
		if err != nil {
			return backends.ObjectInfo{}, fmt.Errorf("link %s to %s: %w", tmpName, name, err)
		}
		committed = true
		// The object is in place. Should the unlink fail, the temp name
		// is one more hard link that List ignores and CleanTemp removes.
		_ = b.step(opUnlink, tmpRel, func() error { return unix.Unlinkat(dfd, tmpName, 0) })
	} else {
		err = b.step(opRename, key, func() error { return unix.Renameat(dfd, tmpName, dfd, name) })
		if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return backends.ObjectInfo{}, errKeyIsDir(key)
		}
		if err != nil {
			return backends.ObjectInfo{}, fmt.Errorf("rename %s to %s: %w", tmpName, name, err)
		}
		committed = true
	}
	if err := b.step(opSyncDir, dirRel, func() error { return fsync(dfd) }); err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("object is in place but syncing its directory failed: %w", err)
	}
	return backends.ObjectInfo{
		Key:      key,
		Size:     n,
		Modified: fi.ModTime(),
		Metadata: copyMetadata(md),
	}, nil
}

// createTemp opens (making it if need be) the directory dirSegs and creates
// a fresh temp file in it. A concurrent Delete may remove an empty directory
// between the walk and the create; then the whole walk is retried.
func (b *Backend) createTemp(dirSegs []string) (dir *os.File, tmpName string, fd int, err error) {
	for attempt := 1; ; attempt++ {
		dir, err = b.openDir(dirSegs, true)
		if err == nil {
			tmpName = tempPrefix + rand.Text()
			fd, err = openat(int(dir.Fd()), tmpName,
				unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, filePerm)
			if err == nil {
				return dir, tmpName, fd, nil
			}
			dir.Close()
			err = fmt.Errorf("create temp file: %w", err)
		}
		if errors.Is(err, unix.ENOTDIR) {
			err = fmt.Errorf("%w: %w", err, backends.ErrUnsupported)
		}
		if !errors.Is(err, unix.ENOENT) || attempt == tempAttempts {
			return nil, "", -1, err
		}
	}
}

// existsAt returns nil when nothing is stored under name in the directory
// dfd, ErrExists when an object is, and an error for anything else there.
func existsAt(dfd int, name, key string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return fmt.Errorf("stat %s: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return backends.ErrExists
	case unix.S_IFDIR:
		return errKeyIsDir(key)
	default:
		return fmt.Errorf("a file that is not an object (mode %#o) is in the way", st.Mode)
	}
}

func errKeyIsDir(key string) error {
	return fmt.Errorf("a directory holding keys that start with %q is in the way: %w", key+"/", backends.ErrUnsupported)
}

// copyChecked copies r to w through one bounded buffer, checking ctx before
// every read and the byte count against size (-1: unknown). It reads at
// most one byte past size, to tell a long reader from an exact one.
func copyChecked(ctx context.Context, w io.Writer, r io.Reader, size int64) (int64, error) {
	buf := make([]byte, copyBufferSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		p := buf
		if size >= 0 && size-n+1 < int64(len(p)) {
			p = buf[:size-n+1]
		}
		// Whole buffers: an HTTP body arrives in pieces of a few KiB, and
		// a write per piece would multiply the syscalls.
		m, rerr := io.ReadFull(r, p)
		if rerr == io.ErrUnexpectedEOF {
			rerr = io.EOF
		}
		if m > 0 {
			n += int64(m)
			if size >= 0 && n > size {
				return n, fmt.Errorf("reader yielded more than the declared %d bytes: %w", size, backends.ErrSizeMismatch)
			}
			if _, err := w.Write(p[:m]); err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("reading object data: %w", rerr)
		}
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("reader yielded %d bytes, %d declared: %w", n, size, backends.ErrSizeMismatch)
	}
	return n, nil
}

// Get opens the object for reading from off, at most length bytes (length <
// 0: to the end). An offset at or past the end yields an empty reader; a
// negative offset is an error. The reader reads the file itself, so it keeps
// returning the object that was there when Get opened it.
func (b *Backend) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := b.get(ctx, key, off, length)
	if err != nil {
		return nil, opErr("get", key, err)
	}
	return rc, nil
}

func (b *Backend) get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	segs, err := splitKey(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("negative offset %d", off)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, fi, err := b.openObject(segs)
	if err != nil {
		return nil, err
	}
	start := min(off, fi.Size())
	n := fi.Size() - start
	if length >= 0 && length < n {
		n = length
	}
	return &objectReader{ctx: ctx, key: key, f: f, r: io.NewSectionReader(f, start, n)}, nil
}

// objectReader is what Get returns: a window on the open file that fails
// once ctx is done.
type objectReader struct {
	ctx context.Context
	key string
	f   *os.File
	r   io.Reader
}

func (o *objectReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, opErr("get", o.key, err)
	}
	n, err := o.r.Read(p)
	if err != nil && err != io.EOF {
		err = opErr("get", o.key, err)
	}
	return n, err
}

func (o *objectReader) Close() error { return o.f.Close() }

// openObject opens the regular file under segs. Missing files, directories,
// symbolic links and paths through them are all ErrNotFound.
func (b *Backend) openObject(segs []string) (*os.File, os.FileInfo, error) {
	dir, err := b.openDir(segs[:len(segs)-1], false)
	if err != nil {
		return nil, nil, notFound(err)
	}
	defer dir.Close()
	name := segs[len(segs)-1]
	fd, err := openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, notFound(err)
	}
	// O_NONBLOCK only kept a FIFO from blocking the open.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name))
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w (a %s is there, not an object)", backends.ErrNotFound, fileKind(fi.Mode()))
	}
	return f, fi, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	default:
		return "special file"
	}
}

// notFound turns the errors of a path that leads to no object into
// ErrNotFound, keeping the reason when it is more than a missing name.
func notFound(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return backends.ErrNotFound
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w (%v)", backends.ErrNotFound, err)
	}
	return err
}

// absentOK is nil when err, met on the path to a key, means that no object
// is there (see notFound), and err otherwise.
func absentOK(err error) error {
	if err = notFound(err); errors.Is(err, backends.ErrNotFound) {
		return nil
	}
	return err
}

// Stat returns the object's size, modification time and metadata.
func (b *Backend) Stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	info, err := b.stat(ctx, key)
	if err != nil {
		return backends.ObjectInfo{}, opErr("stat", key, err)
	}
	return info, nil
}

func (b *Backend) stat(ctx context.Context, key string) (backends.ObjectInfo, error) {
	if err := b.checkOpen(); err != nil {
		return backends.ObjectInfo{}, err
	}
	segs, err := splitKey(key)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return backends.ObjectInfo{}, err
	}
	f, fi, err := b.openObject(segs)
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	defer f.Close()
	return b.info(key, f, fi)
}

// info builds the ObjectInfo of the open object f.
func (b *Backend) info(key string, f *os.File, fi os.FileInfo) (backends.ObjectInfo, error) {
	info := backends.ObjectInfo{Key: key, Size: fi.Size(), Modified: fi.ModTime()}
	if b.opts.IgnoreMetadata {
		return info, nil
	}
	md, err := readMetadata(int(f.Fd()))
	if err != nil {
		return backends.ObjectInfo{}, fmt.Errorf("reading metadata: %w", err)
	}
	info.Metadata = md
	return info, nil
}

// Delete removes the object, syncs its directory and then removes the
// parent directories it left empty (never the root). Where no object is
// (nothing, a directory, a symbolic link or a special file) it returns nil
// and changes nothing.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.delete(ctx, key); err != nil {
		return opErr("delete", key, err)
	}
	return nil
}

func (b *Backend) delete(ctx context.Context, key string) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	segs, err := splitKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := b.openDir(segs[:len(segs)-1], false)
	if err != nil {
		return absentOK(err)
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	name := segs[len(segs)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return absentOK(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil // a directory, link or special file is no object; left alone
	}
	if err := b.step(opUnlink, key, func() error { return unix.Unlinkat(dfd, name, 0) }); err != nil {
		return absentOK(err) // ENOENT: a concurrent Delete was first
	}
	if err := b.step(opSyncDir, relPath(segs[:len(segs)-1]), func() error { return fsync(dfd) }); err != nil {
		return fmt.Errorf("object removed but syncing its directory failed: %w", err)
	}
	b.pruneDirs(segs[:len(segs)-1])
	return nil
}

// pruneDirs removes the directories dirSegs, deepest first, while they are
// empty. Failure only means a directory stays; Put copes with a directory
// vanishing under it (see createTemp).
func (b *Backend) pruneDirs(dirSegs []string) {
	for i := len(dirSegs); i > 0; i-- {
		parent, err := b.openDir(dirSegs[:i-1], false)
		if err != nil {
			return
		}
		err = unix.Unlinkat(int(parent.Fd()), dirSegs[i-1], unix.AT_REMOVEDIR)
		parent.Close()
		if err != nil {
			return
		}
	}
}

// SetClass does nothing: the fs backend has no storage classes. It returns
// ErrNotFound when there is no object under key.
func (b *Backend) SetClass(ctx context.Context, key, class string) error {
	if err := b.setClass(ctx, key); err != nil {
		return opErr("setclass", key, err)
	}
	return nil
}

func (b *Backend) setClass(ctx context.Context, key string) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	segs, err := splitKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, _, err := b.openObject(segs)
	if err != nil {
		return err
	}
	return f.Close()
}
