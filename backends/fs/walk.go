package fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walgate/walgate/backends"
)

// componentError reports a directory on a key's path that could not be
// opened. It unwraps to the errno: ENOENT (missing), ENOTDIR (a file is in
// the way) or ELOOP (a symbolic link is in the way).
type componentError struct {
	rel    string // the directory, relative to the root
	reason string // "" to print the errno
	errno  error
}

func (e *componentError) Error() string {
	if e.reason == "" {
		return fmt.Sprintf("directory %q: %v", e.rel, e.errno)
	}
	return fmt.Sprintf("%q %s", e.rel, e.reason)
}

func (e *componentError) Unwrap() error { return e.errno }

// openat is unix.Openat retried on EINTR.
func openat(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDir opens the directory root/segs[0]/segs[1]/... one component at a
// time, never following a symbolic link, so the result is always inside the
// root. With create it makes missing directories, syncing each new
// directory's parent so the new entry is durable.
func (b *Backend) openDir(segs []string, create bool) (*os.File, error) {
	fd, err := openat(unix.AT_FDCWD, b.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open root", Path: b.root, Err: err}
	}
	dir := os.NewFile(uintptr(fd), b.root)
	rel := ""
	for _, seg := range segs {
		rel = path.Join(rel, seg)
		child, err := openChild(dir, seg, rel)
		if create && errors.Is(err, unix.ENOENT) {
			child, err = b.mkdirChild(dir, seg, rel)
		}
		dir.Close()
		if err != nil {
			return nil, err
		}
		dir = child
	}
	return dir, nil
}

// openChild opens the directory name inside parent without following a
// symbolic link.
func openChild(parent *os.File, name, rel string) (*os.File, error) {
	pfd := int(parent.Fd())
	fd, err := openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(parent.Name(), name)), nil
	}
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		// Linux says ENOTDIR for a symbolic link opened with O_DIRECTORY;
		// look to tell the two apart for the error message.
		var st unix.Stat_t
		if unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil, &componentError{rel: rel, errno: unix.ELOOP,
				reason: "is a symbolic link; the fs backend never follows links below its root"}
		}
		return nil, &componentError{rel: rel, errno: unix.ENOTDIR,
			reason: "is an object, so it cannot also be a directory"}
	}
	return nil, &componentError{rel: rel, errno: err}
}

// mkdirChild makes the directory name inside parent, syncs parent, and
// opens the new directory.
func (b *Backend) mkdirChild(parent *os.File, name, rel string) (*os.File, error) {
	pfd := int(parent.Fd())
	err := b.step(opMkdir, rel, func() error { return unix.Mkdirat(pfd, name, dirPerm) })
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &componentError{rel: rel, errno: err, reason: fmt.Sprintf("cannot be made: %v", err)}
	}
	// Also on EEXIST: the writer that won the race may not have synced
	// the parent yet, and our object's durability depends on it too.
	if err := b.step(opSyncDir, path.Dir(rel), func() error { return fsync(pfd) }); err != nil {
		return nil, fmt.Errorf("sync directory %q: %w", path.Dir(rel), err)
	}
	return openChild(parent, name, rel)
}

// List calls fn for every object whose key starts with prefix, in lexical
// (byte-wise) key order. Temp files, directories, symbolic links and files
// whose names are not valid keys are skipped.
func (b *Backend) List(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	err := b.list(ctx, prefix, fn)
	var fnErr callbackError
	if errors.As(err, &fnErr) {
		return fnErr.err
	}
	if err != nil {
		return opErr("list", prefix, err)
	}
	return nil
}

// callbackError carries an error from List's fn out of the walk unwrapped.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

func (b *Backend) list(ctx context.Context, prefix string, fn func(backends.ObjectInfo) error) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Start at the deepest directory the prefix names in full. When that
	// part is no valid key, no key can start with the prefix.
	dirKey := ""
	var segs []string
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirKey = prefix[:i]
		var err error
		if segs, err = splitKey(dirKey); err != nil {
			return nil
		}
	}
	dir, err := b.openDir(segs, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil
	}
	if err != nil {
		return err
	}
	defer dir.Close()
	return b.walk(ctx, dir, dirKey, prefix, fn)
}

