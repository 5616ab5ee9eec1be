package basebackup

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/walgate/walgate/client/codec"
)

// vectorsDir is where the stock WAL-G archives live: testdata/walg at the
// project root.
const vectorsDir = "../../testdata/walg"

type vectorBackup struct {
	Name             string `json:"name"`
	Kind             string `json:"kind"`
	Sentinel         string `json:"sentinel"`
	StartLSNInt      uint64 `json:"start_lsn_int"`
	FinishLSNInt     uint64 `json:"finish_lsn_int"`
	StartLSN         string `json:"start_lsn"`
	WALFileName      string `json:"wal_file_name"`
	UncompressedSize int64  `json:"uncompressed_size"`
	CompressedSize   int64  `json:"compressed_size"`
	DeltaParent      string `json:"delta_parent"`
	DeltaFullName    string `json:"delta_full_name"`
	DeltaCount       int    `json:"delta_count"`
	DeltaLSN         string `json:"delta_lsn"`
	Objects          []struct {
		Object string `json:"object"`
		Size   int64  `json:"size"`
	} `json:"objects"`
}

type vector struct {
	Variant           string `json:"variant"`
	CompressionMethod string `json:"compression_method"`
	SystemIdentifier  string `json:"system_identifier"`
	Encryption        *struct {
		EffectiveKeyHex string `json:"effective_key_hex"`
	} `json:"encryption"`
	Backups []vectorBackup `json:"backups"`
	dir     string
}

func loadVector(t *testing.T, variant string) *vector {
	t.Helper()
	dir := filepath.Join(vectorsDir, variant)
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatalf("WAL-G test vectors missing (expected at %s): %v", vectorsDir, err)
	}
	var v vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Backups) != 2 {
		t.Fatalf("%s: %d backups in expected.json, want 2", variant, len(v.Backups))
	}
	v.dir = dir
	return &v
}

