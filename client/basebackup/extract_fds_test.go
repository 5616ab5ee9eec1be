package basebackup

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fdSampler reads through r and records the most descriptors the process
// held at any read.
type fdSampler struct {
	r   io.Reader
	max int
}

func (s *fdSampler) Read(p []byte) (int, error) {
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.max = max(s.max, len(ents))
	}
	return s.r.Read(p[:min(len(p), 4096)])
}

// A tar spread over many directories (a cluster with thousands of
// databases) is extracted whole with at most maxOpenParents directories
// open at a time, not one descriptor per directory.
func TestExtractTarBoundsOpenDirectories(t *testing.T) {
	const dirs = 4 * maxOpenParents
	var members []rawMember
	for i := range dirs {
		members = append(members, rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("/base/%d/1259", 16384+i), Mode: 0o600}, body: fmt.Sprint("file ", i)})
	}
	// The same directories once more, out of order: a member may come
	// back to a directory whose handle was closed.
	for i := dirs - 1; i >= 0; i -= 7 {
		members = append(members, rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("/base/%d/2619", 16384+i), Mode: 0o600}, body: fmt.Sprint("again ", i)})
	}
	before, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	src := &fdSampler{r: bytes.NewReader(rawTar(t, members...))}
	if _, err := ExtractTar(src, dst, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range dirs {
		got, err := os.ReadFile(filepath.Join(dst, "base", fmt.Sprint(16384+i), "1259"))
		if err != nil || string(got) != fmt.Sprint("file ", i) {
			t.Fatalf("directory %d: %q, %v", i, got, err)
		}
	}
	for i := dirs - 1; i >= 0; i -= 7 {
		if got, err := os.ReadFile(filepath.Join(dst, "base", fmt.Sprint(16384+i), "2619")); err != nil || string(got) != fmt.Sprint("again ", i) {
			t.Fatalf("directory %d, second file: %q, %v", i, got, err)
		}
	}
	// The extraction's own root and a few in passing on top of the
	// parents; other tests run in parallel, so leave some room.
	if limit := len(before) + maxOpenParents + 16; src.max > limit {
		t.Errorf("%d descriptors open during the extraction of %d directories, want at most %d", src.max, dirs, limit)
	}
}
