package layout

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Compression methods, as the wire protocol and the catalog name them.
// LZMA is read only: WAL-G wrote it once; walgate never writes it.
const (
	CompressionNone   = "none"
	CompressionZstd   = "zstd"
	CompressionLZ4    = "lz4"
	CompressionBrotli = "brotli"
	CompressionLZMA   = "lzma"
)

// compressions lists each method with its object name extension (without
// the dot), in the order a reader tries them.
var compressions = []struct{ name, ext string }{
	{CompressionZstd, "zst"}, {CompressionLZ4, "lz4"}, {CompressionBrotli, "br"}, {CompressionLZMA, "lzma"},
}

// Ext is the object name extension of a compression method, with its dot
// ("" for none and for an unknown method).
func Ext(compression string) string {
	for _, c := range compressions {
		if c.name == compression {
			return "." + c.ext
		}
	}
	return ""
}

// CompressionOfExt is the compression method an object name extension
// (without the dot) denotes; false when it denotes none.
func CompressionOfExt(ext string) (string, bool) {
	for _, c := range compressions {
		if c.ext == ext {
			return c.name, true
		}
	}
	return "", false
}

// PushCompression reports whether a client may declare compression for
// an object it pushes (every method but LZMA, and none).
func PushCompression(compression string) bool {
	return compression == CompressionNone || compression != CompressionLZMA && Ext(compression) != ""
}

// FileCompression is the compression a backup object's name implies by
// its extension (none without one).
func FileCompression(file string) string {
	if i := strings.LastIndexByte(file, '.'); i >= 0 {
		if c, ok := CompressionOfExt(file[i+1:]); ok {
			return c
		}
	}
	return CompressionNone
}

// The folders of a cluster, WAL-G's names.
const (
	WALDir    = "wal_005"
	BackupDir = "basebackups_005"
	// SentinelSuffix ends a backup's sentinel key, beside its folder.
	SentinelSuffix = "_backup_stop_sentinel.json"
)

// WALKey is the object key of a WAL file: <cluster>/wal_005/<name>[.<ext>].
func WALKey(cluster, name, compression string) string {
	return cluster + "/" + WALDir + "/" + name + Ext(compression)
}

// BackupKey is the object key of an object of a backup:
// <cluster>/basebackups_005/<name>/<file>.
func BackupKey(cluster, name, file string) string {
	return cluster + "/" + BackupDir + "/" + name + "/" + file
}

// SentinelKey is the object key of a backup's sentinel:
// <cluster>/basebackups_005/<name>_backup_stop_sentinel.json.
func SentinelKey(cluster, name string) string {
	return cluster + "/" + BackupDir + "/" + name + SentinelSuffix
}

// BackupPrefix starts every backup name (base_<24 hex>[_D_<24 hex>]).
const BackupPrefix = "base_"

// IsBackupName tells a backup's name from a WAL file's.
func IsBackupName(name string) bool { return strings.HasPrefix(name, BackupPrefix) }

// BackupTimeline is the timeline a backup's name says it started on (0
// when the name does not say).
func BackupTimeline(name string) uint32 {
	rest, ok := strings.CutPrefix(name, BackupPrefix)
	if !ok || len(rest) < 8 {
		return 0
	}
	tli, err := strconv.ParseUint(rest[:8], 16, 32)
	if err != nil {
		return 0
	}
	return uint32(tli)
}

// The metadata keys walgate stores with each object: what a rebuild needs
// to catalog it again from one store alone.
const (
	MetaCluster        = "cluster"
	MetaKind           = "kind" // KindWAL, KindBackup or KindSentinel
	MetaName           = "name" // the WAL file's or the backup's name
	MetaFile           = "file" // a backup object's name inside the backup
	MetaSHA256         = "sha256"
	MetaContentID      = "content-id"
	MetaPlainSize      = "plain-size"
	MetaCompression    = "compression"
	MetaEncryption     = "encryption"
	MetaTimelineParent = "timeline-parent"
	MetaSwitchLSN      = "switch-lsn"
	// MetaSystemIdentifier is the PostgreSQL system identifier (decimal)
	// of a WAL segment, when its push carried one.
	MetaSystemIdentifier = "system-identifier"
	// MetaKeyFingerprint names the key an encrypted object was sealed
	// with, when its push said so.
	MetaKeyFingerprint = "key-fingerprint"
)

// The kinds of object (MetaKind).
const (
	KindWAL      = "wal"
	KindBackup   = "backup"
	KindSentinel = "backup-sentinel"
)

