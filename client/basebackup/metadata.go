package basebackup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// LSN is a PostgreSQL WAL location. WAL-G's JSON documents carry LSNs as
// plain JSON numbers, and so does this type.
type LSN uint64

// String formats the LSN as PostgreSQL does: "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l))
}

// DateFmt is the constant WAL-G writes into DateFmt and date_fmt.
const DateFmt = "%Y-%m-%dT%H:%M:%S.%fZ"

// SentinelVersion is the sentinel Version WAL-G writes, and this package.
const SentinelVersion = 2

// Sentinel is the backup stop sentinel, <name>_backup_stop_sentinel.json:
// WAL-G's BackupSentinelDtoV2, key for key and in WAL-G's key order. A
// backup exists iff its sentinel exists, so the sentinel is written last.
// docs/backup-format.md describes every field.
type Sentinel struct {
	// LSN is the backup's start LSN. Required.
	LSN LSN `json:"LSN"`
	// Timeline is the start timeline. Only newer WAL-G versions write it;
	// absent (nil) in WAL-G v3.0.9 sentinels, and omitted when nil.
	Timeline *uint32 `json:"Timeline,omitempty"`
	// DeltaLSN is the parent's start LSN (delta backups only). Older WAL-G
	// versions called it DeltaFromLSN; ParseSentinel reads both.
	DeltaLSN *LSN `json:"DeltaLSN,omitempty"`
	// DeltaFrom is the name of the immediate parent (delta backups only).
	// It comes from storage: check it with ParseBackupName before use.
	DeltaFrom string `json:"DeltaFrom,omitempty"`
	// DeltaFullName is the name of the full backup at the root of the
	// delta chain (delta backups only).
	DeltaFullName string `json:"DeltaFullName,omitempty"`
	// DeltaCount is the number of deltas since the full backup, 1 for the
	// first delta (delta backups only).
	DeltaCount int `json:"DeltaCount,omitempty"`
	// PgVersion is server_version_num, e.g. 150018.
	PgVersion int `json:"PgVersion"`
	// FinishLSN is the LSN pg_backup_stop returned. Required.
	FinishLSN LSN `json:"FinishLSN"`
	// SystemIdentifier is pg_control_system().system_identifier; it is
	// above 2^53, so it is parsed as an integer, never as a float.
	SystemIdentifier *uint64 `json:"SystemIdentifier,omitempty"`
	// UncompressedSize is the sum of the tars' payload bytes.
	UncompressedSize int64 `json:"UncompressedSize"`
	// CompressedSize is the sum of the tar objects' stored sizes.
	CompressedSize int64 `json:"CompressedSize"`
	// DataCatalogSize is the size of the data directory as walked.
	DataCatalogSize int64 `json:"DataCatalogSize,omitempty"`
	// Spec lists the tablespaces (absent without tablespaces). WAL-E wrote
	// "spec"; JSON key matching is case-insensitive on read.
	Spec *TablespaceSpec `json:"Spec,omitempty"`
	// UserData is the user's JSON value (WALG_SENTINEL_USER_DATA), kept
	// verbatim.
	UserData json.RawMessage `json:"UserData,omitempty"`
	// FilesMetadataDisabled is true when files_metadata.json was not
	// written.
	FilesMetadataDisabled bool `json:"FilesMetadataDisabled,omitempty"`
	// ChkpNum is OrioleDB's checkpoint number; always written, null
	// outside OrioleDB.
	ChkpNum *uint32 `json:"ChkpNum"`
	// DeltaChkpNum is the parent's OrioleDB checkpoint number.
	DeltaChkpNum *uint32 `json:"DeltaChkpNum,omitempty"`
	// Version is 2.
	Version int `json:"Version"`
	// StartTime is when the backup started (UTC, RFC 3339 with
	// nanoseconds).
	StartTime time.Time `json:"StartTime"`
	// FinishTime is when the backup finished.
	FinishTime time.Time `json:"FinishTime"`
	// DateFmt is the constant DateFmt.
	DateFmt string `json:"DateFmt"`
	// Hostname is the host the backup was taken on.
	Hostname string `json:"Hostname"`
	// DataDir is the data directory backed up.
	DataDir string `json:"DataDir"`
	// IsPermanent is the permanence at push time; later changes go to
	// metadata.json only.
	IsPermanent bool `json:"IsPermanent"`
	// WALSegmentSize is the cluster's wal_segment_size in bytes, a
	// walgate key WAL-G does not write (WAL-G assumes the server's). 0
	// (absent) in WAL-G's sentinels and walgate's before it was added:
	// unknown, read as 16 MiB.
	WALSegmentSize int64 `json:"WalSegmentSize,omitempty"`

	// LegacyFilesMetadata holds the Files, TarFileSets and DatabasesByNames
	// keys that old WAL-G versions wrote into the sentinel itself; nil
	// when the sentinel has none. Never written.
	LegacyFilesMetadata *FilesMetadata `json:"-"`
}

