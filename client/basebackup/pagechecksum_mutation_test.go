package basebackup

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// pgPages reads a relation file written by PostgreSQL 15 with data
// checksums (testdata/pg15-checksums at the top of the repository; its README.md
// says how it was made).
func pgPages(t *testing.T, name string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pg15-checksums", name))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || len(data)%BlockSize != 0 {
		t.Fatalf("%s: %d bytes, not whole pages", name, len(data))
	}
	var pages [][]byte
	for off := 0; off < len(data); off += BlockSize {
		pages = append(pages, data[off:off+BlockSize])
	}
	return pages
}

// TestPageChecksumOfPostgreSQLPages: the checksum of every page PostgreSQL
// wrote (heap pages, a B-tree meta page and a leaf, with special space) is
// the one PostgreSQL stored in pd_checksum, at the page's block number and
// no other; their headers are valid.
func TestPageChecksumOfPostgreSQLPages(t *testing.T) {
	heap := pgPages(t, "heap-16384")
	index := pgPages(t, "index-16389-blocks-0-1")
	if len(heap) != 17 || len(index) != 2 {
		t.Fatalf("test data: %d heap pages, %d index pages", len(heap), len(index))
	}
	for name, pages := range map[string][][]byte{"heap": heap, "index": index} {
		for blk, p := range pages {
			h := ParsePageHeader(p)
			if got := PageChecksum(p, uint32(blk)); got != h.Checksum {
				t.Errorf("%s block %d: checksum %#04x, PostgreSQL stored %#04x", name, blk, got, h.Checksum)
			}
			if !PageChecksumOK(p, uint32(blk)) {
				t.Errorf("%s block %d fails its checksum", name, blk)
			}
			if PageChecksumOK(p, uint32(blk)+1) || PageChecksumOK(p, uint32(blk)+BlocksPerSegment) {
				t.Errorf("%s block %d passes at another block number", name, blk)
			}
			if h.IsNew() || !h.Valid() {
				t.Errorf("%s block %d: header %+v not valid", name, blk, h)
			}
			if got := ClassifyPage(p, h.LSN); got != PageChanged {
				t.Errorf("%s block %d at its own LSN: %v", name, blk, got)
			}
			if got := ClassifyPage(p, h.LSN+1); got != PageUnchanged {
				t.Errorf("%s block %d before a later LSN: %v", name, blk, got)
			}
		}
	}
	// pd_checksum itself is not part of the sum; any other byte is.
	p := bytes.Clone(heap[3])
	binary.LittleEndian.PutUint16(p[8:10], 0)
	if PageChecksum(p, 3) != ParsePageHeader(heap[3]).Checksum {
		t.Error("the checksum depends on pd_checksum")
	}
	for _, off := range []int{0, 7, 10, 24, 4096, BlockSize - 1} {
		q := bytes.Clone(heap[3])
		q[off] ^= 0x40
		if PageChecksumOK(q, 3) {
			t.Errorf("a page changed at byte %d passes its checksum", off)
		}
	}
}

// TestPageChecksumsOfARelationInATar: a relation PostgreSQL wrote, larger
// than one copy buffer, verifies clean in a whole copy and in an
// increment; pages damaged on either side of the buffer's end are reported
// with their block numbers.
func TestPageChecksumsOfARelationInATar(t *testing.T) {
	heap := pgPages(t, "heap-16384")
	src := t.TempDir()
	path := filepath.Join(src, "base", "5", "16384")
	writeRel(t, path, heap...)
	if len(heap)*BlockSize <= copyBufferSize {
		t.Fatal("test relation fits one copy buffer")
	}
	f := relFile(t, src, "/base/5/16384")
	opts := func(delta uint64) TarOptions {
		return TarOptions{VerifyChecksums: true, DeltaLSN: delta, Incremental: func(string) bool { return true }}
	}
	for _, delta := range []uint64{0, 1} {
		res, err := WriteTarWith(&bytes.Buffer{}, []File{f}, opts(delta))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Corrupt) != 0 {
			t.Errorf("delta LSN %d: clean relation reported corrupt: %+v", delta, res.Corrupt["/base/5/16384"])
		}
	}
	damaged := make([][]byte, len(heap))
	for i, p := range heap {
		damaged[i] = bytes.Clone(p)
	}
	last := len(heap) - 1
	for _, b := range []int{0, copyBufferSize/BlockSize - 1, last} {
		damaged[b][5000] ^= 1
	}
	writeRel(t, path, damaged...)
	for _, delta := range []uint64{0, 1} {
		res, err := WriteTarWith(&bytes.Buffer{}, []File{f}, opts(delta))
		if err != nil {
			t.Fatal(err)
		}
		want := &CorruptBlocks{CorruptBlocksCount: 3, SomeCorruptBlocks: []uint32{0, copyBufferSize/BlockSize - 1, uint32(last)}}
		if got := res.Corrupt["/base/5/16384"]; !reflect.DeepEqual(got, want) {
			t.Errorf("delta LSN %d: corrupt %+v, want %+v", delta, got, want)
		}
	}
}
