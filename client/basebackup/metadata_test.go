package basebackup

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSentinelStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"no LSN":        `{"FinishLSN":1,"PgVersion":150000,"Version":2}`,
		"no FinishLSN":  `{"LSN":1,"PgVersion":150000,"Version":2}`,
		"null LSN":      `{"LSN":null,"FinishLSN":1}`,
		"string LSN":    `{"LSN":"0/1","FinishLSN":1}`,
		"negative LSN":  `{"LSN":-1,"FinishLSN":1}`,
		"float sysid":   `{"LSN":1,"FinishLSN":1,"SystemIdentifier":1.5}`,
		"not an object": `[1,2]`,
		"truncated":     `{"LSN":1,"FinishLSN":1`,
		"delta without DeltaLSN": `{"LSN":2,"FinishLSN":3,"DeltaFrom":"base_000000010000000000000004",` +
			`"DeltaFullName":"base_000000010000000000000004","DeltaCount":1}`,
	} {
		if _, err := ParseSentinel(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}

func TestParseSentinelDeprecatedAndBig(t *testing.T) {
	doc := `{"LSN":100663336,"DeltaFromLSN":67108904,"DeltaFrom":"base_000000010000000000000004",` +
		`"DeltaFullName":"base_000000010000000000000004","DeltaCount":1,"PgVersion":90600,"FinishLSN":100663552,` +
		`"SystemIdentifier":18446744073709551615,"UncompressedSize":1,"CompressedSize":1,` +
		`"spec":{"base_prefix":"/pg","tablespaces":["16500"],"16500":{"loc":"/ts","link":"pg_tblspc/16500"}},` +
		`"Files":{"/base":{"IsIncremented":false,"IsSkipped":false,"MTime":"2020-01-01T00:00:00Z","UpdatesCount":0}},` +
		`"TarFileSets":{"part_001.tar.lz4":["/base"]},"UserData":{"n":12345678901234567890}}`
	s, err := ParseSentinel(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if s.DeltaLSN == nil || *s.DeltaLSN != 67108904 || s.DeltaLSN.String() != "0/4000028" {
		t.Errorf("DeltaLSN from DeltaFromLSN: %v", s.DeltaLSN)
	}
	if s.SystemIdentifier == nil || *s.SystemIdentifier != 18446744073709551615 {
		t.Errorf("SystemIdentifier %v", s.SystemIdentifier)
	}
	want := &TablespaceSpec{BasePrefix: "/pg", Tablespaces: []TablespaceLocation{{Name: "16500", Location: "/ts", Link: "pg_tblspc/16500"}}}
	if !reflect.DeepEqual(s.Spec, want) {
		t.Errorf("Spec %+v", s.Spec)
	}
	if s.LegacyFilesMetadata == nil || len(s.LegacyFilesMetadata.Files) != 1 || len(s.LegacyFilesMetadata.TarFileSets["part_001.tar.lz4"]) != 1 {
		t.Errorf("legacy files metadata %+v", s.LegacyFilesMetadata)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"DeltaLSN":67108904`, `"SystemIdentifier":18446744073709551615`, `"UserData":{"n":12345678901234567890}`, `"ChkpNum":null`, `"Spec":{`} {
		if !strings.Contains(string(out), k) {
			t.Errorf("marshalled sentinel lacks %s: %s", k, out)
		}
	}
	for _, k := range []string{"DeltaFromLSN", `"Files"`, "TarFileSets", `"spec"`} {
		if strings.Contains(string(out), k) {
			t.Errorf("marshalled sentinel has deprecated %s: %s", k, out)
		}
	}
}

func TestTablespaceSpecJSON(t *testing.T) {
	spec := NewTablespaceSpec("/var/lib/pg/", []Tablespace{{OID: "16500", Location: "/mnt/ts1/"}, {OID: "16600", Location: "/mnt/ts2"}})
	out, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"base_prefix": "/var/lib/pg", "tablespaces": []any{"16500", "16600"},
		"16500": map[string]any{"loc": "/mnt/ts1", "link": "pg_tblspc/16500"},
		"16600": map[string]any{"loc": "/mnt/ts2", "link": "pg_tblspc/16600"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("spec JSON %s", out)
	}
	var back TablespaceSpec
	if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(&back, spec) {
		t.Errorf("spec round trip %+v, %v", back, err)
	}
	for _, bad := range []string{`{"tablespaces":[]}`, `{"base_prefix":"/p","tablespaces":["1"]}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("spec %s accepted", bad)
		}
	}
	if NewTablespaceSpec("/p", nil) != nil {
		t.Error("spec without tablespaces not nil")
	}
}

func TestFilesMetadataAddTar(t *testing.T) {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	files := []File{{Member: "/", IsDir: true, ModTime: mt}, {Member: "/PG_VERSION", Size: 3, ModTime: mt}, {Member: "/gone", ModTime: mt}}
	fm := NewFilesMetadata()
	fm.AddTar("part_001.tar.lz4", []string{"/", "/PG_VERSION"}, files)
	fm.AddTar("backup_label.tar.lz4", LabelTarMembers, nil)
	out, err := json.Marshal(fm)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Files":{"/":{"IsIncremented":false,"IsSkipped":false,"MTime":"2026-01-02T03:04:05.678901234Z","UpdatesCount":0},` +
		`"/PG_VERSION":{"IsIncremented":false,"IsSkipped":false,"MTime":"2026-01-02T03:04:05.678901234Z","UpdatesCount":0}},` +
		`"TarFileSets":{"backup_label.tar.lz4":["tablespace_map","backup_label"],"part_001.tar.lz4":["/","/PG_VERSION"]}}`
	if string(out) != want {
		t.Errorf("files metadata\n got %s\nwant %s", out, want)
	}
}
