package rebuild

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keepPrevious never replaces a file: numbered names after a taken one,
// and where a hard link cannot be made (here: the path is a directory,
// which cannot be hard-linked) a rename that also skips taken names.
func TestKeepPreviousNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 5, 30, 0, 0, time.UTC)
	cat := filepath.Join(dir, "catalog.db")
	base := cat + ".old-20261207T053000Z"
	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"free name", func() { os.WriteFile(cat, []byte("catalog 1"), 0o600) }, base},
		{"taken once", func() {
			// As Run does: a new file renamed over the catalog, whose
			// old inode lives on under the kept name.
			os.WriteFile(cat+".new", []byte("catalog 2"), 0o600)
			os.Rename(cat+".new", cat)
		}, base + "-2"},
		{"taken twice, no hard link", func() {
			os.Remove(cat)
			os.Mkdir(cat, 0o700)
			os.WriteFile(filepath.Join(cat, "inside"), []byte("catalog 3"), 0o600)
		}, base + "-3"},
	} {
		tc.setup()
		got, err := keepPrevious(cat, now)
		if err != nil || got != tc.want {
			t.Fatalf("%s: kept as %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	for name, want := range map[string]string{base: "catalog 1", base + "-2": "catalog 2", filepath.Join(base+"-3", "inside"): "catalog 3"} {
		if b, err := os.ReadFile(name); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := os.Lstat(cat); !os.IsNotExist(err) {
		t.Errorf("the renamed directory is still at %s: %v", cat, err)
	}
	// Every name taken: a clear error, nothing replaced.
	os.Remove(cat)
	os.WriteFile(cat, []byte("catalog 4"), 0o600)
	for n := 4; n <= 1000; n++ {
		os.WriteFile(fmt.Sprintf("%s-%d", base, n), nil, 0o600)
	}
	if got, err := keepPrevious(cat, now); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("every name taken: kept as %q, %v", got, err)
	}
	if b, _ := os.ReadFile(cat); string(b) != "catalog 4" {
		t.Errorf("the catalog changed: %q", b)
	}
}
