package basebackup

import (
	"slices"
	"testing"
)

// TestChainReadsEarlierFilesMetadata: a files_metadata.json in the shape
// earlier walgate versions wrote (/global/pg_control in Files, the
// pg_control tar in TarFileSets, the backup_label set in tar order) and
// one in WAL-G's shape restore alike: only data tars are fetched through
// TarFileSets, and pg_control, which comes from its own tar, is never
// missing.
func TestChainReadsEarlierFilesMetadata(t *testing.T) {
	data := []string{"/", "/PG_VERSION", "/base", "/base/1", "/base/1/1259", "/global"}
	current := NewFilesMetadata()
	current.AddTar("part_001.tar.zst", data, nil)
	for _, m := range data {
		current.Files[m] = FileDescription{}
	}
	current.AddTar("backup_label.tar.zst", LabelTarMembers, nil)

	earlier := NewFilesMetadata()
	earlier.AddTar("part_001.tar.zst", data, nil)
	for _, m := range data {
		earlier.Files[m] = FileDescription{}
	}
	earlier.AddTar("pg_control.tar.zst", []string{"/global/pg_control"}, nil)
	earlier.Files["/global/pg_control"] = FileDescription{}
	earlier.AddTar("backup_label.tar.zst", []string{LabelMember, TablespaceMapMember}, nil)

	for name, fm := range map[string]*FilesMetadata{"current": current, "earlier": earlier} {
		chain := NewChainRestore(*fm)
		if need := chain.NeededTars(*fm); !slices.Equal(need, []string{"part_001.tar.zst"}) {
			t.Errorf("%s: tars fetched through TarFileSets %q, want the data tar only", name, need)
		}
		for _, m := range data {
			chain.Level(*fm, true).markComplete(m, 0)
		}
		if miss := chain.Missing(); len(miss) != 0 {
			t.Errorf("%s: missing after the data tar: %q", name, miss)
		}
	}
	if _, ok := current.Files["/global/pg_control"]; ok {
		t.Error("current shape lists /global/pg_control")
	}
}
