package basebackup

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// page builds a valid heap-like page with the given LSN and a body byte,
// and a correct checksum for block blkno.
func page(lsn uint64, body byte, blkno uint32) []byte {
	p := make([]byte, BlockSize)
	le := binary.LittleEndian
	le.PutUint32(p[0:4], uint32(lsn>>32))
	le.PutUint32(p[4:8], uint32(lsn))
	le.PutUint16(p[12:14], 40)             // pd_lower
	le.PutUint16(p[14:16], 8000)           // pd_upper
	le.PutUint16(p[16:18], BlockSize)      // pd_special
	le.PutUint16(p[18:20], BlockSize|0x04) // size | layout version 4
	for i := 8000; i < BlockSize; i++ {
		p[i] = body
	}
	le.PutUint16(p[8:10], PageChecksum(p, blkno))
	return p
}

func writeRel(t *testing.T, path string, pages ...[]byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Join(pages, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func relFile(t *testing.T, root, member string) File {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(member[1:]))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return File{Path: p, Member: member, Size: fi.Size(), Mode: 0o600, ModTime: fi.ModTime()}
}

func TestIsPagedFile(t *testing.T) {
	for m, want := range map[string]bool{
		"/base/5/16384": true, "/base/5/16384.1": true, "/global/1262": true,
		"/pg_tblspc/16385/PG_15_202209061/5/16390.3": true,
		"/base/5/16384_fsm":                          false, "/base/5/16384_vm": false, "/base/5/16384_init": false,
		"/base/5/t3_16384": false, "/base/5/PG_VERSION": false, "/base/5/pg_filenode.map": false,
		"/global/pg_control": false, "/pg_xact/0000": false, "/pg_multixact/offsets/0000": false,
		"/base/x/16384": false, "/postgresql.conf": false, "/base/5/16384.x": false, "/base/5/1.2.3": false,
		"/pg_tblspc/16385/5/16390": false,
	} {
		if got := IsPagedFile(m); got != want {
			t.Errorf("IsPagedFile(%q) = %v, want %v", m, got, want)
		}
	}
	if SegmentNumber("/base/5/16384.3") != 3 || SegmentNumber("/base/5/16384") != 0 {
		t.Error("SegmentNumber")
	}
}

func TestPageChecksumAndClassify(t *testing.T) {
	p := page(0x100000028, 7, 3)
	if !PageChecksumOK(p, 3) {
		t.Fatal("a page with its own checksum fails")
	}
	if PageChecksumOK(p, 4) {
		t.Fatal("the checksum does not depend on the block number")
	}
	q := bytes.Clone(p)
	q[5000] ^= 1
	if PageChecksumOK(q, 3) {
		t.Fatal("a flipped bit passes the checksum")
	}
	if !PageChecksumOK(make([]byte, BlockSize), 9) {
		t.Fatal("a new (all-zero) page has no checksum to fail")
	}
	for _, c := range []struct {
		p    []byte
		want PageVerdict
	}{
		{page(0x100000028, 1, 0), PageChanged},   // LSN == delta LSN
		{page(0x200000000, 1, 0), PageChanged},   // after
		{page(0x0FFFFFFFF, 1, 0), PageUnchanged}, // before
		{make([]byte, BlockSize), PageChanged},   // new
	} {
		if got := ClassifyPage(c.p, 0x100000028); got != c.want {
			t.Errorf("ClassifyPage = %v, want %v", got, c.want)
		}
	}
	bad := page(0x200000000, 1, 0)
	binary.LittleEndian.PutUint16(bad[12:14], 9000) // pd_lower > pd_upper
	if ClassifyPage(bad, 1) != PageInvalid {
		t.Error("an invalid header is not PageInvalid")
	}
}

// A full backup and two increments of one relation file restored as a
// chain give the current file byte for byte, whatever happened between:
// pages changed, the file extended, then truncated.
func TestIncrementChainRoundTrip(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	rel := filepath.Join(src, "base", "5", "16384")
	whole := "/base/5/16385_vm" // copied whole every time
	wholePath := filepath.Join(src, "base", "5", "16385_vm")
	gone := "/base/5/16386" // dropped before the last backup
	gonePath := filepath.Join(src, "base", "5", "16386")

	backup := func(deltaLSN uint64, parent map[string]bool, members ...string) (chainLevel, TarResult) {
		t.Helper()
		return writeLevel(t, src, deltaLSN, func(m string) bool { return parent[m] }, members...)
	}

	// Full: 4 pages at LSN 0x10.
	writeRel(t, rel, page(0x10, 1, 0), page(0x10, 2, 1), page(0x10, 3, 2), page(0x10, 4, 3))
	writeRel(t, wholePath, []byte("vm v1"))
	writeRel(t, gonePath, page(0x10, 9, 0))
	full, _ := backup(0, nil, member, whole, gone)
	inFull := map[string]bool{member: true, whole: true, gone: true}

	// Delta 1 (parent started at 0x100): page 1 changed, two pages added
	// (one new, all zeros).
	writeRel(t, rel, page(0x10, 1, 0), page(0x150, 20, 1), page(0x10, 3, 2), page(0x10, 4, 3), page(0x160, 5, 4), make([]byte, BlockSize))
	writeRel(t, wholePath, []byte("vm v2"))
	d1, r1 := backup(0x100, inFull, member, whole, gone)
	// 16384: blocks 1, 4 and the new 5; 16386: unchanged, an empty
	// increment; the vm fork: whole.
	if !r1.Incremented[member] || !r1.Incremented[gone] || r1.Incremented[whole] || r1.ChangedPages != 3 {
		t.Fatalf("delta 1: increments %v, %d pages", r1.Incremented, r1.ChangedPages)
	}

	// Delta 2 (parent started at 0x200): page 2 changed, the file cut to 4
	// pages, page 1 changed again; 16386 dropped.
	writeRel(t, rel, page(0x10, 1, 0), page(0x250, 21, 1), page(0x260, 30, 2), page(0x10, 4, 3))
	os.Remove(gonePath)
	d2, r2 := backup(0x200, map[string]bool{member: true, whole: true}, member, whole)
	if r2.ChangedPages != 2 {
		t.Fatalf("delta 2 holds %d pages, want 2 (blocks 1 and 2)", r2.ChangedPages)
	}
	want, _ := os.ReadFile(rel)

	dst := t.TempDir()
	chain := restoreChain(t, dst, d2, d1, full)
	got, _ := os.ReadFile(filepath.Join(dst, "base", "5", "16384"))
	if !bytes.Equal(got, want) {
		t.Fatalf("restored relation differs: %d bytes, want %d", len(got), len(want))
	}
	if vm, _ := os.ReadFile(filepath.Join(dst, "base", "5", "16385_vm")); string(vm) != "vm v2" {
		t.Fatalf("whole file: %q", vm)
	}
	if _, err := os.Stat(filepath.Join(dst, "base", "5", "16386")); !os.IsNotExist(err) {
		t.Fatalf("a file dropped before the newest backup was restored (%v)", err)
	}

	// Nothing is left to fetch: a tar holding only finished files is not
	// needed.
	if need := chain.NeededTars(full.fm); len(need) != 0 {
		t.Fatalf("tars still needed after the full: %v", need)
	}
	onlyVM := FilesMetadata{TarFileSets: map[string][]string{"part_009.tar": {whole, gone}}}
	if need := chain.NeededTars(onlyVM); len(need) != 0 {
		t.Fatalf("a tar of finished or dropped files is needed: %v", need)
	}
}

// chainLevel is one backup of a test chain: its data tar and files metadata.
type chainLevel struct {
	tar []byte
	fm  FilesMetadata
}

// writeLevel backs up members of the directory src into one data tar, as
// increments over a parent that started at deltaLSN where incremental says
// so (deltaLSN 0: a full backup), and returns it with its files metadata.
func writeLevel(t *testing.T, src string, deltaLSN uint64, incremental func(string) bool, members ...string) (chainLevel, TarResult) {
	t.Helper()
	var files []File
	for _, m := range members {
		files = append(files, relFile(t, src, m))
	}
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, files, TarOptions{DeltaLSN: deltaLSN, Incremental: incremental, VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	fm := NewFilesMetadata()
	fm.AddTar("part_001.tar", res.Members, files)
	for m := range res.Incremented {
		d := fm.Files[m]
		d.IsIncremented = true
		fm.Files[m] = d
	}
	return chainLevel{buf.Bytes(), *fm}, res
}

// restoreChain restores levels, newest first, into dst and fails the test
// when a file of the newest backup is still missing after the last level.
func restoreChain(t *testing.T, dst string, levels ...chainLevel) *ChainRestore {
	t.Helper()
	chain := NewChainRestore(levels[0].fm)
	for i, l := range levels {
		lo := chain.Level(l.fm, i == 0)
		if i > 0 && len(chain.NeededTars(l.fm)) == 0 {
			continue
		}
		if _, err := ExtractTar(bytes.NewReader(l.tar), dst, ExtractOptions{Chain: lo}); err != nil {
			t.Fatalf("level %d: %v", i, err)
		}
	}
	if miss := chain.Missing(); len(miss) != 0 {
		t.Fatalf("missing after the full: %v", miss)
	}
	return chain
}

// TestDeltaWritesNewFilesWhole: a file the parent backup lacks is written
// whole in a delta, even when its pages carry LSNs older than the parent's
// start (CREATE DATABASE and ALTER TABLE SET TABLESPACE copy pages with
// their LSNs). As an increment it would hold only its newer pages, and no
// older backup has the others: the chain could not be restored.
func TestDeltaWritesNewFilesWhole(t *testing.T) {
	src := t.TempDir()
	const old, added = "/base/5/16384", "/base/5/16390"
	writeRel(t, filepath.Join(src, "base", "5", "16384"), page(0x10, 1, 0), page(0x10, 2, 1))
	full, _ := writeLevel(t, src, 0, nil, old)

	// After the full backup (the delta's parent, started at 0x100): the
	// old file changes one page; a new file appears with two copied pages
	// from before the parent and one written after it.
	writeRel(t, filepath.Join(src, "base", "5", "16384"), page(0x10, 1, 0), page(0x150, 3, 1))
	writeRel(t, filepath.Join(src, "base", "5", "16390"), page(0x20, 7, 0), page(0x30, 8, 1), page(0x180, 9, 2))
	inParent := func(m string) bool { _, ok := full.fm.Files[m]; return ok }
	delta, res := writeLevel(t, src, 0x100, inParent, old, added)

	if !res.Incremented[old] {
		t.Errorf("%s, held by the parent, was not written as an increment", old)
	}
	if res.Incremented[added] {
		t.Fatalf("%s, which the parent lacks, was written as an increment", added)
	}
	if d := delta.fm.Files[added]; d.IsIncremented {
		t.Errorf("files metadata marks %s as an increment", added)
	}
	tr := tar.NewReader(bytes.NewReader(delta.tar))
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the delta's tar: %v", added, err)
		}
		if hdr.Name == added {
			if hdr.Size != 3*BlockSize {
				t.Errorf("%s is %d bytes in the delta's tar, want the whole %d", added, hdr.Size, 3*BlockSize)
			}
			break
		}
	}

	dst := t.TempDir()
	restoreChain(t, dst, delta, full)
	for _, m := range []string{old, added} {
		want, _ := os.ReadFile(filepath.Join(src, filepath.FromSlash(m[1:])))
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(m[1:])))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("restored %s: %d bytes (%v), want the %d bytes backed up", m, len(got), err, len(want))
		}
	}
}

