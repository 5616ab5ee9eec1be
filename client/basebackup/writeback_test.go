package basebackup

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A writebackWriter writes exactly what it is given and has started the
// disk write of all of it once told the file is complete.
func TestWritebackWriter(t *testing.T) {
	data := make([]byte, 3*writebackChunk+12345)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "16384")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := newWritebackWriter(f, 0)
	if _, err := io.CopyBuffer(struct{ io.Writer }{w}, bytes.NewReader(data), make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if w.failed {
		t.Fatal("sync_file_range refused on this filesystem")
	}
	if w.started < 3*writebackChunk {
		t.Fatalf("writeback started up to %d of %d bytes while writing", w.started, len(data))
	}
	w.startWriteback()
	if w.started != int64(len(data)) {
		t.Fatalf("writeback started up to %d of %d bytes at the end", w.started, len(data))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("file content differs from what was written")
	}
}

// Extraction with Writeback writes the same files as without.
func TestExtractWritebackSameFiles(t *testing.T) {
	big := make([]byte, writebackChunk+777)
	rand.Read(big)
	members := map[string][]byte{"base/1/16384": big, "base/1/PG_VERSION": []byte("15\n")}
	tarball := rawTar(t,
		rawMember{hdr: tar.Header{Name: "base/1/16384", Typeflag: tar.TypeReg}, body: string(big)},
		rawMember{hdr: tar.Header{Name: "base/1/PG_VERSION", Typeflag: tar.TypeReg}, body: "15\n"})
	for _, wb := range []bool{false, true} {
		dir := t.TempDir()
		if _, err := ExtractTar(bytes.NewReader(tarball), dir, ExtractOptions{Writeback: wb}); err != nil {
			t.Fatalf("writeback %v: %v", wb, err)
		}
		for name, want := range members {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("writeback %v: %s differs (%v)", wb, name, err)
			}
		}
	}
}