// WALObject is what the metadata of a WAL object records.
type WALObject struct {
	Cluster, Name, SHA256, ContentID string
	PlainSize                        int64
	Compression, Encryption          string
	KeyFingerprint                   string // "" when not known
	// TimelineParent and SwitchLSN: a timeline history's parent and the
	// LSN it branched at (0: not known, and not stored).
	TimelineParent uint32
	SwitchLSN      string // as X/Y
}

// Metadata is the metadata stored with a WAL object.
func (o WALObject) Metadata() map[string]string {
	md := map[string]string{
		MetaCluster: o.Cluster, MetaKind: KindWAL, MetaName: o.Name,
		MetaSHA256: o.SHA256, MetaContentID: o.ContentID,
		MetaPlainSize:   strconv.FormatInt(o.PlainSize, 10),
		MetaCompression: o.Compression, MetaEncryption: o.Encryption,
	}
	WithKeyFingerprint(md, o.KeyFingerprint)
	if o.TimelineParent != 0 {
		md[MetaTimelineParent] = strconv.FormatUint(uint64(o.TimelineParent), 10)
		md[MetaSwitchLSN] = o.SwitchLSN
	}
	return md
}

// BackupFileMetadata is the metadata stored with an object of a backup.
func BackupFileMetadata(cluster, name, file, compression, encryption string) map[string]string {
	return map[string]string{MetaCluster: cluster, MetaKind: KindBackup, MetaName: name, MetaFile: file,
		MetaCompression: compression, MetaEncryption: encryption}
}

// WithKeyFingerprint adds the key fingerprint of an encrypted object to its
// metadata md, unless it is "" (not known), and returns md.
func WithKeyFingerprint(md map[string]string, fingerprint string) map[string]string {
	if fingerprint != "" {
		md[MetaKeyFingerprint] = fingerprint
	}
	return md
}

// SentinelMetadata is the metadata stored with a backup's sentinel.
func SentinelMetadata(cluster, name string) map[string]string {
	return map[string]string{MetaCluster: cluster, MetaKind: KindSentinel, MetaName: name}
}

// Sentinel is what the catalog keeps of a backup's sentinel (WAL-G's
// field names). The gateway reads it; it never changes a sentinel.
type Sentinel struct {
	LSN              *uint64   `json:"LSN"`
	FinishLSN        *uint64   `json:"FinishLSN"`
	DeltaFrom        string    `json:"DeltaFrom"`
	DeltaFullName    string    `json:"DeltaFullName"`
	DeltaCount       int       `json:"DeltaCount"`
	StartTime        time.Time `json:"StartTime"`
	FinishTime       time.Time `json:"FinishTime"`
	UncompressedSize int64     `json:"UncompressedSize"`
	PgVersion        int       `json:"PgVersion"`
	SystemIdentifier uint64    `json:"SystemIdentifier"`
	Hostname         string    `json:"Hostname"`
	IsPermanent      bool      `json:"IsPermanent"`
}

// Check says what a sentinel lacks to be cataloged.
func (s Sentinel) Check() error {
	if s.LSN == nil || s.FinishLSN == nil || s.FinishTime.IsZero() {
		return fmt.Errorf("the sentinel must be JSON with LSN, FinishLSN and FinishTime")
	}
	return nil
}

// Kind is "delta" for a delta backup's sentinel, else "full".
func (s Sentinel) Kind() string {
	if s.DeltaFrom != "" {
		return "delta"
	}
	return "full"
}

// ContentIDUnknown is the content ID recorded for an encrypted WAL object
// written without walgate metadata (by stock WAL-G): the gateway never
// holds the key, so the plaintext identity cannot be known. No client can
// send it (its scheme is neither sha256 nor hmac-sha256), so a later push
// of the same name is refused as a conflict rather than silently taken as
// a repeat.
const ContentIDUnknown = "unknown:encrypted-without-walgate-metadata"

// ControlFile starts the name of the object that holds pg_control (with
// the compression's extension after it); a backup without it cannot be
// restored.
const ControlFile = "tar_partitions/pg_control.tar"

// FindFile returns the first of a backup's object names that starts with
// prefix (e.g. ControlFile).
func FindFile[V any](files map[string]V, prefix string) (string, bool) {
	for f := range files {
		if strings.HasPrefix(f, prefix) {
			return f, true
		}
	}
	return "", false
}
