package fs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/fs"
)

// TestIfNotExistsLosesTheRaceToADirectory: a Put with IfNotExists finds
// the key free, writes its data, and in the moment before it links the
// object into place another writer of the same root makes a directory
// there (by storing a key below it). The link fails; Put must report the
// directory in the way (ErrUnsupported), not ErrExists, which a caller
// takes for "an object is already stored under this key". It stores
// nothing and leaves no temp file.
func TestIfNotExistsLosesTheRaceToADirectory(t *testing.T) {
	root := t.TempDir()
	b := newBackend(t, root, fs.Options{})
	fs.ObserveSteps(b, func(op, rel string) error {
		if op == "link" && rel == "d/k" {
			return os.Mkdir(filepath.Join(root, "d", "k"), 0o750)
		}
		return nil
	})
	_, err := b.Put(ctx, "d/k", strings.NewReader("data"), 4, backends.PutOptions{IfNotExists: true})
	if errors.Is(err, backends.ErrExists) || !errors.Is(err, backends.ErrUnsupported) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Put with IfNotExists, a directory made under the key before the link: %v; want the directory in the way (ErrUnsupported), not ErrExists", err)
	}
	if _, err := b.Stat(ctx, "d/k"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat after the refused Put: %v, want ErrNotFound", err)
	}
	if left := tempFiles(t, root); len(left) != 0 {
		t.Errorf("temp files left: %q", left)
	}

	// A regular file taking the name the same way is an object: ErrExists,
	// and the other writer's bytes stay.
	fs.ObserveSteps(b, func(op, rel string) error {
		if op == "link" && rel == "e/k" {
			return os.WriteFile(filepath.Join(root, "e", "k"), []byte("theirs"), 0o640)
		}
		return nil
	})
	_, err = b.Put(ctx, "e/k", strings.NewReader("mine"), 4, backends.PutOptions{IfNotExists: true})
	if !errors.Is(err, backends.ErrExists) {
		t.Fatalf("Put with IfNotExists, a file made under the key before the link: %v; want ErrExists", err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "e", "k")); err != nil || string(got) != "theirs" {
		t.Errorf("the other writer's object: %q, %v", got, err)
	}
}
