package basebackup

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// segmentPages returns n valid pages of segment file .1 (blocks
// BlocksPerSegment+i of the relation), LSN lsn.
func segmentPages(n int, lsn uint64) [][]byte {
	var pages [][]byte
	for i := range n {
		pages = append(pages, page(lsn, byte(i+1), BlocksPerSegment+uint32(i)))
	}
	return pages
}

// openPages writes pages to a file and opens it for reading.
func openPages(t *testing.T, pages [][]byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "16384.1")
	writeRel(t, path, pages...)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPageVerifierRereadsAFailingPage: a page that fails its checksum as
// read but passes when read again from the file (a read torn by a
// concurrent write) is not reported, at any offset of a chunk read from
// the middle of the file; one that fails again is, with its block number
// in the file.
func TestPageVerifierRereadsAFailingPage(t *testing.T) {
	pages := segmentPages(6, 0x10)
	src := openPages(t, pages)
	// The chunk holds pages 2 to 5 of the file, as read; pages 3 and 5
	// torn in the read.
	chunk := bytes.Join(pages[2:], nil)
	chunk[1*BlockSize+3000] ^= 0xFF
	chunk[3*BlockSize+100] ^= 0xFF
	v := &pageVerifier{src: src, base: BlocksPerSegment}
	v.check(chunk, 2*BlockSize)
	if got := v.result(); got != nil {
		t.Fatalf("pages whole on disk reported corrupt: %+v", got)
	}

	// Damaged on disk too: reported, at their block numbers in the file.
	onDisk := make([][]byte, len(pages))
	for i, p := range pages {
		onDisk[i] = bytes.Clone(p)
	}
	onDisk[3][3000] ^= 0xFF
	onDisk[5][100] ^= 0xFF
	src = openPages(t, onDisk)
	chunk = bytes.Join(onDisk[2:], nil)
	v = &pageVerifier{src: src, base: BlocksPerSegment}
	v.check(chunk, 2*BlockSize)
	want := &CorruptBlocks{CorruptBlocksCount: 2, SomeCorruptBlocks: []uint32{3, 5}}
	if got := v.result(); !reflect.DeepEqual(got, want) {
		t.Fatalf("corrupt %+v, want %+v", got, want)
	}
}

// TestPageVerifierStartLSN: a page failing its checksum whose LSN is at or
// after the backup's start is being rewritten (WAL replay restores it) and
// is not reported; one with an LSN before it is; without a start LSN every
// failing page is.
func TestPageVerifierStartLSN(t *testing.T) {
	for _, c := range []struct {
		pageLSN, startLSN uint64
		reported          bool
	}{
		{0x500, 0x500, false},
		{0x501, 0x500, false},
		{0x4FF, 0x500, true},
		{0x500, 0, true},
	} {
		p := page(c.pageLSN, 7, BlocksPerSegment)
		p[6000] ^= 0xFF
		v := &pageVerifier{src: openPages(t, [][]byte{p}), base: BlocksPerSegment, startLSN: c.startLSN}
		v.check(p, 0)
		if got := v.result() != nil; got != c.reported {
			t.Errorf("page LSN %#x, start LSN %#x: reported %v, want %v", c.pageLSN, c.startLSN, got, c.reported)
		}
	}
}

// TestPageVerifierListsTen: every corrupt page is counted, the first ten
// listed (WAL-G's SomeCorruptBlocks).
func TestPageVerifierListsTen(t *testing.T) {
	pages := segmentPages(12, 0x10)
	for _, p := range pages {
		p[7000] ^= 0xFF
	}
	v := &pageVerifier{src: openPages(t, pages), base: BlocksPerSegment}
	v.check(bytes.Join(pages, nil), 0)
	want := &CorruptBlocks{CorruptBlocksCount: 12, SomeCorruptBlocks: []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	if got := v.result(); !reflect.DeepEqual(got, want) {
		t.Fatalf("corrupt %+v, want %+v", got, want)
	}
}
