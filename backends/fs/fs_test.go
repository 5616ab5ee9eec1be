package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/fs"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return newBackend(t, t.TempDir(), fs.Options{})
	})
}

func newBackend(t *testing.T, root string, opts fs.Options) *fs.Backend {
	t.Helper()
	b, err := fs.New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var ctx = context.Background()

func put(t *testing.T, b *fs.Backend, key, data string, opts backends.PutOptions) {
	t.Helper()
	if _, err := b.Put(ctx, key, strings.NewReader(data), int64(len(data)), opts); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func listKeys(t *testing.T, b *fs.Backend, prefix string) []string {
	t.Helper()
	var keys []string
	if err := b.List(ctx, prefix, func(info backends.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

// tempFiles returns the temp files anywhere under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".walgate-tmp-") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestNew(t *testing.T) {
	root := t.TempDir()
	if b := newBackend(t, root, fs.Options{}); b.Name() != "fs:"+root {
		t.Errorf("Name() = %q, want %q", b.Name(), "fs:"+root)
	}
	if _, err := fs.New(filepath.Join(root, "missing"), fs.Options{}); err == nil {
		t.Error("New with a missing root succeeded")
	}
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o640)
	if _, err := fs.New(file, fs.Options{}); err == nil {
		t.Error("New with a file as root succeeded")
	}
	if _, err := fs.New("", fs.Options{}); err == nil {
		t.Error("New with an empty root succeeded")
	}
	// A symbolic link naming the root itself is fine.
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(root, link)
	b := newBackend(t, link, fs.Options{})
	put(t, b, "via/link", "x", backends.PutOptions{})
	if _, err := os.Stat(filepath.Join(root, "via", "link")); err != nil {
		t.Errorf("object written through a linked root: %v", err)
	}
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	b := newBackend(t, root, fs.Options{})
	md := map[string]string{"sha256": "abc", "empty": ""}
	put(t, b, "cluster/wal_005/000000010000000000000001", "segment", backends.PutOptions{Metadata: md, Class: "GLACIER"})
	p := filepath.Join(root, "cluster", "wal_005", "000000010000000000000001")
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "segment" {
		t.Fatalf("file %s: %q, %v", p, data, err)
	}
	fi, _ := os.Stat(p)
	if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("object mode %v, want at most 0640", perm)
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "user.walgate.sha256", buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Errorf("xattr user.walgate.sha256 = %q, %v; want \"abc\"", buf[:n], err)
	}
	info, err := b.Stat(ctx, "cluster/wal_005/000000010000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if info.Class != "" || len(info.Metadata) != 2 || info.Metadata["empty"] != "" || info.Metadata["sha256"] != "abc" {
		t.Errorf("Stat = %+v, want class \"\" and metadata %v", info, md)
	}
	// Foreign extended attributes are not metadata.
	if err := unix.Setxattr(p, "user.other", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if info, _ := b.Stat(ctx, "cluster/wal_005/000000010000000000000001"); len(info.Metadata) != 2 {
		t.Errorf("Stat metadata = %v, want only walgate's", info.Metadata)
	}
}

func TestFailedPutsLeaveNoTempFiles(t *testing.T) {
	root := t.TempDir()
	b := newBackend(t, root, fs.Options{})
	put(t, b, "dir/exists", "old", backends.PutOptions{})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	data := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name string
		put  func() error
	}{
		{"reader error", func() error {
			_, err := b.Put(ctx, "dir/new", backendtest.FailingReader(strings.NewReader(data), 1000, nil), -1, backends.PutOptions{})
			return err
		}},
		{"size mismatch", func() error {
			_, err := b.Put(ctx, "dir/new", strings.NewReader(data), 10, backends.PutOptions{})
			return err
		}},
		{"cancelled", func() error {
			_, err := b.Put(cancelled, "dir/new", strings.NewReader(data), -1, backends.PutOptions{})
			return err
		}},
		{"exists", func() error {
			_, err := b.Put(ctx, "dir/exists", strings.NewReader(data), -1, backends.PutOptions{IfNotExists: true})
			return err
		}},
		{"bad metadata", func() error {
			_, err := b.Put(ctx, "dir/new", strings.NewReader(data), -1, backends.PutOptions{Metadata: map[string]string{"A": "b"}})
			return err
		}},
	} {
		if err := tc.put(); err == nil {
			t.Errorf("%s: Put succeeded", tc.name)
		}
		if left := tempFiles(t, root); len(left) > 0 {
			t.Errorf("%s: temp files left: %q", tc.name, left)
		}
		if _, err := os.Stat(filepath.Join(root, "dir", "new")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: dir/new exists", tc.name)
		}
	}
}

// TestCrashLeftovers simulates a writer killed mid-Put: its temp file is
// never listed or returned, and CleanTemp removes it once old enough.
func TestCrashLeftovers(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	clock := now
	b := newBackend(t, root, fs.Options{Now: func() time.Time { return clock }})
	put(t, b, "wal/000000010000000000000001", "segment 1", backends.PutOptions{})
	put(t, b, "wal/deep/er/x", "x", backends.PutOptions{})
	leftovers := []string{
		filepath.Join(root, "wal", ".walgate-tmp-KILLEDWRITER1"),
		filepath.Join(root, "wal", "deep", "er", ".walgate-tmp-KILLEDWRITER2"),
		filepath.Join(root, ".walgate-tmp-KILLEDWRITER3"),
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("half a segm"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if keys := listKeys(t, b, ""); len(keys) != 2 {
		t.Errorf("List = %q, want the two objects only", keys)
	}
	if keys := listKeys(t, b, "wal/.walgate"); len(keys) != 0 {
		t.Errorf("List of the temp prefix = %q", keys)
	}
	for _, key := range []string{"wal/.walgate-tmp-KILLEDWRITER1", ".walgate-tmp-KILLEDWRITER3"} {
		if _, err := b.Get(ctx, key, 0, -1); !errors.Is(err, backends.ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want ErrInvalidKey (reserved name)", key, err)
		}
		if _, err := b.Put(ctx, key, strings.NewReader("x"), 1, backends.PutOptions{}); !errors.Is(err, backends.ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey (reserved name)", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, backends.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey (reserved name)", key, err)
		}
	}

	// Fresh temp files may belong to live writers: kept.
	if n, err := b.CleanTemp(time.Hour); err != nil || n != 0 {
		t.Errorf("CleanTemp(1h) of fresh temp files = %d, %v; want 0", n, err)
	}
	old := now.Add(-2 * time.Hour)
	os.Chtimes(leftovers[0], old, old)
	if n, err := b.CleanTemp(time.Hour); err != nil || n != 1 {
		t.Errorf("CleanTemp(1h) with one old temp file = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(leftovers[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temp file still there: %v", err)
	}
	clock = now.Add(3 * time.Hour) // the injected clock moves on
	if n, err := b.CleanTemp(time.Hour); err != nil || n != 2 {
		t.Errorf("CleanTemp(1h) three hours later = %d, %v; want 2", n, err)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Errorf("temp files left: %q", left)
	}
	if keys := listKeys(t, b, ""); len(keys) != 2 {
		t.Errorf("List after CleanTemp = %q, want the two objects", keys)
	}
}

func TestSymlinksAreNeverFollowed(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	b := newBackend(t, root, fs.Options{})
	must(t, os.Symlink(outside, filepath.Join(root, "evil")))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link")))
	must(t, os.MkdirAll(filepath.Join(root, "a"), 0o750))
	must(t, os.Symlink(outside, filepath.Join(root, "a", "b")))
	must(t, os.Mkdir(filepath.Join(root, "real"), 0o750))
	must(t, os.Symlink("real", filepath.Join(root, "alias"))) // inside the root, still refused

	for _, key := range []string{"evil/x", "evil/sub/x", "a/b/x", "alias/x"} {
		_, err := b.Put(ctx, key, strings.NewReader("data"), 4, backends.PutOptions{})
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("Put(%q) through a symbolic link: %v, want a refusal naming the link", key, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("outside directory now holds %d entries, want only the secret", len(entries))
	}

	must(t, os.WriteFile(filepath.Join(outside, "x"), []byte("outside"), 0o600))
	for _, key := range []string{"evil/x", "evil/secret", "link"} {
		if _, err := b.Get(ctx, key, 0, -1); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("Stat(%q): %v, want ErrNotFound", key, err)
		}
		if err := b.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q): %v, want nil (no object there)", key, err)
		}
	}
	// Deleting through or at a link removed neither the link nor its target.
	for _, p := range []string{filepath.Join(root, "link"), filepath.Join(root, "evil"), filepath.Join(outside, "secret"), filepath.Join(outside, "x")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("after Delete: %v", err)
		}
	}
	if keys := listKeys(t, b, ""); len(keys) != 0 {
		t.Errorf("List = %q, want nothing (links are not objects)", keys)
	}
	if keys := listKeys(t, b, "evil/"); len(keys) != 0 {
		t.Errorf("List(evil/) = %q, want nothing", keys)
	}

	// A link in the object's place is not an object: IfNotExists refuses
	// it, an overwrite replaces the link itself, never its target.
	if _, err := b.Put(ctx, "link", strings.NewReader("new"), 3, backends.PutOptions{IfNotExists: true}); err == nil {
		t.Error("Put IfNotExists over a symbolic link succeeded")
	}
	put(t, b, "link", "new", backends.PutOptions{})
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "secret" {
		t.Errorf("link target now holds %q", data)
	}
	if fi, _ := os.Lstat(filepath.Join(root, "link")); !fi.Mode().IsRegular() {
		t.Errorf("after Put, %q is %v, want a regular file", "link", fi.Mode())
	}

	// CleanTemp does not follow links either.
	tmp := filepath.Join(outside, ".walgate-tmp-NOTOURS")
	must(t, os.WriteFile(tmp, nil, 0o600))
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(tmp, old, old)
	if _, err := b.CleanTemp(time.Hour); err != nil {
		t.Errorf("CleanTemp: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("CleanTemp removed a file outside the root: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestKeysThatCannotBeFiles(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	put(t, b, "a", "file", backends.PutOptions{})
	put(t, b, "d/x", "file", backends.PutOptions{})
	for _, tc := range []struct {
		key string
		ifn bool
	}{
		{"a/b", false}, // "a" is an object, not a directory
		{"d", false},   // "d" is a directory
		{"d", true},
	} {
		_, err := b.Put(ctx, tc.key, strings.NewReader("x"), 1, backends.PutOptions{IfNotExists: tc.ifn})
		if !errors.Is(err, backends.ErrUnsupported) {
			t.Errorf("Put(%q, IfNotExists %v): %v, want ErrUnsupported", tc.key, tc.ifn, err)
		}
	}
	long := strings.Repeat("n", 256)
	if _, err := b.Put(ctx, "x/"+long, strings.NewReader("x"), 1, backends.PutOptions{}); !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("Put of a 256-byte segment: %v, want ErrUnsupported", err)
	}
	put(t, b, "x/"+long[:255], "x", backends.PutOptions{})
}

func TestIgnoreMetadata(t *testing.T) {
	root := t.TempDir()
	b := newBackend(t, root, fs.Options{IgnoreMetadata: true})
	put(t, b, "k", "data", backends.PutOptions{Metadata: map[string]string{"sha256": "abc"}})
	if info, err := b.Stat(ctx, "k"); err != nil || len(info.Metadata) != 0 {
		t.Errorf("Stat = %+v, %v; want no metadata", info, err)
	}
	if n, _ := unix.Listxattr(filepath.Join(root, "k"), nil); n > 0 {
		buf := make([]byte, n)
		n, _ = unix.Listxattr(filepath.Join(root, "k"), buf)
		if bytes.Contains(buf[:n], []byte("user.walgate.")) {
			t.Errorf("extended attributes %q written with IgnoreMetadata", buf[:n])
		}
	}
	if _, err := b.Put(ctx, "bad", strings.NewReader("x"), 1, backends.PutOptions{Metadata: map[string]string{"Bad": "x"}}); err == nil {
		t.Error("invalid metadata accepted with IgnoreMetadata")
	}
}

func TestDeletePrunesEmptyDirectories(t *testing.T) {
	root := t.TempDir()
	b := newBackend(t, root, fs.Options{})
	put(t, b, "a/b/c/d", "x", backends.PutOptions{})
	put(t, b, "a/b/keep", "x", backends.PutOptions{})
	must(t, b.Delete(ctx, "a/b/c/d"))
	if _, err := os.Stat(filepath.Join(root, "a", "b", "c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directory a/b/c left: %v", err)
	}
	must(t, b.Delete(ctx, "a/b/keep"))
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Errorf("root after deleting everything: %v, %v; want an empty root", entries, err)
	}
}

// TestPutRacesPruning: a Delete removing an emptied directory while a Put
// is about to write into it must not fail the Put.
func TestPutRacesPruning(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("p/q/r/k%d-%d", w, i)
				if _, err := b.Put(ctx, key, strings.NewReader("x"), 1, backends.PutOptions{}); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				if err := b.Delete(ctx, key); err != nil {
					t.Errorf("Delete(%q): %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestForeignFilesAreNoObjects(t *testing.T) {
	root := t.TempDir()
	b := newBackend(t, root, fs.Options{})
	put(t, b, "ok", "x", backends.PutOptions{})
	must(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o640))
	must(t, os.WriteFile(filepath.Join(root, "back\\slash"), nil, 0o640))
	if keys := listKeys(t, b, ""); len(keys) != 1 || keys[0] != "ok" {
		t.Errorf("List = %q, want only \"ok\"", keys)
	}
	if _, err := b.Get(ctx, "fifo", 0, -1); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Get of a FIFO: %v, want ErrNotFound", err)
	}
}

func TestClosed(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	put(t, b, "k", "x", backends.PutOptions{})
	must(t, b.Close())
	if _, err := b.Put(ctx, "k2", strings.NewReader("x"), 1, backends.PutOptions{}); err == nil {
		t.Error("Put after Close succeeded")
	}
	if _, err := b.Get(ctx, "k", 0, -1); err == nil {
		t.Error("Get after Close succeeded")
	}
}
