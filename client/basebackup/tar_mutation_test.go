package basebackup

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// tarMembers reads a tar stream into member name -> header and body.
func tarMembers(t *testing.T, stream []byte) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	hdrs, bodies := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(stream))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name], bodies[h.Name] = h, b
	}
}

// TestWriteTarOwnerOfTheFile: a file's header carries the owner of the
// file on disk, as PostgreSQL's base backup does.
func TestWriteTarOwnerOfTheFile(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "PG_VERSION", "15\n")
	path := filepath.Join(dir, "PG_VERSION")
	if err := os.Chown(path, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := WriteTar(&buf, []File{fileOf(path, "/PG_VERSION", fi)}); err != nil {
		t.Fatal(err)
	}
	hdrs, bodies := tarMembers(t, buf.Bytes())
	h := hdrs["/PG_VERSION"]
	if h == nil || h.Uid != 4242 || h.Gid != 4343 || string(bodies["/PG_VERSION"]) != "15\n" {
		t.Fatalf("header %+v, body %q: want owner 4242:4343", h, bodies["/PG_VERSION"])
	}
}

// TestWriteTarPadsWithZeros: a file that shrank between the scan and the
// write is padded with zero bytes to its scanned size, whatever the copy
// buffer held before (another file's bytes), whether it shrank inside a
// buffer, to a buffer's end or to nothing.
func TestWriteTarPadsWithZeros(t *testing.T) {
	dir := t.TempDir()
	fill := bytes.Repeat([]byte{0xAB}, 3*copyBufferSize+5)
	long := bytes.Repeat([]byte{0xCD}, 2*copyBufferSize+10)
	contents := map[string][]byte{
		"a-fill":    fill,
		"b-shrinks": []byte("0123456789abcdefghij"),
		"c-emptied": bytes.Repeat([]byte{1}, 100),
		"d-long":    long,
	}
	var files []File
	for _, n := range []string{"a-fill", "b-shrinks", "c-emptied", "d-long"} {
		path := filepath.Join(dir, n)
		if err := os.WriteFile(path, contents[n], 0o600); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fileOf(path, "/"+n, fi))
	}
	for n, size := range map[string]int64{"b-shrinks": 4, "c-emptied": 0, "d-long": copyBufferSize + 3} {
		if err := os.Truncate(filepath.Join(dir, n), size); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	res, err := WriteTar(&buf, files)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(fill) + 20 + 100 + len(long)); res.Bytes != want {
		t.Errorf("Bytes %d, want %d", res.Bytes, want)
	}
	_, bodies := tarMembers(t, buf.Bytes())
	want := map[string][]byte{
		"/a-fill":    fill,
		"/b-shrinks": append([]byte("0123"), make([]byte, 16)...),
		"/c-emptied": make([]byte, 100),
		"/d-long":    append(bytes.Clone(long[:copyBufferSize+3]), make([]byte, copyBufferSize+7)...),
	}
	for m, w := range want {
		if !bytes.Equal(bodies[m], w) {
			t.Errorf("%s: %d bytes, differs from the %d bytes wanted", m, len(bodies[m]), len(w))
		}
	}
}

// TestWriteTarEmptyRelationFile: an empty relation file (a relation
// truncated to nothing) is an empty member in a delta too, not an
// increment.
func TestWriteTarEmptyRelationFile(t *testing.T) {
	src := t.TempDir()
	writeRel(t, filepath.Join(src, "base", "5", "16384"))
	f := relFile(t, src, "/base/5/16384")
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, []File{f}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }, VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Incremented["/base/5/16384"] || res.ChangedPages != 0 || res.Bytes != 0 || len(res.Corrupt) != 0 {
		t.Fatalf("empty relation file: %+v", res)
	}
	hdrs, _ := tarMembers(t, buf.Bytes())
	if h := hdrs["/base/5/16384"]; h == nil || h.Size != 0 {
		t.Fatalf("member %+v, want an empty file", h)
	}
}

