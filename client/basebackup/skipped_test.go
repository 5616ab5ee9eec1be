package basebackup

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Files a delta records as skipped are not in its tars; a chain restore
// takes each from the newest older backup that stored it, whole or as an
// increment over what is older still.
func TestChainSkippedFiles(t *testing.T) {
	src := t.TempDir()
	const a, b = "/base/5/100", "/base/5/200"
	pa, pb := filepath.Join(src, "base", "5", "100"), filepath.Join(src, "base", "5", "200")
	backup := func(deltaLSN uint64, write []string, skip []string) chainLevel {
		t.Helper()
		var files, skipped []File
		for _, m := range write {
			files = append(files, relFile(t, src, m))
		}
		for _, m := range skip {
			skipped = append(skipped, relFile(t, src, m))
		}
		var buf bytes.Buffer
		res, err := WriteTarWith(&buf, files, TarOptions{DeltaLSN: deltaLSN, Incremental: func(string) bool { return true }})
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
		fm.AddSkipped(skipped)
		return chainLevel{buf.Bytes(), *fm}
	}
	writeRel(t, pa, page(0x10, 1, 0), page(0x10, 2, 1))
	writeRel(t, pb, page(0x10, 7, 0))
	full := backup(0, []string{a, b}, nil)
	// Delta 1: a changed (an increment), b skipped.
	writeRel(t, pa, page(0x10, 1, 0), page(0x150, 3, 1), page(0x160, 4, 2))
	d1 := backup(0x100, []string{a}, []string{b})
	// Delta 2: both skipped; its tar holds no file.
	d2 := backup(0x200, nil, []string{a, b})
	for m, d := range d2.fm.Files {
		if !d.IsSkipped || d.IsIncremented || d.MTime.IsZero() {
			t.Fatalf("%s: %+v, want skipped with its modification time", m, d)
		}
	}
	js, err := json.Marshal(d2.fm)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"/base/5/100":{"IsIncremented":false,"IsSkipped":true,"MTime":`) {
		t.Fatalf("files_metadata.json: %s", js)
	}
	wantA, _ := os.ReadFile(pa)
	wantB, _ := os.ReadFile(pb)

	dst := t.TempDir()
	restoreChain(t, dst, d2, d1, full)
	for m, want := range map[string][]byte{a: wantA, b: wantB} {
		got, _ := os.ReadFile(filepath.Join(dst, filepath.FromSlash(m[1:])))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s restored differs: %d bytes, want %d", m, len(got), len(want))
		}
	}

	// Without the full backup, the skipped file (stored only there) and
	// the increment (over pages only it holds) are reported missing, not
	// restored short.
	chain := NewChainRestore(d2.fm)
	for i, l := range []chainLevel{d2, d1} {
		if _, err := ExtractTar(bytes.NewReader(l.tar), t.TempDir(), ExtractOptions{Chain: chain.Level(l.fm, i == 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if miss := chain.Missing(); strings.Join(miss, " ") != a+" "+b {
		t.Fatalf("missing without the full: %v, want [%s %s]", miss, a, b)
	}
}
