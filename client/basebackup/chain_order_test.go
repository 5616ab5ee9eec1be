package basebackup

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestChainAnyOrder: the tars of a chain may be extracted in any order,
// also all at once, and the restore is the newest backup's files byte for
// byte, with its mode and time: two deltas change the same page (the
// newest wins), the relation grows in one and shrinks in the next, a file
// is rewritten whole in delta 1 and incremented in delta 2, and the full
// backup's copies fill the rest. The full backup's tar of a file held
// whole by a newer backup is not needed.
func TestChainAnyOrder(t *testing.T) {
	src := t.TempDir()
	const rel, rewritten, old = "/base/5/16384", "/base/5/16390", "/base/5/16400"
	relPath := filepath.Join(src, "base", "5", "16384")
	rwPath := filepath.Join(src, "base", "5", "16390")
	oldPath := filepath.Join(src, "base", "5", "16400")
	pages := func(lsn uint64, fill byte, n int) [][]byte {
		var out [][]byte
		for b := range n {
			out = append(out, page(lsn, fill+byte(b), uint32(b)))
		}
		return out
	}

	// Full: 6 pages; 16390 (4 pages) and 16400 (in a tar of its own).
	writeRel(t, relPath, pages(0x10, 1, 6)...)
	writeRel(t, rwPath, pages(0x10, 50, 4)...)
	writeRel(t, oldPath, []byte("old v1"))
	fullA, _ := writeLevel(t, src, 0, nil, rel, rewritten)
	fullB, _ := writeLevel(t, src, 0, nil, old)
	full := mergeLevels(fullA, fullB)

	// Delta 1: pages 1 and 2 changed, grown to 8; 16390 rewritten whole
	// (not offered as an increment); 16400 whole again.
	p := pages(0x10, 1, 6)
	p[1], p[2] = page(0x150, 101, 1), page(0x150, 102, 2)
	p = append(p, page(0x160, 106, 6), page(0x160, 107, 7))
	writeRel(t, relPath, p...)
	writeRel(t, rwPath, pages(0x150, 70, 5)...)
	writeRel(t, oldPath, []byte("old v2"))
	d1, r1 := writeLevel(t, src, 0x100, func(m string) bool { return m == rel }, rel, rewritten, old)
	if !r1.Incremented[rel] || r1.Incremented[rewritten] || r1.ChangedPages != 4 {
		t.Fatalf("delta 1: increments %v, %d pages", r1.Incremented, r1.ChangedPages)
	}

	// Delta 2: page 2 changed again, page 4 changed, cut to 7 pages;
	// 16390: page 3 changed.
	p[2], p[4] = page(0x250, 202, 2), page(0x250, 204, 4)
	p = p[:7]
	writeRel(t, relPath, p...)
	rw := pages(0x150, 70, 5)
	rw[3] = page(0x260, 93, 3)
	writeRel(t, rwPath, rw...)
	mtime := time.Date(2026, 12, 1, 2, 3, 4, 0, time.UTC)
	os.Chtimes(relPath, mtime, mtime)
	d2, r2 := writeLevel(t, src, 0x200, func(m string) bool { return m != old }, rel, rewritten, old)
	if r2.ChangedPages != 3 {
		t.Fatalf("delta 2 holds %d pages, want 3", r2.ChangedPages)
	}
	want := map[string][]byte{}
	for _, m := range []string{rel, rewritten, old} {
		want[m], _ = os.ReadFile(filepath.Join(src, m))
	}

	levels := []tarLevel{mergeLevels(d2), mergeLevels(d1), full}
	check := func(t *testing.T, dst string, chain *ChainRestore) {
		t.Helper()
		if miss := chain.Missing(); len(miss) != 0 {
			t.Fatalf("missing: %v", miss)
		}
		for m, w := range want {
			got, err := os.ReadFile(filepath.Join(dst, m))
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("%s: restored %d bytes (%v), want %d, equal %v", m, len(got), err, len(w), bytes.Equal(got, w))
			}
		}
		if fi, err := os.Stat(filepath.Join(dst, rel)); err != nil || !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want time %v mode 0600", rel, fi, mtime)
		}
	}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}} {
		dst := t.TempDir()
		chain := NewChainRestore(levels[0].fm)
		hooks := make([]*ChainLevel, len(levels))
		for i, l := range levels {
			hooks[i] = chain.Level(l.fm, i == 0)
		}
		if need := hooks[2].Tars(); len(need) != 1 || need[0] != "part_001.tar" {
			t.Fatalf("the full backup's tars needed: %v, want only part_001.tar (part_002.tar holds 16400, whole in a delta)", need)
		}
		for _, i := range order {
			for _, tar := range levels[i].tars(hooks[i].Tars()) {
				if _, err := ExtractTar(bytes.NewReader(tar), dst, ExtractOptions{Chain: hooks[i]}); err != nil {
					t.Fatalf("order %v, level %d: %v", order, i, err)
				}
			}
		}
		check(t, dst, chain)
	}

	// All at once, as backup-fetch does.
	for range 5 {
		dst := t.TempDir()
		chain := NewChainRestore(levels[0].fm)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i, l := range levels {
			hook := chain.Level(l.fm, i == 0)
			for _, tar := range l.tars(hook.Tars()) {
				wg.Go(func() {
					if _, err := ExtractTar(bytes.NewReader(tar), dst, ExtractOptions{Chain: hook}); err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		check(t, dst, chain)
	}
}

// tarLevel is one backup of a test chain with its tars by name.
type tarLevel struct {
	fm    FilesMetadata
	parts map[string][]byte
}

// mergeLevels makes one backup of levels' tars, named part_001.tar,
// part_002.tar, ...
func mergeLevels(levels ...chainLevel) tarLevel {
	out := tarLevel{fm: *NewFilesMetadata(), parts: map[string][]byte{}}
	for i, l := range levels {
		name := "part_00" + string(rune('1'+i)) + ".tar"
		for m, d := range l.fm.Files {
			out.fm.Files[m] = d
		}
		for _, members := range l.fm.TarFileSets {
			out.fm.TarFileSets[name] = members
		}
		out.parts[name] = l.tar
	}
	return out
}

// tars returns the level's tars named in names.
func (l tarLevel) tars(names []string) [][]byte {
	var out [][]byte
	for _, n := range names {
		out = append(out, l.parts[n])
	}
	return out
}