// readIncrement parses an increment member: its header and its pages.
func readIncrement(t *testing.T, body []byte) (Increment, [][]byte) {
	t.Helper()
	r := bytes.NewReader(body)
	inc, err := ReadIncrementHeader(r, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var pages [][]byte
	for range inc.Blocks {
		p := make([]byte, BlockSize)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	return inc, pages
}

// TestDeltaChangedBlocks: with the changed blocks known (from WAL
// summaries), an increment holds exactly those pages, whatever their LSN,
// without the blocks past the file's end; a file the summaries cannot
// vouch for is copied whole; the pages are verified.
func TestDeltaChangedBlocks(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	path := filepath.Join(src, "base", "5", "16384")
	pages := [][]byte{page(0x10, 1, 0), page(0x10, 2, 1), page(0x10, 3, 2), page(0x10, 4, 3)}
	pages[3][6000] ^= 0xFF // corrupt on disk
	writeRel(t, path, pages...)
	f := relFile(t, src, member)
	var asked []int64
	opts := TarOptions{
		DeltaLSN: 0x100, Incremental: func(string) bool { return true }, VerifyChecksums: true,
		ChangedBlocks: func(m string, nblocks int64) ([]uint32, bool) {
			asked = append(asked, nblocks)
			return []uint32{1, 3, 4, 9}, m != member
		},
	}
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, []File{f}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(asked, []int64{4}) {
		t.Errorf("ChangedBlocks asked with %v pages, want [4]", asked)
	}
	if !res.Incremented[member] || res.ChangedPages != 2 || res.Bytes != IncrementSize(2) {
		t.Fatalf("result %+v", res)
	}
	if want := (&CorruptBlocks{CorruptBlocksCount: 1, SomeCorruptBlocks: []uint32{3}}); !reflect.DeepEqual(res.Corrupt[member], want) {
		t.Errorf("corrupt %+v, want %+v", res.Corrupt[member], want)
	}
	hdrs, bodies := tarMembers(t, buf.Bytes())
	if hdrs[member].Size != IncrementSize(2) {
		t.Fatalf("member size %d", hdrs[member].Size)
	}
	inc, got := readIncrement(t, bodies[member])
	if inc.FileSize != 4*BlockSize || !reflect.DeepEqual(inc.Blocks, []uint32{1, 3}) {
		t.Fatalf("increment header %+v", inc)
	}
	if !bytes.Equal(got[0], pages[1]) || !bytes.Equal(got[1], pages[3]) {
		t.Error("increment pages differ from the file's pages 1 and 3")
	}

	// The file shrank after the scan: a listed block past its new end is
	// a zero page, as in a whole copy.
	if err := os.Truncate(path, 2*BlockSize); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if res, err = WriteTarWith(&buf, []File{f}, opts); err != nil {
		t.Fatal(err)
	}
	_, bodies = tarMembers(t, buf.Bytes())
	inc, got = readIncrement(t, bodies[member])
	if !reflect.DeepEqual(inc.Blocks, []uint32{1, 3}) || !bytes.Equal(got[0], pages[1]) || !bytes.Equal(got[1], make([]byte, BlockSize)) {
		t.Errorf("shrunk file: blocks %v", inc.Blocks)
	}

	// Whole: copied as it is.
	writeRel(t, path, pages...)
	opts.ChangedBlocks = func(string, int64) ([]uint32, bool) { return []uint32{1}, true }
	buf.Reset()
	if res, err = WriteTarWith(&buf, []File{f}, opts); err != nil {
		t.Fatal(err)
	}
	_, bodies = tarMembers(t, buf.Bytes())
	if res.Incremented[member] || !bytes.Equal(bodies[member], bytes.Join(pages, nil)) {
		t.Errorf("whole copy: incremented %v, %d bytes", res.Incremented[member], len(bodies[member]))
	}
}

// TestDeltaOfAShrunkFile: a relation file that shrank between the scan and
// the delta is an increment of its scanned size whose missing pages are
// zero pages (new pages, held by the increment); WAL replay rewrites them.
func TestDeltaOfAShrunkFile(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	path := filepath.Join(src, "base", "5", "16384")
	pages := [][]byte{page(0x10, 1, 0), page(0x200, 2, 1), page(0x10, 3, 2), page(0x10, 4, 3)}
	writeRel(t, path, pages...)
	f := relFile(t, src, member)
	if err := os.Truncate(path, 2*BlockSize); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, []File{f}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Incremented[member] || res.ChangedPages != 3 {
		t.Fatalf("result %+v", res)
	}
	_, bodies := tarMembers(t, buf.Bytes())
	inc, got := readIncrement(t, bodies[member])
	if inc.FileSize != 4*BlockSize || !reflect.DeepEqual(inc.Blocks, []uint32{1, 2, 3}) {
		t.Fatalf("increment header %+v", inc)
	}
	if !bytes.Equal(got[0], pages[1]) || !bytes.Equal(got[1], make([]byte, BlockSize)) || !bytes.Equal(got[2], make([]byte, BlockSize)) {
		t.Error("increment pages differ")
	}
}

// TestDeltaInvalidPageCountsCorruptOnce: a file a delta copies whole
// because of an invalid page header reports each corrupt page once,
// though the increment's scan saw them first.
func TestDeltaInvalidPageCountsCorruptOnce(t *testing.T) {
	src := t.TempDir()
	damaged := page(0x10, 1, 0)
	damaged[5000] ^= 0xFF
	bad := page(0x500, 2, 1)
	binary.LittleEndian.PutUint16(bad[10:12], 0x80) // unknown flag bit
	writeRel(t, filepath.Join(src, "base", "5", "16384"), damaged, bad, page(0x10, 3, 2))
	f := relFile(t, src, "/base/5/16384")
	res, err := WriteTarWith(io.Discard, []File{f}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }, VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Incremented["/base/5/16384"] {
		t.Fatal("a file with an invalid page header was written as an increment")
	}
	want := &CorruptBlocks{CorruptBlocksCount: 2, SomeCorruptBlocks: []uint32{0, 1}}
	if got := res.Corrupt["/base/5/16384"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("corrupt %+v, want %+v", got, want)
	}
}

// TestChangeScanRanges: a file longer than one scan range, scanned by
// several workers, gives its changed blocks in order across the ranges'
// boundaries, lists and bitmaps alike, and the payload of its increment;
// a file with an invalid page is copied whole.
func TestChangeScanRanges(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	path := filepath.Join(src, "base", "5", "16384")
	const npages = 2*scanRangePages + 10
	// Zero pages (new, so changed) everywhere but at a few unchanged
	// pages; the first range keeps its changed pages as a bitmap, the
	// third (10 pages) as a list.
	unchanged := map[uint32]bool{0: true, 63: true, 64: true, scanRangePages - 1: true, scanRangePages: true, 2*scanRangePages + 3: true}
	writeRel(t, path)
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(npages * BlockSize); err != nil {
		t.Fatal(err)
	}
	for b := range unchanged {
		if _, err := fh.WriteAt(page(0x10, 7, b), int64(b)*BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	fh.Close()
	// A second file with an invalid page header.
	badPath := filepath.Join(src, "base", "5", "16385")
	bad := page(0x500, 1, 1)
	binary.LittleEndian.PutUint16(bad[10:12], 0x80)
	writeRel(t, badPath, page(0x10, 1, 0), bad)
	files := []File{relFile(t, src, member), relFile(t, src, "/base/5/16385")}
	opts := TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }}
	for _, workers := range []int{1, 3} {
		var read atomic.Int64
		cs, err := ScanChanges(context.Background(), files, opts, workers, func(n int64) { read.Add(n) })
		if err != nil {
			t.Fatal(err)
		}
		if want := ScanBytes(files, opts); read.Load() != want || want != (npages+2)*BlockSize {
			t.Errorf("%d workers: told of %d bytes read, want %d (ScanBytes %d)", workers, read.Load(), (npages+2)*BlockSize, want)
		}
		blocks, whole := cs.FileBlocks(member, npages)
		if whole || len(blocks) != npages-len(unchanged) {
			t.Fatalf("%d workers: %d blocks (whole %v), want %d", workers, len(blocks), whole, npages-len(unchanged))
		}
		want := uint32(0)
		for _, b := range blocks {
			for unchanged[want] {
				want++
			}
			if b != want {
				t.Fatalf("%d workers: block %d where %d was due", workers, b, want)
			}
			want++
		}
		withBlocks := opts
		withBlocks.ChangedBlocks = cs.FileBlocks
		if got := Payload(files[0], withBlocks); got != IncrementSize(len(blocks)) {
			t.Errorf("payload %d, want %d", got, IncrementSize(len(blocks)))
		}
		if _, whole := cs.FileBlocks("/base/5/16385", 2); !whole {
			t.Errorf("a file with an invalid page is not copied whole")
		}
		if got := Payload(files[1], withBlocks); got != 2*BlockSize {
			t.Errorf("payload of a whole copy %d, want %d", got, 2*BlockSize)
		}
		if _, whole := cs.FileBlocks("/base/5/99", 1); !whole {
			t.Errorf("a file the scan did not see is not copied whole")
		}
	}
}

// TestDeltaOfAGrownFile: a relation file that grew between the scan and
// the delta (a table extended during the backup) is an increment of its
// scanned size: the pages past it are not read, so a page being written
// there (here, one that is not a valid page yet) neither turns the
// increment into a whole copy nor is reported as corrupt.
func TestDeltaOfAGrownFile(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	path := filepath.Join(src, "base", "5", "16384")
	const npages = copyBufferSize/BlockSize + 2 // read in two pieces
	var pages [][]byte
	for b := range npages {
		lsn := uint64(0x10)
		if b == npages-1 {
			lsn = 0x200
		}
		pages = append(pages, page(lsn, byte(b), uint32(b)))
	}
	writeRel(t, path, pages...)
	f := relFile(t, src, member)
	torn := bytes.Repeat([]byte{0xEE}, BlockSize)
	writeRel(t, path, append(pages, torn)...)
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, []File{f}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }, VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Incremented[member] || res.ChangedPages != 1 || len(res.Corrupt) != 0 {
		t.Fatalf("result %+v, corrupt %+v", res, res.Corrupt[member])
	}
	_, bodies := tarMembers(t, buf.Bytes())
	inc, got := readIncrement(t, bodies[member])
	if inc.FileSize != npages*BlockSize || !reflect.DeepEqual(inc.Blocks, []uint32{npages - 1}) || !bytes.Equal(got[0], pages[npages-1]) {
		t.Fatalf("increment header %+v", inc)
	}
}

// TestChangeScanErrors: a file that cannot be read ends the scan with an
// error naming it; a cancelled scan says so; a file gone since the
// directory walk is left to the tar writer, which skips it.
func TestChangeScanErrors(t *testing.T) {
	src := t.TempDir()
	writeRel(t, filepath.Join(src, "base", "5", "1"), page(0x10, 1, 0))
	f := relFile(t, src, "/base/5/1")
	opts := TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }}

	notFile := f
	notFile.Path = t.TempDir() // a directory: opens, but read fails
	if _, err := ScanChanges(context.Background(), []File{notFile}, opts, 2, nil); err == nil || !strings.Contains(err.Error(), notFile.Path) {
		t.Errorf("unreadable file: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ScanChanges(ctx, []File{f}, opts, 2, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}

	gone := f
	gone.Path = filepath.Join(src, "base", "5", "2")
	cs, err := ScanChanges(context.Background(), []File{gone}, opts, 2, nil)
	if err != nil {
		t.Fatalf("vanished file: %v", err)
	}
	if blocks, whole := cs.FileBlocks(gone.Member, 1); whole || len(blocks) != 0 {
		t.Errorf("vanished file: blocks %v, whole %v; want none, left to the tar writer", blocks, whole)
	}
}

// TestPageSetForms: a scan range keeps its changed pages as a list up to
// 128 of them (at most 512 bytes) and as a 512-byte bitmap past that, the
// smaller of the two, with the same blocks out either way; a file is cut
// into as many ranges as its pages need.
func TestPageSetForms(t *testing.T) {
	const first = 3 * scanRangePages
	var s pageSet
	var want []uint32
	for i := range 129 {
		b := uint32(first + 2*i)
		s.add(first, b)
		want = append(want, b)
		if i == 127 && (s.bits != nil || len(s.list) != 128) {
			t.Fatalf("after 128 pages: list %d, bitmap %d words", len(s.list), len(s.bits))
		}
	}
	if s.list != nil || len(s.bits) != scanRangePages/64 || s.n != 129 {
		t.Fatalf("after 129 pages: list %d, bitmap %d words, n %d; want a bitmap of %d words", len(s.list), len(s.bits), s.n, scanRangePages/64)
	}
	if got := s.appendTo(nil, first); !reflect.DeepEqual(got, want) {
		t.Fatalf("bitmap gives %v, want %v", got, want)
	}

	src := t.TempDir()
	for _, npages := range []int{1, scanRangePages, scanRangePages + 1} {
		path := filepath.Join(src, "base", "5", "1")
		writeRel(t, path)
		if err := os.Truncate(path, int64(npages)*BlockSize); err != nil {
			t.Fatal(err)
		}
		cs, err := ScanChanges(context.Background(), []File{relFile(t, src, "/base/5/1")}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }}, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(cs.files["/base/5/1"].ranges), (npages+scanRangePages-1)/scanRangePages; got != want {
			t.Errorf("%d pages: %d scan ranges, want %d", npages, got, want)
		}
	}
}

// TestPayloadCountsBlocksInsideTheFile: a file's payload counts only the
// changed blocks inside its size (WAL summaries can list blocks past a
// relation's end; the increment drops them).
func TestPayloadCountsBlocksInsideTheFile(t *testing.T) {
	src := t.TempDir()
	writeRel(t, filepath.Join(src, "base", "5", "1"), page(0x10, 1, 0), page(0x10, 2, 1), page(0x10, 3, 2))
	f := relFile(t, src, "/base/5/1")
	opts := TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true },
		ChangedBlocks: func(string, int64) ([]uint32, bool) { return []uint32{0, 2, 3, 9}, false }}
	if got, want := Payload(f, opts), IncrementSize(2); got != want {
		t.Fatalf("payload %d, want %d (blocks 0 and 2 of 3)", got, want)
	}
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, []File{f}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != Payload(f, opts) {
		t.Fatalf("the tar holds %d bytes of payload, Payload said %d", res.Bytes, Payload(f, opts))
	}
}