// A page with an invalid header makes the file a whole copy.
func TestIncrementInvalidPageCopiesWhole(t *testing.T) {
	src := t.TempDir()
	bad := page(0x500, 1, 1)
	binary.LittleEndian.PutUint16(bad[10:12], 0x80) // unknown flag bit
	writeRel(t, filepath.Join(src, "base", "5", "1"), page(0x10, 1, 0), bad)
	f := relFile(t, src, "/base/5/1")
	var buf bytes.Buffer
	res, err := WriteTarWith(&buf, []File{f}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Incremented["/base/5/1"] || res.Bytes != 2*BlockSize {
		t.Fatalf("invalid page: %+v", res)
	}
}

// Checksum failures are found in whole copies and increments, with block
// numbers within the file.
func TestVerifyChecksums(t *testing.T) {
	src := t.TempDir()
	p1 := page(0x10, 2, BlocksPerSegment+1) // segment file .1: block numbers offset
	p1[6000] ^= 0xFF
	writeRel(t, filepath.Join(src, "base", "5", "7.1"), page(0x10, 1, BlocksPerSegment), p1, page(0x10, 3, BlocksPerSegment+2))
	f := relFile(t, src, "/base/5/7.1")
	for _, delta := range []uint64{0, 0x5} {
		res, err := WriteTarWith(io.Discard, []File{f}, TarOptions{DeltaLSN: delta, Incremental: func(string) bool { return true }, VerifyChecksums: true})
		if err != nil {
			t.Fatal(err)
		}
		cb := res.Corrupt["/base/5/7.1"]
		if cb == nil || cb.CorruptBlocksCount != 1 || !reflect.DeepEqual(cb.SomeCorruptBlocks, []uint32{1}) {
			t.Fatalf("delta LSN %#x: corrupt = %+v", delta, cb)
		}
	}
}

// A delta verifies the pages it stores, not those it leaves to its
// parent: a damaged page older than the parent's start is restored from
// the parent's copy, verified when the parent read it.
func TestDeltaVerifiesStoredPagesOnly(t *testing.T) {
	src := t.TempDir()
	old := page(0x10, 1, 0)
	old[6000] ^= 0xFF
	changed := page(0x200, 2, 1)
	changed[6000] ^= 0xFF
	writeRel(t, filepath.Join(src, "base", "5", "7"), old, changed, page(0x10, 3, 2))
	f := relFile(t, src, "/base/5/7")
	res, err := WriteTarWith(io.Discard, []File{f}, TarOptions{DeltaLSN: 0x100, Incremental: func(string) bool { return true }, VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Incremented["/base/5/7"] || res.ChangedPages != 1 {
		t.Fatalf("result %+v", res)
	}
	want := &CorruptBlocks{CorruptBlocksCount: 1, SomeCorruptBlocks: []uint32{1}}
	if got := res.Corrupt["/base/5/7"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("corrupt %+v, want %+v (only the stored page)", got, want)
	}
}

func TestReadIncrementHeaderRefusals(t *testing.T) {
	mk := func(size uint64, blocks ...uint32) []byte {
		var b bytes.Buffer
		writeIncrementHeader(&b, int64(size), blocks)
		return b.Bytes()
	}
	for name, c := range map[string]struct {
		data []byte
		size int64
	}{
		"short":          {[]byte("wi1"), 3},
		"bad magic":      {append([]byte("xx1\x55"), make([]byte, 12)...), 16},
		"odd file size":  {mk(100), 16},
		"too many pages": {mk(BlockSize, 0, 1), IncrementSize(2)},
		"out of order":   {mk(4*BlockSize, 2, 1), IncrementSize(2)},
		"duplicate":      {mk(4*BlockSize, 1, 1), IncrementSize(2)},
		"past the end":   {mk(2*BlockSize, 5), IncrementSize(1)},
		"size mismatch":  {mk(4*BlockSize, 1), IncrementSize(1) + 1},
		"huge file":      {mk(1 << 50), 16},
		"truncated list": {mk(4*BlockSize, 0, 1)[:20], IncrementSize(2)},
	} {
		if _, err := ReadIncrementHeader(bytes.NewReader(c.data), c.size); !errors.Is(err, ErrBadIncrement) {
			t.Errorf("%s: %v", name, err)
		}
	}
	inc, err := ReadIncrementHeader(bytes.NewReader(mk(4*BlockSize, 0, 3)), IncrementSize(2))
	if err != nil || inc.FileSize != 4*BlockSize || !reflect.DeepEqual(inc.Blocks, []uint32{0, 3}) {
		t.Fatalf("valid header: %+v %v", inc, err)
	}
}

// A malformed increment in a chain fails the extraction with
// ErrBadIncrement instead of writing garbage.
func TestChainRefusesBadIncrement(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	body := []byte("wi1\x55 not really")
	tw.WriteHeader(&tar.Header{Name: "/base/5/1", Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o600, ModTime: time.Unix(0, 0)})
	tw.Write(body)
	tw.Close()
	fm := FilesMetadata{Files: map[string]FileDescription{"/base/5/1": {IsIncremented: true}}, TarFileSets: map[string][]string{"part_001.tar": {"/base/5/1"}}}
	c := NewChainRestore(fm)
	if _, err := ExtractTar(&tb, t.TempDir(), ExtractOptions{Chain: c.Level(fm, true)}); !errors.Is(err, ErrBadIncrement) {
		t.Fatalf("bad increment: %v", err)
	}
}
