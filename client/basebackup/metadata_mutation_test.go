package basebackup

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestParseSentinelDeltaKeys: a delta sentinel needs each of DeltaLSN,
// DeltaFullName and DeltaCount; a full one needs none. DeltaLSN wins over
// the deprecated DeltaFromLSN when a sentinel has both.
func TestParseSentinelDeltaKeys(t *testing.T) {
	const parent = `"DeltaFrom":"base_000000010000000000000004"`
	keys := map[string]string{
		"DeltaLSN":      `"DeltaLSN":67108904`,
		"DeltaFullName": `"DeltaFullName":"base_000000010000000000000004"`,
		"DeltaCount":    `"DeltaCount":1`,
	}
	doc := func(parts ...string) string {
		return `{"LSN":100663336,"FinishLSN":100663552,` + strings.Join(parts, ",") + `}`
	}
	all := []string{parent, keys["DeltaLSN"], keys["DeltaFullName"], keys["DeltaCount"]}
	s, err := ParseSentinel(strings.NewReader(doc(all...)))
	if err != nil || !s.IsDelta() || s.DeltaLSN == nil || *s.DeltaLSN != 67108904 || s.DeltaCount != 1 {
		t.Fatalf("complete delta sentinel: %+v, %v", s, err)
	}
	for missing := range keys {
		parts := []string{parent}
		for k, v := range keys {
			if k != missing {
				parts = append(parts, v)
			}
		}
		if _, err := ParseSentinel(strings.NewReader(doc(parts...))); err == nil {
			t.Errorf("delta sentinel without %s accepted", missing)
		}
	}
	if s, err := ParseSentinel(strings.NewReader(doc(`"PgVersion":150000`))); err != nil || s.IsDelta() || s.DeltaLSN != nil {
		t.Errorf("full sentinel: %+v, %v", s, err)
	}
	both := append(all, `"DeltaFromLSN":1`)
	if s, err := ParseSentinel(strings.NewReader(doc(both...))); err != nil || s.DeltaLSN == nil || *s.DeltaLSN != 67108904 {
		t.Errorf("sentinel with DeltaLSN and DeltaFromLSN: DeltaLSN %v, %v", s.DeltaLSN, err)
	}
}

// TestParseSentinelLegacyKeys: each of the files-metadata keys old WAL-G
// versions wrote into the sentinel is kept on its own; a sentinel with none
// has no legacy files metadata.
func TestParseSentinelLegacyKeys(t *testing.T) {
	for key, value := range map[string]string{
		"Files":            `{"/base":{"IsIncremented":false,"IsSkipped":false,"MTime":"2020-01-01T00:00:00Z","UpdatesCount":0}}`,
		"TarFileSets":      `{"part_001.tar.lz4":["/base"]}`,
		"DatabasesByNames": `{"postgres":{"oid":5}}`,
	} {
		s, err := ParseSentinel(strings.NewReader(`{"LSN":1,"FinishLSN":2,"` + key + `":` + value + `}`))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		fm := s.LegacyFilesMetadata
		if fm == nil || len(fm.Files)+len(fm.TarFileSets)+len(fm.DatabasesByNames) != 1 {
			t.Errorf("sentinel with %s: legacy files metadata %+v", key, fm)
		}
	}
	if s, err := ParseSentinel(strings.NewReader(`{"LSN":1,"FinishLSN":2}`)); err != nil || s.LegacyFilesMetadata != nil {
		t.Errorf("sentinel without legacy keys: %+v, %v", s.LegacyFilesMetadata, err)
	}
}

// TestParseExtendedMetadataRequiredKeys: metadata.json without start_lsn or
// without finish_lsn is refused; with both it is read.
func TestParseExtendedMetadataRequiredKeys(t *testing.T) {
	m, err := ParseExtendedMetadata(strings.NewReader(`{"start_lsn":16,"finish_lsn":32,"is_permanent":true}`))
	if err != nil || m.StartLSN != 16 || m.FinishLSN != 32 || !m.IsPermanent {
		t.Fatalf("complete metadata.json: %+v, %v", m, err)
	}
	for _, doc := range []string{`{"finish_lsn":32}`, `{"start_lsn":16}`, `[]`, `{"start_lsn":16,"finish_lsn":"x"}`} {
		if _, err := ParseExtendedMetadata(strings.NewReader(doc)); err == nil {
			t.Errorf("metadata.json %s accepted", doc)
		}
	}
}

// TestFilesMetadataFromZero: AddTar and AddSkipped work on a FilesMetadata
// that was never made with NewFilesMetadata (as one parsed from a document
// without Files or TarFileSets), and record exactly what they are given.
func TestFilesMetadataFromZero(t *testing.T) {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var fm FilesMetadata
	fm.AddTar("part_001.tar", []string{"/a"}, []File{{Member: "/a", ModTime: mt}, {Member: "/elsewhere", ModTime: mt}})
	if len(fm.Files) != 1 || !fm.Files["/a"].MTime.Equal(mt) || len(fm.TarFileSets["part_001.tar"]) != 1 {
		t.Errorf("AddTar on a zero FilesMetadata: %+v", fm)
	}
	var skipped FilesMetadata
	skipped.AddSkipped([]File{{Member: "/b", ModTime: mt}})
	if d, ok := skipped.Files["/b"]; !ok || !d.IsSkipped || !d.MTime.Equal(mt) {
		t.Errorf("AddSkipped on a zero FilesMetadata: %+v", skipped)
	}
	var label FilesMetadata
	label.AddTar("backup_label.tar", LabelTarMembers, nil)
	if len(label.Files) != 0 || len(label.TarFileSets["backup_label.tar"]) != len(LabelTarMembers) {
		t.Errorf("label tar: %+v", label)
	}
}

// TestTablespaceSpecRefusals: a spec that WAL-G could not read back is
// neither written nor read.
func TestTablespaceSpecRefusals(t *testing.T) {
	for _, spec := range []TablespaceSpec{
		{Tablespaces: []TablespaceLocation{{Name: "16500", Location: "/ts", Link: "pg_tblspc/16500"}}},
		{BasePrefix: "/pg", Tablespaces: []TablespaceLocation{{Name: "base_prefix"}}},
		{BasePrefix: "/pg", Tablespaces: []TablespaceLocation{{Name: "tablespaces"}}},
	} {
		if out, err := json.Marshal(spec); err == nil {
			t.Errorf("spec %+v written as %s", spec, out)
		}
	}
	for _, doc := range []string{
		`{"base_prefix":"","tablespaces":[]}`,
		`{"base_prefix":"/pg","tablespaces":["1"],"1":null}`,
		`{"base_prefix":"/pg","tablespaces":"1"}`,
		`{"base_prefix":"/pg","tablespaces":["1"],"1":"x"}`,
		`[]`,
	} {
		var back TablespaceSpec
		if err := json.Unmarshal([]byte(doc), &back); err == nil {
			t.Errorf("spec %s read as %+v", doc, back)
		}
	}
	var none TablespaceSpec
	if err := json.Unmarshal([]byte(`{"base_prefix":"/pg"}`), &none); err != nil || none.BasePrefix != "/pg" || len(none.Tablespaces) != 0 {
		t.Errorf("spec without tablespaces: %+v, %v", none, err)
	}
}