func (v *vector) key(t *testing.T) *codec.Key {
	if v.Encryption == nil {
		return nil
	}
	k, err := codec.ParseKey(v.Encryption.EffectiveKeyHex, "hex")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func decodeJSONNumbers(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWALGVectors(t *testing.T) {
	for _, variant := range []string{"lz4-plain", "zstd-libsodium"} {
		t.Run(variant, func(t *testing.T) {
			v := loadVector(t, variant)
			comp, err := codec.ParseCompression(v.CompressionMethod)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range v.Backups {
				checkVectorBackup(t, v, b, comp)
			}
			full := v.Backups[0]
			if full.Kind != "full" {
				t.Fatalf("first backup is %s", full.Kind)
			}
			restoreVectorFull(t, v, full, comp)
		})
	}
}

func checkVectorBackup(t *testing.T, v *vector, b vectorBackup, comp codec.Compression) {
	t.Helper()
	// Names.
	start, deltaFrom, err := ParseBackupName(b.Name)
	if err != nil {
		t.Fatal(err)
	}
	if start != b.WALFileName {
		t.Errorf("%s: start WAL %s, want %s", b.Name, start, b.WALFileName)
	}
	if b.Kind == "full" {
		if deltaFrom != "" || BackupName(start) != b.Name {
			t.Errorf("%s: parsed as delta from %q", b.Name, deltaFrom)
		}
	} else {
		name, err := DeltaBackupName(start, b.DeltaParent)
		if err != nil || name != b.Name {
			t.Errorf("DeltaBackupName(%s, %s) = %s, %v", start, b.DeltaParent, name, err)
		}
	}
	if filepath.Base(b.Sentinel) != SentinelObjectName(b.Name) {
		t.Errorf("sentinel object %s, want %s", filepath.Base(b.Sentinel), SentinelObjectName(b.Name))
	}
	for _, o := range b.Objects {
		switch base := filepath.Base(o.Object); {
		case strings.HasPrefix(base, "part_"):
			if base != PartObjectName(1, comp) {
				t.Errorf("part object %s, want %s", base, PartObjectName(1, comp))
			}
		case strings.HasPrefix(base, "pg_control"):
			if base != PgControlObjectName(comp) {
				t.Errorf("pg_control object %s", base)
			}
		case strings.HasPrefix(base, "backup_label"):
			if base != LabelObjectName(comp) {
				t.Errorf("backup_label object %s", base)
			}
		}
	}

	// Sentinel.
	raw, err := os.ReadFile(filepath.Join(v.dir, b.Sentinel))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSentinel(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if uint64(s.LSN) != b.StartLSNInt || uint64(s.FinishLSN) != b.FinishLSNInt || s.LSN.String() != b.StartLSN {
		t.Errorf("%s: LSN %v (%d) finish %d, want %s (%d) finish %d", b.Name, s.LSN, s.LSN, s.FinishLSN, b.StartLSN, b.StartLSNInt, b.FinishLSNInt)
	}
	if s.SystemIdentifier == nil || formatUint(*s.SystemIdentifier) != v.SystemIdentifier {
		t.Errorf("%s: SystemIdentifier %v, want %s", b.Name, s.SystemIdentifier, v.SystemIdentifier)
	}
	if s.UncompressedSize != b.UncompressedSize || s.CompressedSize != b.CompressedSize {
		t.Errorf("%s: sizes %d/%d, want %d/%d", b.Name, s.UncompressedSize, s.CompressedSize, b.UncompressedSize, b.CompressedSize)
	}
	var tarBytes int64
	for _, o := range b.Objects {
		if strings.Contains(o.Object, "/tar_partitions/") {
			tarBytes += o.Size
		}
	}
	// WAL-G counts the bytes its compressor produced before the stream's
	// end: with zstd that is the stored total, with lz4 it is 8 bytes short
	// per backup (the lz4 vectors show 5993574 vs 5993582). Readers must
	// not treat CompressedSize as the exact stored size.
	if s.CompressedSize > tarBytes || tarBytes-s.CompressedSize > 64 {
		t.Errorf("%s: CompressedSize %d, tar objects total %d", b.Name, s.CompressedSize, tarBytes)
	}
	if s.Version != SentinelVersion || s.DateFmt != DateFmt || s.ChkpNum != nil || s.PgVersion != 150018 || s.DataCatalogSize <= 0 {
		t.Errorf("%s: sentinel %+v", b.Name, s)
	}
	if b.Kind == "delta" {
		if !s.IsDelta() || s.DeltaFrom != b.DeltaParent || s.DeltaFullName != b.DeltaFullName || s.DeltaCount != b.DeltaCount || s.DeltaLSN == nil || s.DeltaLSN.String() != b.DeltaLSN {
			t.Errorf("%s: delta fields %+v", b.Name, s)
		}
	} else if s.IsDelta() || s.DeltaLSN != nil {
		t.Errorf("%s: full backup with delta fields", b.Name)
	}
	checkSentinelRoundTrip(t, raw, s)

	// metadata.json: the sentinel's facts, and exactly what Metadata derives.
	backupDir := filepath.Join(filepath.Dir(filepath.Join(v.dir, b.Sentinel)), b.Name)
	rawMeta, err := os.ReadFile(filepath.Join(backupDir, MetadataName))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := ParseExtendedMetadata(bytes.NewReader(rawMeta))
	if err != nil {
		t.Fatal(err)
	}
	if derived := s.Metadata(); !reflect.DeepEqual(meta, derived) {
		t.Errorf("%s: metadata.json %+v, derived from sentinel %+v", b.Name, meta, derived)
	}
	out, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(decodeJSONNumbers(t, out), decodeJSONNumbers(t, rawMeta)) {
		t.Errorf("%s: metadata.json round trip:\n got %s\nwant %s", b.Name, out, rawMeta)
	}

	// files_metadata.json.
	rawFiles, err := os.ReadFile(filepath.Join(backupDir, FilesMetadataName))
	if err != nil {
		t.Fatal(err)
	}
	fm, err := ParseFilesMetadata(bytes.NewReader(rawFiles))
	if err != nil {
		t.Fatal(err)
	}
	part, label := PartObjectName(1, comp), LabelObjectName(comp)
	if len(fm.TarFileSets) != 2 || fm.TarFileSets[part] == nil || !reflect.DeepEqual(fm.TarFileSets[label], LabelTarMembers) {
		t.Errorf("%s: TarFileSets keys/label %v", b.Name, fm.TarFileSets[label])
	}
	if len(fm.DatabasesByNames) == 0 || fm.DatabasesByNames["postgres"].OID != 5 {
		t.Errorf("%s: DatabasesByNames[postgres] = %+v", b.Name, fm.DatabasesByNames["postgres"])
	}
	inPart := map[string]bool{}
	for _, m := range fm.TarFileSets[part] {
		inPart[m] = true
	}
	for name, d := range fm.Files {
		if d.IsSkipped == inPart[name] {
			t.Errorf("%s: %s skipped=%v but in part=%v", b.Name, name, d.IsSkipped, inPart[name])
		}
		if d.MTime.IsZero() {
			t.Errorf("%s: %s has no MTime", b.Name, name)
		}
	}
	out, err = json.Marshal(fm)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(decodeJSONNumbers(t, out), decodeJSONNumbers(t, rawFiles)) {
		t.Errorf("%s: files_metadata.json does not round-trip", b.Name)
	}
}

// checkSentinelRoundTrip: marshalling the parsed Sentinel gives WAL-G's
// keys and values, exactly.
func checkSentinelRoundTrip(t *testing.T, raw []byte, s Sentinel) {
	t.Helper()
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want, got := decodeJSONNumbers(t, raw), decodeJSONNumbers(t, out)
	if !reflect.DeepEqual(keysOf(got), keysOf(want)) {
		t.Errorf("sentinel keys: got %v, want %v", keysOf(got), keysOf(want))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sentinel round trip:\n got %s\nwant %s", out, raw)
	}
	// And WAL-G's key order, as far as this sentinel shows it.
	if order(t, out) != order(t, raw) {
		t.Errorf("sentinel key order:\n got %s\nwant %s", order(t, out), order(t, raw))
	}
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// order lists a JSON object's top-level keys in document order.
func order(t *testing.T, raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(keys, ",")
}

func formatUint(u uint64) string {
	b, _ := json.Marshal(u)
	return string(b)
}

// restoreVectorFull decodes and extracts the full backup's three tars and
// checks the files against files_metadata.json.
func restoreVectorFull(t *testing.T, v *vector, b vectorBackup, comp codec.Compression) {
	t.Helper()
	backupDir := filepath.Join(filepath.Dir(filepath.Join(v.dir, b.Sentinel)), b.Name)
	restore := t.TempDir()
	var payload int64
	extracted := map[string][]string{}
	for _, object := range []string{PartObjectName(1, comp), PgControlObjectName(comp), LabelObjectName(comp)} {
		f, err := os.Open(filepath.Join(backupDir, TarFolder, object))
		if err != nil {
			t.Fatal(err)
		}
		r, err := codec.NewReader(f, comp, v.key(t))
		if err != nil {
			t.Fatal(err)
		}
		cr := &countingReader{r: r}
		members, err := ExtractTar(cr, restore, ExtractOptions{})
		if err != nil {
			t.Fatalf("%s: %v", object, err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil { // the codec checks the stream's end
			t.Fatalf("%s: %v", object, err)
		}
		r.Close()
		f.Close()
		extracted[object] = members
		payload += cr.n
	}
	if got := extracted[PgControlObjectName(comp)]; !reflect.DeepEqual(got, []string{"/global/pg_control"}) {
		t.Errorf("pg_control tar members %v", got)
	}
	if got := extracted[LabelObjectName(comp)]; !reflect.DeepEqual(got, []string{LabelMember, TablespaceMapMember}) {
		t.Errorf("backup_label tar members %v", got)
	}
	rawFiles, err := os.ReadFile(filepath.Join(backupDir, FilesMetadataName))
	if err != nil {
		t.Fatal(err)
	}
	fm, err := ParseFilesMetadata(bytes.NewReader(rawFiles))
	if err != nil {
		t.Fatal(err)
	}
	if part := PartObjectName(1, comp); !reflect.DeepEqual(extracted[part], fm.TarFileSets[part]) {
		t.Errorf("part members differ from TarFileSets (%d vs %d)", len(extracted[part]), len(fm.TarFileSets[part]))
	}
	var regular, fileBytes int64
	for name, d := range fm.Files {
		if d.IsSkipped {
			t.Errorf("full backup lists %s as skipped", name)
			continue
		}
		rel, err := CleanMemberName(name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(restore, rel))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !info.IsDir() {
			regular++
			fileBytes += info.Size()
		}
		if got, want := info.ModTime().Unix(), d.MTime.Round(1e9).Unix(); got != want {
			if !info.IsDir() {
				t.Errorf("%s: mtime %d, files_metadata %d", name, got, want)
			}
		}
	}
	if regular < 900 {
		t.Errorf("only %d regular files restored", regular)
	}
	for _, must := range []string{"global/pg_control", "backup_label", "tablespace_map", "PG_VERSION", "pg_wal"} {
		if _, err := os.Stat(filepath.Join(restore, must)); err != nil {
			t.Errorf("restore lacks %s: %v", must, err)
		}
	}
	label, _ := os.ReadFile(filepath.Join(restore, "backup_label"))
	if !strings.Contains(string(label), "START WAL LOCATION: "+b.StartLSN+" (file "+b.WALFileName+")") {
		t.Errorf("backup_label: %q", label)
	}
	ctl, _ := os.Stat(filepath.Join(restore, "global", "pg_control"))
	if ctl == nil || ctl.Size() != 8192 {
		t.Errorf("pg_control: %v", ctl)
	}
	// The tar payload (everything read from the tars) exceeds the sum of
	// the file sizes by the headers; UncompressedSize is WAL-G's count of
	// the data tars' bytes.
	if fileBytes > b.UncompressedSize || payload < fileBytes {
		t.Errorf("restored %d bytes of files, UncompressedSize %d, tar stream bytes %d", fileBytes, b.UncompressedSize, payload)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
