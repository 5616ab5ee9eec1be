package fs_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/fs"
)

// stepLog records the durability steps of a backend, with temp file names
// shown as TMP, and fails the step named in failAt (op + " " + rel).
type stepLog struct {
	mu     sync.Mutex
	steps  []string
	failAt string
}

var errInjected = errors.New("injected failure")

func recordSteps(b *fs.Backend) *stepLog {
	l := &stepLog{}
	fs.ObserveSteps(b, func(op, rel string) error {
		parts := strings.Split(rel, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ".walgate-tmp-") {
				parts[i] = "TMP"
			}
		}
		step := op + " " + strings.Join(parts, "/")
		l.mu.Lock()
		defer l.mu.Unlock()
		l.steps = append(l.steps, step)
		if step == l.failAt {
			return errInjected
		}
		return nil
	})
	return l
}

// take returns the steps recorded since the last take.
func (l *stepLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.steps
	l.steps = nil
	return s
}

func wantSteps(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: steps\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestPutIsDurable checks the order every write follows: the data goes
// into a temp file, the file is fsynced, renamed (or linked) into place, and
// its directory is fsynced; a directory made on the way is synced in its
// parent before anything is written into it. A crash after Put returned
// must not lose the object, which each of these steps guards.
func TestPutIsDurable(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	log := recordSteps(b)

	put(t, b, "a/b/obj", "data", backends.PutOptions{})
	wantSteps(t, "Put into new directories", log.take(), []string{
		"mkdir a", "fsync-dir .",
		"mkdir a/b", "fsync-dir a",
		"write a/b/TMP", "fsync a/b/TMP", "rename a/b/obj", "fsync-dir a/b",
	})

	put(t, b, "a/b/obj", "new data", backends.PutOptions{})
	wantSteps(t, "overwrite", log.take(), []string{
		"write a/b/TMP", "fsync a/b/TMP", "rename a/b/obj", "fsync-dir a/b",
	})

	put(t, b, "top", "data", backends.PutOptions{IfNotExists: true})
	wantSteps(t, "Put with IfNotExists at the root", log.take(), []string{
		"write TMP", "fsync TMP", "link top", "unlink TMP", "fsync-dir .",
	})

	if err := b.Delete(ctx, "a/b/obj"); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, "Delete", log.take(), []string{"unlink a/b/obj", "fsync-dir a/b"})

	if err := b.Delete(ctx, "a/b/obj"); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, "Delete of an absent object", log.take(), nil)
}

// TestFailedDurabilityStep: when a step before the rename fails, Put fails
// and nothing is left, neither object nor temp file; when the directory
// fsync after the rename fails, Put fails and says the object is in place.
func TestFailedDurabilityStep(t *testing.T) {
	for _, step := range []string{"mkdir d", "fsync-dir .", "write d/TMP", "fsync d/TMP", "rename d/obj"} {
		t.Run(step, func(t *testing.T) {
			root := t.TempDir()
			b := newBackend(t, root, fs.Options{})
			recordSteps(b).failAt = step
			_, err := b.Put(ctx, "d/obj", strings.NewReader("data"), 4, backends.PutOptions{})
			if !errors.Is(err, errInjected) {
				t.Fatalf("Put with %q failing: %v, want the injected error", step, err)
			}
			if _, err := b.Stat(ctx, "d/obj"); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("Stat after the failed Put: %v, want ErrNotFound", err)
			}
			if left := tempFiles(t, root); len(left) != 0 {
				t.Errorf("temp files left: %q", left)
			}
		})
	}
	t.Run("fsync-dir after rename", func(t *testing.T) {
		root := t.TempDir()
		must(t, os.Mkdir(filepath.Join(root, "d"), 0o750))
		b := newBackend(t, root, fs.Options{})
		recordSteps(b).failAt = "fsync-dir d"
		_, err := b.Put(ctx, "d/obj", strings.NewReader("data"), 4, backends.PutOptions{})
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "in place") {
			t.Fatalf("Put with the directory fsync failing: %v, want the injected error saying the object is in place", err)
		}
	})
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestPutReadsAtMostOneBytePastSize: a reader longer than the declared size
// fails the Put, and Put reads at most one byte past the size to find out
// (the rest may be a stream that should not be consumed).
func TestPutReadsAtMostOneBytePastSize(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	for _, size := range []int{0, 1, 100, 256 << 10, 300 << 10} {
		r := &countingReader{r: bytes.NewReader(make([]byte, size+(600<<10)))}
		_, err := b.Put(ctx, "k", r, int64(size), backends.PutOptions{})
		if !errors.Is(err, backends.ErrSizeMismatch) {
			t.Errorf("size %d, longer reader: %v, want ErrSizeMismatch", size, err)
		}
		if r.n > size+1 {
			t.Errorf("size %d: read %d bytes, more than one past the size", size, r.n)
		}
	}
}

// TestPutGivesUpOnAVanishingDirectory: when the object's directory keeps
// vanishing (a concurrent Delete pruning it), Put walks the path again a
// bounded number of times, then fails.
func TestPutGivesUpOnAVanishingDirectory(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	mkdirs := 0
	fs.ObserveSteps(b, func(op, rel string) error {
		if op == "mkdir" {
			mkdirs++
			if mkdirs > 10 {
				return errInjected // stop a Put that would retry forever
			}
			return unix.ENOENT
		}
		return nil
	})
	_, err := b.Put(ctx, "gone/k", strings.NewReader("x"), 1, backends.PutOptions{})
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Put: %v, want ENOENT after the retries", err)
	}
	if mkdirs != 10 {
		t.Errorf("made the directory %d times, want 10 attempts", mkdirs)
	}
}

// TestFailedDeleteStep: a Delete whose unlink fails reports it and leaves
// the object; one whose directory fsync fails reports that the object was
// removed.
func TestFailedDeleteStep(t *testing.T) {
	b := newBackend(t, t.TempDir(), fs.Options{})
	put(t, b, "d/k", "data", backends.PutOptions{})
	log := recordSteps(b)
	log.failAt = "unlink d/k"
	if err := b.Delete(ctx, "d/k"); !errors.Is(err, errInjected) {
		t.Fatalf("Delete with the unlink failing: %v, want the injected error", err)
	}
	if _, err := b.Stat(ctx, "d/k"); err != nil {
		t.Fatalf("the object is gone after a failed unlink: %v", err)
	}
	log.failAt = "fsync-dir d"
	if err := b.Delete(ctx, "d/k"); !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("Delete with the directory fsync failing: %v, want the injected error saying the object was removed", err)
	}
}
