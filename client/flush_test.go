package client

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSyncTree: the flush of a restore where there is no syncfs(2) fsyncs
// the files and directories of the tree and steps over what it must not
// open: a dangling symbolic link, a FIFO (opening it would wait for a
// writer). A tree that is not there is an error naming it.
func TestSyncTree(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"PG_VERSION", "base/1/1259", "global/pg_control"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "pg_tblspc"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/tablespace", filepath.Join(dir, "pg_tblspc", "16384")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syncTree(dir); err != nil {
		t.Fatalf("syncTree: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if err := syncTree(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("syncTree of a missing tree: %v, want an error naming it", err)
	}
}
