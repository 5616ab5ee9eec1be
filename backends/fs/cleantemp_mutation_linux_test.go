package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walgate/walgate/backends/fs"
)

// fsImmutableFL is the inode flag chattr +i sets (FS_IMMUTABLE_FL): no
// entry of such a directory can be removed, not even by root.
const fsImmutableFL = 0x10

// setImmutable sets or clears the immutable flag of the directory dir.
func setImmutable(t *testing.T, dir string, on bool) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatalf("reading the inode flags of %s (the test needs a filesystem with them, such as ext4, xfs or btrfs): %v", dir, err)
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags); err != nil {
		t.Fatalf("setting the immutable flag of %s (the test runs as root on ext4, xfs or btrfs): %v", dir, err)
	}
}

// TestCleanTempReportsWhatItCouldNotRemove: a crashed writer's temp file
// that cannot be removed (here in a directory marked immutable, deep
// below the root) is reported by CleanTemp, which still removes the
// others and counts them. Its error names the file.
func TestCleanTempReportsWhatItCouldNotRemove(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	stuck := filepath.Join(root, "wal", "locked", ".walgate-tmp-STUCK")
	gone := filepath.Join(root, "wal", ".walgate-tmp-GONE")
	for _, p := range []string{stuck, gone} {
		must(t, os.MkdirAll(filepath.Dir(p), 0o750))
		must(t, os.WriteFile(p, []byte("half a segment"), 0o640))
		must(t, os.Chtimes(p, old, old))
	}
	locked := filepath.Dir(stuck)
	setImmutable(t, locked, true)
	t.Cleanup(func() { setImmutable(t, locked, false) })

	b := newBackend(t, root, fs.Options{})
	n, err := b.CleanTemp(time.Hour)
	if err == nil || !strings.Contains(err.Error(), "wal/locked/.walgate-tmp-STUCK") {
		t.Fatalf("CleanTemp with a temp file it cannot remove: %d, %v; want an error naming wal/locked/.walgate-tmp-STUCK", n, err)
	}
	if n != 1 {
		t.Errorf("CleanTemp removed %d, want 1 (the file it could remove)", n)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the removable temp file is still there: %v", err)
	}
	if _, err := os.Stat(stuck); err != nil {
		t.Errorf("the temp file in the immutable directory: %v", err)
	}
}
