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

// TestChainWriteback: a chain restore with Writeback starts the disk
// write of the pages a whole copy fills (every writebackChunk bytes, then
// the rest: the range holds the pages increments wrote too), and restores
// the same bytes, with a run of changed pages longer than one write;
// without Writeback it starts none.
func TestChainWriteback(t *testing.T) {
	src := t.TempDir()
	const rel = "/base/5/16384"
	relPath := filepath.Join(src, "base", "5", "16384")
	n := writebackChunk/BlockSize + 3
	var pages [][]byte
	for b := range n {
		pages = append(pages, page(0x10, byte(b), uint32(b)))
	}
	writeRel(t, relPath, pages...)
	full, _ := writeLevel(t, src, 0, nil, rel)
	changed := []int{1, n - 2}
	for b := 100; b < 100+copyBufferSize/BlockSize+5; b++ {
		changed = append(changed, b)
	}
	for _, b := range changed {
		pages[b] = page(0x150, byte(b)+100, uint32(b))
	}
	writeRel(t, relPath, pages...)
	delta, res := writeLevel(t, src, 0x100, func(string) bool { return true }, rel)
	if res.ChangedPages != int64(len(changed)) {
		t.Fatalf("the delta holds %d pages, want %d", res.ChangedPages, len(changed))
	}
	want, err := os.ReadFile(relPath)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(want))
	for _, wb := range []bool{false, true} {
		dst := t.TempDir()
		type call struct{ off, n int64 }
		var calls []call
		record := func(f *os.File, off, n int64) error {
			if filepath.Base(f.Name()) == "16384" {
				calls = append(calls, call{off, n})
			}
			return nil
		}
		chain := NewChainRestore(delta.fm)
		for i, l := range []chainLevel{delta, full} {
			opts := ExtractOptions{Chain: chain.Level(l.fm, i == 0), Writeback: wb, startWriteback: record}
			if _, err := ExtractTar(bytes.NewReader(l.tar), dst, opts); err != nil {
				t.Fatalf("writeback %v, level %d: %v", wb, i, err)
			}
		}
		got, err := os.ReadFile(filepath.Join(dst, "base", "5", "16384"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("writeback %v: restored %d bytes (%v), want the source's %d", wb, len(got), err, len(want))
		}
		wantCalls := []call{{0, writebackChunk}, {writebackChunk, size - writebackChunk}}
		if !wb {
			wantCalls = nil
		}
		if len(calls) != len(wantCalls) {
			t.Fatalf("writeback %v: started %v, want %v", wb, calls, wantCalls)
		}
		for i := range calls {
			if calls[i] != wantCalls[i] {
				t.Fatalf("writeback %v: started %v, want %v", wb, calls, wantCalls)
			}
		}
	}
}
