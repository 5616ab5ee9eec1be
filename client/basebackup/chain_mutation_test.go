package basebackup

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestChainRelationEmptiedByTheNewestDelta: a relation the newest delta
// truncated to 0 pages (VACUUM's truncation, an increment of its header
// alone) restores empty whatever order the backups are extracted in, also
// when the full backup's copy is applied before an older delta's
// increment: that increment's pages lie past the final size and are not
// written.
func TestChainRelationEmptiedByTheNewestDelta(t *testing.T) {
	src := t.TempDir()
	const member = "/base/5/16384"
	rel := filepath.Join(src, "base", "5", "16384")
	writeRel(t, rel, page(0x10, 1, 0), page(0x10, 2, 1), page(0x10, 3, 2))
	full, _ := writeLevel(t, src, 0, nil, member)
	writeRel(t, rel, page(0x10, 1, 0), page(0x150, 9, 1), page(0x10, 3, 2))
	d1, r1 := writeLevel(t, src, 0x100, func(string) bool { return true }, member)
	if !r1.Incremented[member] || r1.ChangedPages != 1 {
		t.Fatalf("delta 1: increments %v, %d pages", r1.Incremented, r1.ChangedPages)
	}
	// walgate writes an empty relation file whole; an increment of 0
	// pages in a file of 0 bytes is valid too (ReadIncrementHeader takes
	// it), and is what this delta holds.
	var inc bytes.Buffer
	if err := writeIncrementHeader(&inc, 0, nil); err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	mtime := time.Date(2026, 12, 1, 2, 3, 4, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Name: member, Typeflag: tar.TypeReg, Size: int64(inc.Len()), Mode: 0o600, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	tw.Write(inc.Bytes())
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := chainLevel{tb.Bytes(), FilesMetadata{
		Files:       map[string]FileDescription{member: {IsIncremented: true, MTime: mtime}},
		TarFileSets: map[string][]string{"part_001.tar": {member}},
	}}
	levels := []chainLevel{d2, d1, full}
	for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		dst := t.TempDir()
		chain := NewChainRestore(d2.fm)
		hooks := make([]*ChainLevel, len(levels))
		for i, l := range levels {
			hooks[i] = chain.Level(l.fm, i == 0)
		}
		for _, i := range order {
			// Fsync as backup-fetch asks for it: every file restored
			// from increments is flushed as it is closed.
			if _, err := ExtractTar(bytes.NewReader(levels[i].tar), dst, ExtractOptions{Chain: hooks[i], Fsync: true}); err != nil {
				t.Fatalf("order %v, level %d: %v", order, i, err)
			}
		}
		if miss := chain.Missing(); len(miss) != 0 {
			t.Fatalf("order %v: missing %v", order, miss)
		}
		fi, err := os.Stat(filepath.Join(dst, "base", "5", "16384"))
		if err != nil || fi.Size() != 0 {
			t.Fatalf("order %v: restored %v (%v), want an empty file", order, fi, err)
		}
	}
}
