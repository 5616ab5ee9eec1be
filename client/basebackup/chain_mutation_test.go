package basebackup

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestChainFillAcrossCopyBuffers: a relation larger than the extractor's
// copy buffer, changed and then cut by VACUUM's truncation in the delta,
// restores to exactly the delta's pages and length: the full backup's
// copy fills every page no increment wrote, chunk by chunk, and nothing
// past the final size.
func TestChainFillAcrossCopyBuffers(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	rel := filepath.Join(src, "base", "5", "16384")
	perChunk := copyBufferSize / BlockSize
	total := 2*perChunk + perChunk/2 // two and a half copy buffers
	var pages [][]byte
	for b := range total {
		pages = append(pages, page(0x10, byte(b), uint32(b)))
	}
	writeRel(t, rel, pages...)
	full, _ := writeLevel(t, src, 0, nil, member)

	// The delta: pages on both sides of a buffer boundary changed, the
	// relation cut inside the second buffer.
	cut := perChunk + perChunk/2
	pages = pages[:cut]
	for _, b := range []int{3, perChunk - 1, perChunk, cut - 1} {
		pages[b] = page(0x150, byte(b)+100, uint32(b))
	}
	writeRel(t, rel, pages...)
	delta, res := writeLevel(t, src, 0x100, func(string) bool { return true }, member)
	if !res.Incremented[member] || res.ChangedPages != 4 {
		t.Fatalf("delta: increments %v, %d pages", res.Incremented, res.ChangedPages)
	}
	want := bytes.Join(pages, nil)

	dst := t.TempDir()
	restoreChain(t, dst, delta, full)
	got, err := os.ReadFile(filepath.Join(dst, "base", "5", "16384"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("restored %d bytes, want %d", len(got), len(want))
	}
	for b := range cut {
		if !bytes.Equal(got[b*BlockSize:(b+1)*BlockSize], want[b*BlockSize:(b+1)*BlockSize]) {
			t.Fatalf("page %d differs", b)
		}
	}
}

// TestChainRestoresAnUnchangedRelation: a relation no page of which
// changed since the parent is an increment of its header alone, and
// restores from the parent's copy.
func TestChainRestoresAnUnchangedRelation(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	rel := filepath.Join(src, "base", "5", "16384")
	writeRel(t, rel, page(0x10, 1, 0), page(0x10, 2, 1))
	full, _ := writeLevel(t, src, 0, nil, member)
	delta, res := writeLevel(t, src, 0x100, func(string) bool { return true }, member)
	if !res.Incremented[member] || res.ChangedPages != 0 {
		t.Fatalf("delta: increments %v, %d pages", res.Incremented, res.ChangedPages)
	}
	dst := t.TempDir()
	restoreChain(t, dst, delta, full)
	want, _ := os.ReadFile(rel)
	if got, err := os.ReadFile(filepath.Join(dst, "base", "5", "16384")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored %d bytes (%v), want the parent's %d", len(got), err, len(want))
	}
}
