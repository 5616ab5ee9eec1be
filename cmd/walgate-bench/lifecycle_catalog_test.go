package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The cold lifecycle figure is only cold if the catalog file really left
// the page cache.
func TestEvictFromPageCache(t *testing.T) {
	// Beside the source, not in $TMPDIR, which may be a tmpfs (whose
	// pages cannot leave memory).
	dir, err := os.MkdirTemp(".", "evict-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "catalog.db")
	if err := os.WriteFile(path, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(path); err != nil { // resident now
		t.Fatal(err)
	}
	got, err := evictFromPageCache(path)
	if err != nil {
		t.Fatal(err)
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(got, "%"), 64)
	if err != nil {
		t.Fatalf("resident share %q: %v", got, err)
	}
	if pct > 5 {
		t.Fatalf("%s of the file still resident after eviction", got)
	}
}