// IsDelta reports whether the sentinel describes a delta backup.
func (s *Sentinel) IsDelta() bool { return s.DeltaFrom != "" }

// ParseSentinel reads a sentinel. It accepts everything WAL-G writes and
// reads: the deprecated DeltaFromLSN key (for DeltaLSN) and the
// files-metadata keys old versions wrote into the sentinel. It requires
// the LSN and FinishLSN keys with numbers, and a delta sentinel (one with
// DeltaFrom) to carry DeltaLSN, DeltaFullName and DeltaCount as WAL-G
// requires. Unknown keys are ignored, as WAL-G does.
func ParseSentinel(r io.Reader) (Sentinel, error) {
	var s Sentinel
	raw, err := io.ReadAll(r)
	if err != nil {
		return s, fmt.Errorf("read sentinel: %w", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return s, fmt.Errorf("parse sentinel: %w", err)
	}
	for _, k := range []string{"LSN", "FinishLSN"} {
		v, ok := keys[k]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return s, fmt.Errorf("parse sentinel: required key %s is missing or null", k)
		}
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("parse sentinel: %w", err)
	}
	var legacy struct {
		FilesMetadata
		DeltaFromLSN *LSN `json:"DeltaFromLSN"`
	}
	if err := json.Unmarshal(raw, &legacy); err != nil {
		return s, fmt.Errorf("parse sentinel: deprecated keys: %w", err)
	}
	if s.DeltaLSN == nil && legacy.DeltaFromLSN != nil {
		s.DeltaLSN = legacy.DeltaFromLSN
	}
	if legacy.Files != nil || legacy.TarFileSets != nil || legacy.DatabasesByNames != nil {
		fm := legacy.FilesMetadata
		s.LegacyFilesMetadata = &fm
	}
	if s.DeltaFrom != "" && (s.DeltaLSN == nil || s.DeltaFullName == "" || s.DeltaCount == 0) {
		return s, errors.New("parse sentinel: delta backup sentinel (DeltaFrom set) lacks DeltaLSN, DeltaFullName or DeltaCount")
	}
	return s, nil
}

// ExtendedMetadata is metadata.json: WAL-G's ExtendedMetadataDto, the
// sentinel's facts in snake_case. backup-mark rewrites is_permanent here.
type ExtendedMetadata struct {
	StartTime  time.Time `json:"start_time"`
	FinishTime time.Time `json:"finish_time"`
	DateFmt    string    `json:"date_fmt"`
	Hostname   string    `json:"hostname"`
	DataDir    string    `json:"data_dir"`
	PgVersion  int       `json:"pg_version"`
	StartLSN   LSN       `json:"start_lsn"`
	FinishLSN  LSN       `json:"finish_lsn"`
	// IsPermanent exempts the backup from retention.
	IsPermanent bool `json:"is_permanent"`
	// SystemIdentifier is written as null when unknown.
	SystemIdentifier *uint64 `json:"system_identifier"`
	// Timeline is written by newer WAL-G versions only; omitted when nil.
	Timeline         *uint32         `json:"timeline,omitempty"`
	UncompressedSize int64           `json:"uncompressed_size"`
	CompressedSize   int64           `json:"compressed_size"`
	UserData         json.RawMessage `json:"user_data,omitempty"`
}

// Metadata returns the metadata.json that goes with the sentinel, as WAL-G
// derives it.
func (s *Sentinel) Metadata() ExtendedMetadata {
	return ExtendedMetadata{
		StartTime: s.StartTime, FinishTime: s.FinishTime, DateFmt: s.DateFmt,
		Hostname: s.Hostname, DataDir: s.DataDir, PgVersion: s.PgVersion,
		StartLSN: s.LSN, FinishLSN: s.FinishLSN, IsPermanent: s.IsPermanent,
		SystemIdentifier: s.SystemIdentifier, Timeline: s.Timeline,
		UncompressedSize: s.UncompressedSize, CompressedSize: s.CompressedSize,
		UserData: s.UserData,
	}
}

