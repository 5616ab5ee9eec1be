package client

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSpoolFile: the spool writes into an unlinked temporary file in its
// directory (no memory of its own), returns every byte on each Reader, and
// leaves nothing in the directory.
func TestSpoolFile(t *testing.T) {
	dir := t.TempDir()
	s := newSpool(dir)
	data := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	for rest := data; len(rest) > 0; rest = rest[min(len(rest), 7000):] {
		if _, err := s.Write(rest[:min(len(rest), 7000)]); err != nil {
			t.Fatal(err)
		}
	}
	if s.file == nil || s.mem != nil {
		t.Fatalf("spooled into memory (%d bytes), not a file", len(s.mem))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the spool left %d entries in its directory", len(ents))
	}
	for range 2 {
		got, err := io.ReadAll(s.Reader())
		if err != nil || !bytes.Equal(got, data) || s.Size() != int64(len(data)) {
			t.Fatalf("read back %d of %d bytes (size %d): %v", len(got), len(data), s.Size(), err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolNoFile: without a usable directory the spool keeps up to
// SpoolMemory in memory and then fails with the file's error.
func TestSpoolNoFile(t *testing.T) {
	s := newSpool(filepath.Join(t.TempDir(), "missing"))
	data := bytes.Repeat([]byte{7}, SpoolMemory)
	if _, err := s.Write(data); err != nil {
		t.Fatalf("%d bytes into memory: %v", len(data), err)
	}
	if got, _ := io.ReadAll(s.Reader()); !bytes.Equal(got, data) {
		t.Fatal("the memory spool lost bytes")
	}
	if _, err := s.Write([]byte{1}); !os.IsNotExist(err) {
		t.Fatalf("a byte over SpoolMemory without a file gave %v, want the missing directory's error", err)
	}
}