// walk lists the directory dir, whose key prefix is dirKey, in key order.
func (b *Backend) walk(ctx context.Context, dir *os.File, dirKey, prefix string, fn func(backends.ObjectInfo) error) error {
	entries, err := readDirSorted(dir)
	if err != nil {
		if errors.Is(err, unix.ENOENT) { // removed by a concurrent Delete
			return nil
		}
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		key := name
		if dirKey != "" {
			key = dirKey + "/" + name
		}
		switch {
		case e.IsDir():
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				continue
			}
			child, err := openChild(dir, name, key)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				continue // changed under us
			}
			if err != nil {
				return err
			}
			err = b.walk(ctx, child, key, prefix, fn)
			child.Close()
			if err != nil {
				return err
			}
		case e.Type().IsRegular():
			if !strings.HasPrefix(key, prefix) || backends.ValidateKey(key) != nil {
				continue
			}
			info, err := b.statAt(dir, name, key)
			if errors.Is(err, backends.ErrNotFound) {
				continue // deleted or replaced by a non-file under us
			}
			if err != nil {
				return err
			}
			if err := fn(info); err != nil {
				return callbackError{err}
			}
		}
	}
	return nil
}

// statAt returns the info of the object name in dir.
func (b *Backend) statAt(dir *os.File, name, key string) (backends.ObjectInfo, error) {
	fd, err := openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return backends.ObjectInfo{}, notFound(err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return backends.ObjectInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return backends.ObjectInfo{}, backends.ErrNotFound
	}
	return b.info(key, f, fi)
}

// readDirSorted reads all entries of dir in key order: a directory sorts as
// its name followed by "/", so that "a-b" comes before "a/x" as the keys do.
func readDirSorted(dir *os.File) ([]fs.DirEntry, error) {
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	return entries, nil
}

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Unix()) }

// CleanTemp removes the temp files (".walgate-tmp-*") anywhere under the
// root whose last write is older than olderThan: what writers that crashed
// or were killed mid-Put left behind. The gateway calls it at start-up. A
// temp file removed under a live Put only makes that Put fail, so
// olderThan should exceed the longest pause a live upload may take (an
// hour is plenty). It keeps going past errors and returns them joined.
func (b *Backend) CleanTemp(olderThan time.Duration) (removed int, err error) {
	if err := b.checkOpen(); err != nil {
		return 0, fmt.Errorf("fs cleantemp: %w", err)
	}
	root, err := b.openDir(nil, false)
	if err != nil {
		return 0, fmt.Errorf("fs cleantemp: %w", err)
	}
	defer root.Close()
	removed, err = cleanDir(root, "", b.opts.Now().Add(-olderThan))
	if err != nil {
		return removed, fmt.Errorf("fs cleantemp: %w", err)
	}
	return removed, nil
}

func cleanDir(dir *os.File, rel string, cutoff time.Time) (int, error) {
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return 0, fmt.Errorf("read directory %q: %w", rel, err)
	}
	removed := 0
	var errs []error
	dfd := int(dir.Fd())
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
			child, err := openChild(dir, name, path.Join(rel, name))
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n, err := cleanDir(child, path.Join(rel, name), cutoff)
			child.Close()
			removed += n
			if err != nil {
				errs = append(errs, err)
			}
		case e.Type().IsRegular() && strings.HasPrefix(name, tempPrefix):
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("stat %q: %w", path.Join(rel, name), err))
				}
				continue
			}
			if !mtime(&st).Before(cutoff) {
				continue
			}
			if err := unix.Unlinkat(dfd, name, 0); err != nil {
				if !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("remove %q: %w", path.Join(rel, name), err))
				}
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}
