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
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("reading /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}

// TestIncrementReadsChangedPagesOnce: a delta reads a relation file once,
// changed pages included, when they fit the held-page bound, and reads
// again only those past it; either way the increment round-trips byte
// for byte.
func TestIncrementReadsChangedPagesOnce(t *testing.T) {
	const npages = 1024 // 8 MiB
	perHeld := heldPagesMax / BlockSize
	for _, changed := range []int{200, perHeld + 100} {
		t.Run(fmt.Sprint(changed), func(t *testing.T) {
			src := t.TempDir()
			const member = "/base/5/16384"
			path := filepath.Join(src, "base", "5", "16384")
			var pages [][]byte
			for b := range npages {
				pages = append(pages, page(0x10, byte(b), uint32(b)))
			}
			writeRel(t, path, pages...)
			full, _ := writeLevel(t, src, 0, nil, member)
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
			reread := max(changed-perHeld, 0)
			want := int64(npages+reread) * BlockSize
			t.Logf("%d changed pages: read %d bytes for a %d-byte file (%d pages read twice)", changed, read, npages*BlockSize, reread)
			// A little slack for the test's own small reads.
			if read < want || read > want+64<<10 {
				t.Fatalf("read %d bytes, want %d: the file once and %d pages again", read, want, reread)
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
