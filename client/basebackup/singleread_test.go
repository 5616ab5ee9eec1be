package basebackup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readBytes is this process's count of bytes read by read system calls
// (rchar in /proc/self/io), page cache hits included.
func readBytes(t *testing.T) int64 {
	t.Helper()
	return procIO(t, "rchar")
}

// procIO is one counter of /proc/self/io: rchar (bytes read), syscr
// (read system calls), ...
func procIO(t *testing.T, field string) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("reading /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+": "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/io", field)
	return 0
}

// TestIncrementReadsChangedPagesTwice: a delta reads a relation file
// once for its page LSNs, then the changed pages once more to write them;
// nothing else, whether the scan keeps the changed pages as a list or, past
// 128 in a range, as a bitmap; the increment round-trips byte for byte.
func TestIncrementReadsChangedPagesTwice(t *testing.T) {
	const npages = 1024 // 8 MiB
	for _, changed := range []int{100, 400} {
		t.Run(fmt.Sprint(changed), func(t *testing.T) {
			const member = singleReadMember
			src, path, pages, full := fullBackedRel(t, npages)
			// Every other page changed, from the start.
			for i := range changed {
				pages[2*i] = page(0x150, byte(i)+1, uint32(2*i))
			}
			writeRel(t, path, pages...)

			before := readBytes(t)
			delta, res := writeLevel(t, src, 0x100, func(string) bool { return true }, member)
			read := readBytes(t) - before
			if res.ChangedPages != int64(changed) {
				t.Fatalf("increment holds %d pages, want %d", res.ChangedPages, changed)
			}
			want := int64(npages+changed) * BlockSize
			t.Logf("%d changed pages: read %d bytes for a %d-byte file", changed, read, npages*BlockSize)
			// A little slack for the test's own small reads.
			if read < want || read > want+64<<10 {
				t.Fatalf("read %d bytes, want %d: the file once and the %d changed pages again", read, want, changed)
			}

			dst := t.TempDir()
			restoreChain(t, dst, delta, full)
			got, err := os.ReadFile(filepath.Join(dst, "base", "5", "16384"))
			if err != nil || !bytes.Equal(got, bytes.Join(pages, nil)) {
				t.Fatalf("restored relation differs (%v)", err)
			}
		})
	}
}

// TestIncrementRereadsRuns: an increment reads its changed pages a run
// of consecutive blocks at a time (up to one copy buffer per read), not
// one page per read, and the increment round-trips.
func TestIncrementRereadsRuns(t *testing.T) {
	const npages = 1024 // 8 MiB: 64 reads of the copy buffer for the scan
	const changed = 416 // consecutive: 26 reads of the copy buffer
	const member = singleReadMember
	src, path, pages, full := fullBackedRel(t, npages)
	for b := range changed {
		pages[b] = page(0x150, byte(b)+1, uint32(b))
	}
	writeRel(t, path, pages...)

	before := procIO(t, "syscr")
	delta, res := writeLevel(t, src, 0x100, func(string) bool { return true }, member)
	calls := procIO(t, "syscr") - before
	if res.ChangedPages != changed {
		t.Fatalf("increment holds %d pages, want %d", res.ChangedPages, changed)
	}
	scan, reread := int64(npages*BlockSize/copyBufferSize), int64(changed*BlockSize/copyBufferSize)
	t.Logf("%d read calls: %d for the scan, %d for the %d changed pages", calls, scan, calls-scan, changed)
	// A little slack for the test's own reads (this file, /proc/self/io).
	if calls > scan+reread+8 {
		t.Fatalf("%d read calls, want about %d: the scan's %d and %d for %d consecutive pages", calls, scan+reread, scan, reread, changed)
	}
	dst := t.TempDir()
	restoreChain(t, dst, delta, full)
	got, err := os.ReadFile(filepath.Join(dst, "base", "5", "16384"))
	if err != nil || !bytes.Equal(got, bytes.Join(pages, nil)) {
		t.Fatalf("restored relation differs (%v)", err)
	}
}

// singleReadMember is the relation file fullBackedRel writes.
const singleReadMember = "/base/5/16384"

// fullBackedRel writes singleReadMember of npages pages under a new
// directory and backs it up whole: the directory, the file's path, its
// pages and the full backup's level.
func fullBackedRel(t *testing.T, npages int) (src, path string, pages [][]byte, full chainLevel) {
	t.Helper()
	src = t.TempDir()
	path = filepath.Join(src, "base", "5", "16384")
	for b := range npages {
		pages = append(pages, page(0x10, byte(b), uint32(b)))
	}
	writeRel(t, path, pages...)
	full, _ = writeLevel(t, src, 0, nil, singleReadMember)
	return src, path, pages, full
}