// ParseExtendedMetadata reads metadata.json. start_lsn and finish_lsn are
// required.
func ParseExtendedMetadata(r io.Reader) (ExtendedMetadata, error) {
	var m ExtendedMetadata
	raw, err := io.ReadAll(r)
	if err != nil {
		return m, fmt.Errorf("read metadata.json: %w", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return m, fmt.Errorf("parse metadata.json: %w", err)
	}
	for _, k := range []string{"start_lsn", "finish_lsn"} {
		if _, ok := keys[k]; !ok {
			return m, fmt.Errorf("parse metadata.json: required key %s is missing", k)
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("parse metadata.json: %w", err)
	}
	return m, nil
}

// FilesMetadata is files_metadata.json: WAL-G's FilesMetadataDto.
type FilesMetadata struct {
	// Files describes every member of the data tars (directories included,
	// pg_control and the backup_label tar's members not), keyed by member
	// name. WAL-G's restore extracts only members listed here.
	Files map[string]FileDescription `json:"Files,omitempty"`
	// TarFileSets lists, per tar object name (e.g. "part_001.tar.lz4"), its
	// members; the pg_control tar is not listed.
	TarFileSets map[string][]string `json:"TarFileSets,omitempty"`
	// DatabasesByNames maps database names to their objects, for WAL-G's
	// partial restore (--restore-only). WAL-G omits it when empty and then
	// only refuses partial restores.
	DatabasesByNames map[string]DatabaseObjects `json:"DatabasesByNames,omitempty"`
}

// FileDescription is one entry of FilesMetadata.Files.
type FileDescription struct {
	// IsIncremented: stored in increment (delta) format.
	IsIncremented bool
	// IsSkipped: unchanged since the parent, not stored in this backup.
	IsSkipped bool
	// MTime is the modification time when scanned, to the nanosecond.
	MTime time.Time
	// CorruptBlocks is set when page checksum verification found errors.
	CorruptBlocks *CorruptBlocks `json:",omitempty"`
	// UpdatesCount is used by WAL-G's rating composer; 0 otherwise.
	UpdatesCount uint64
}

// CorruptBlocks reports pages that failed checksum verification.
type CorruptBlocks struct {
	CorruptBlocksCount int
	// SomeCorruptBlocks lists block numbers, sorted, at most 10 unless
	// WALG_STORE_ALL_CORRUPT_BLOCKS.
	SomeCorruptBlocks []uint32
}

// DatabaseObjects is one database of FilesMetadata.DatabasesByNames.
type DatabaseObjects struct {
	OID    uint32               `json:"oid"`
	Tables map[string]TableInfo `json:"tables_new,omitempty"`
}

// TableInfo is one relation of a DatabaseObjects, keyed by
// "schema.name".
type TableInfo struct {
	OID         uint32               `json:"oid"`
	Relfilenode uint32               `json:"relfilenode"`
	SubTables   map[string]TableInfo `json:"subtables,omitempty"`
}

// NewFilesMetadata returns an empty FilesMetadata ready for AddTar.
func NewFilesMetadata() *FilesMetadata {
	return &FilesMetadata{Files: map[string]FileDescription{}, TarFileSets: map[string][]string{}}
}

// AddTar records the tar object called object (its name inside the tar
// folder) holding members. Members found in files also get a Files entry
// with their scan-time modification time, as a full backup writes them.
// For the backup_label tar pass LabelTarMembers and no files.
func (m *FilesMetadata) AddTar(object string, members []string, files []File) {
	if m.Files == nil {
		m.Files = map[string]FileDescription{}
	}
	if m.TarFileSets == nil {
		m.TarFileSets = map[string][]string{}
	}
	m.TarFileSets[object] = append([]string(nil), members...)
	if len(files) == 0 {
		return
	}
	byMember := make(map[string]*File, len(files))
	for i := range files {
		byMember[files[i].Member] = &files[i]
	}
	for _, name := range members {
		if f, ok := byMember[name]; ok {
			m.Files[name] = FileDescription{MTime: f.ModTime}
		}
	}
}

// AddSkipped records files a delta backup does not store because they are
// unchanged since its parent: IsSkipped, with their modification time.
func (m *FilesMetadata) AddSkipped(files []File) {
	if m.Files == nil {
		m.Files = map[string]FileDescription{}
	}
	for _, f := range files {
		m.Files[f.Member] = FileDescription{IsSkipped: true, MTime: f.ModTime}
	}
}

// ParseFilesMetadata reads files_metadata.json.
func ParseFilesMetadata(r io.Reader) (FilesMetadata, error) {
	var m FilesMetadata
	dec := json.NewDecoder(r)
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("parse files_metadata.json: %w", err)
	}
	return m, nil
}

// TablespaceSpec is the sentinel's Spec: where each tablespace lived.
// JSON: {"base_prefix": <data directory>, "tablespaces": [<oid>...],
// <oid>: {"loc": <location>, "link": "pg_tblspc/<oid>"}, ...}.
type TablespaceSpec struct {
	// BasePrefix is the data directory.
	BasePrefix string
	// Tablespaces are in the order of the "tablespaces" array.
	Tablespaces []TablespaceLocation
}

// TablespaceLocation is one tablespace of a TablespaceSpec.
type TablespaceLocation struct {
	// Name is the link's name in pg_tblspc (the OID).
	Name string
	// Location is the tablespace directory ("loc").
	Location string
	// Link is "pg_tblspc/<Name>" ("link").
	Link string
}

// NewTablespaceSpec builds the Spec for a scan of pgdata, or nil if it
// found no tablespace links (WAL-G then omits the key). Paths are cleaned
// and lose trailing slashes, as WAL-G normalizes them.
func NewTablespaceSpec(pgdata string, tablespaces []Tablespace) *TablespaceSpec {
	if len(tablespaces) == 0 {
		return nil
	}
	spec := &TablespaceSpec{BasePrefix: filepath.Clean(pgdata)}
	for _, t := range tablespaces {
		spec.Tablespaces = append(spec.Tablespaces, TablespaceLocation{
			Name: t.OID, Location: filepath.Clean(t.Location), Link: tablespaceDir + "/" + t.OID,
		})
	}
	return spec
}

type jsonTablespaceLocation struct {
	Location string `json:"loc"`
	Link     string `json:"link"`
}

// MarshalJSON writes WAL-G's flat object.
func (t TablespaceSpec) MarshalJSON() ([]byte, error) {
	if t.BasePrefix == "" {
		return nil, errors.New("tablespace spec: base_prefix not set")
	}
	obj := map[string]any{"base_prefix": t.BasePrefix}
	names := make([]string, 0, len(t.Tablespaces))
	for _, l := range t.Tablespaces {
		if l.Name == "base_prefix" || l.Name == "tablespaces" {
			return nil, fmt.Errorf("tablespace spec: invalid tablespace name %q", l.Name)
		}
		names = append(names, l.Name)
		obj[l.Name] = jsonTablespaceLocation{Location: l.Location, Link: l.Link}
	}
	obj["tablespaces"] = names
	return json.Marshal(obj)
}

// UnmarshalJSON reads WAL-G's flat object; like WAL-G it requires
// base_prefix and an entry for every name in tablespaces.
func (t *TablespaceSpec) UnmarshalJSON(b []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	var spec TablespaceSpec
	if err := json.Unmarshal(obj["base_prefix"], &spec.BasePrefix); err != nil || spec.BasePrefix == "" {
		return errors.New("tablespace spec: base_prefix missing")
	}
	var names []string
	if raw, ok := obj["tablespaces"]; ok {
		if err := json.Unmarshal(raw, &names); err != nil {
			return fmt.Errorf("tablespace spec: tablespaces: %w", err)
		}
	}
	for _, name := range names {
		raw, ok := obj[name]
		if !ok || strings.TrimSpace(string(raw)) == "null" {
			return fmt.Errorf("tablespace spec: no entry for tablespace %q", name)
		}
		var loc jsonTablespaceLocation
		if err := json.Unmarshal(raw, &loc); err != nil {
			return fmt.Errorf("tablespace spec: tablespace %q: %w", name, err)
		}
		spec.Tablespaces = append(spec.Tablespaces, TablespaceLocation{Name: name, Location: loc.Location, Link: loc.Link})
	}
	*t = spec
	return nil
}
