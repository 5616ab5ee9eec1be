package protocol

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/walgate/walgate/index/layout"
)

// HeaderBackupSession names the upload session a backup object belongs to.
const HeaderBackupSession = "Walgate-Backup-Session"

// BackupsPath is the route listing a cluster's committed backups.
func BackupsPath(cluster string) string {
	return "/" + Version + "/clusters/" + url.PathEscape(cluster) + "/backups"
}

// BackupPath is the route of one backup: POST begins it, GET describes it,
// DELETE aborts an open one.
func BackupPath(cluster, name string) string {
	return BackupsPath(cluster) + "/" + url.PathEscape(name)
}

// BackupCommitPath commits an open backup.
func BackupCommitPath(cluster, name string) string { return BackupPath(cluster, name) + "/commit" }

// BackupFilePath is the route of one object of a backup, e.g.
// "tar_partitions/part_001.tar.zst" or "metadata.json".
func BackupFilePath(cluster, name, file string) string {
	return BackupPath(cluster, name) + "/files/" + file
}

// DrillsPath is where restore-drill reports of a cluster go.
func DrillsPath(cluster string) string {
	return "/" + Version + "/clusters/" + url.PathEscape(cluster) + "/drills"
}

// Latest names the newest committed backup by finish time.
const Latest = "LATEST"

// ValidateBackupName checks WAL-G's backup name grammar:
// base_<24 hex>, optionally _D_<24 hex> for a delta.
func ValidateBackupName(name string) error {
	rest, ok := strings.CutPrefix(name, layout.BackupPrefix)
	if ok {
		seg, delta, isDelta := strings.Cut(rest, "_D_")
		if validSeg(seg) && (!isDelta || validSeg(delta)) {
			return nil
		}
	}
	return fmt.Errorf("invalid backup name %q: want base_<24 hex digits>[_D_<24 hex digits>] or LATEST", clip(name))
}

func validSeg(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s[:8] != "00000000"
}

// ValidateBackupFile checks the name of an object inside a backup:
// metadata.json, files_metadata.json, or tar_partitions/ followed by
// part_NNN.tar, pg_control.tar or backup_label.tar with an optional
// compression extension (zst, lz4, br).
func ValidateBackupFile(file string) error {
	switch file {
	case "metadata.json", "files_metadata.json":
		return nil
	}
	bad := fmt.Errorf("invalid backup object %q: want metadata.json, files_metadata.json or tar_partitions/{part_NNN,pg_control,backup_label}.tar[.zst|.lz4|.br]", clip(file))
	base, ok := strings.CutPrefix(file, "tar_partitions/")
	if !ok {
		return bad
	}
	stem, _, hasDot := strings.Cut(base, ".tar")
	ext := strings.TrimPrefix(base, stem+".tar")
	if !hasDot || ext != "" && (layout.FileCompression(ext) == layout.CompressionNone || !layout.PushCompression(layout.FileCompression(ext))) {
		return bad
	}
	switch {
	case stem == "pg_control" || stem == "backup_label":
		return nil
	case strings.HasPrefix(stem, "part_") && len(stem) >= 8 && len(stem) <= 11:
		for _, c := range stem[5:] {
			if c < '0' || c > '9' {
				return bad
			}
		}
		return nil
	}
	return bad
}

// FileCompression returns the compression a backup object's name implies.
func FileCompression(file string) string { return layout.FileCompression(file) }

// BeginBackupResult answers POST on a backup: the session to quote in
// every upload and in the commit.
type BeginBackupResult struct {
	Name    string `json:"name"`
	Session string `json:"session"`
}

// BackupFile describes one stored object of a backup.
type BackupFile struct {
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Compression string `json:"compression"`
	Encryption  string `json:"encryption"`
	// KeyFingerprint names the key an encrypted object was sealed with
	// (see HeaderKeyFingerprint); empty when unknown or unencrypted.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
}

// CommitBackup is the body of a commit: the sentinel exactly as it is to
// be stored, and the objects the client uploaded with their hashes, which
// must equal what the gateway received.
type CommitBackup struct {
	Sentinel []byte                `json:"sentinel"`
	Files    map[string]BackupFile `json:"files"`
}

// BackupSummary is one backup in a listing.
type BackupSummary struct {
	Name             string    `json:"name"`
	Kind             string    `json:"kind"` // full or delta
	DeltaFrom        string    `json:"delta_from,omitempty"`
	DeltaFullName    string    `json:"delta_full_name,omitempty"` // the full backup at the root of a delta's chain
	DeltaCount       int       `json:"delta_count,omitempty"`     // deltas since that full backup (1 for the first)
	StartLSN         uint64    `json:"start_lsn"`
	FinishLSN        uint64    `json:"finish_lsn"`
	Timeline         uint32    `json:"timeline"`
	StartTime        time.Time `json:"start_time"`
	FinishTime       time.Time `json:"finish_time"`
	UncompressedSize int64     `json:"uncompressed_size"`
	StoredSize       int64     `json:"stored_size"`
	PgVersion        int       `json:"pg_version"`
	SystemIdentifier uint64    `json:"system_identifier"`
	Hostname         string    `json:"hostname"`
	Committed        time.Time `json:"committed"`
	// Unrestorable says why the backup cannot be restored (a link of its
	// delta chain missing, an object without a good copy on any store, as
	// far as the gateway found); empty when nothing known stands in the way.
	Unrestorable string `json:"unrestorable,omitempty"`
}

// BackupDetail is GET of one backup: its summary, sentinel and objects.
type BackupDetail struct {
	BackupSummary
	Sentinel []byte                `json:"sentinel"`
	Files    map[string]BackupFile `json:"files"`
}

// DrillReport is what walgate-client drill sends and the gateway keeps.
type DrillReport struct {
	Cluster         string    `json:"cluster"`
	Backup          string    `json:"backup"`
	Passed          bool      `json:"passed"`
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	FetchSeconds    float64   `json:"fetch_seconds"`
	RecoverySeconds float64   `json:"recovery_seconds"`
	TargetTime      string    `json:"target_time,omitempty"`
	RecoveryEndLSN  string    `json:"recovery_end_lsn,omitempty"`
	RecoveryEndTime string    `json:"recovery_end_time,omitempty"`
	Checks          []Check   `json:"checks"`
	Error           string    `json:"error,omitempty"`
	Host            string    `json:"host"`
	Received        time.Time `json:"received,omitzero"` // set by the gateway
}

// FailedCheck is the first check that failed ("" when none did).
func (r DrillReport) FailedCheck() string {
	for _, c := range r.Checks {
		if !c.Passed {
			return c.Name
		}
	}
	return ""
}

// Reason says in one line why a drill failed: its error's first line, or
// else its failed checks, each with the last line of its output. It is ""
// for a drill that passed.
func (r DrillReport) Reason() string {
	if r.Passed {
		return ""
	}
	if r.Error != "" {
		first, _, _ := strings.Cut(r.Error, "\n")
		return first
	}
	var failed []string
	for _, c := range r.Checks {
		if c.Passed {
			continue
		}
		out := strings.TrimRight(c.Output, "\n")
		if i := strings.LastIndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
		if out != "" {
			failed = append(failed, c.Name+": "+out)
		} else {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) == 0 {
		return "no check ran"
	}
	return fmt.Sprintf("%d of %d checks failed: %s", len(failed), len(r.Checks), strings.Join(failed, "; "))
}

// Check is one drill check and its outcome.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Output string `json:"output,omitempty"`
}

// HealthPath is GET of a cluster's health (wal-verify).
func HealthPath(cluster string) string {
	return "/" + Version + "/clusters/" + url.PathEscape(cluster) + "/health"
}

// ClusterHealth is what GET HealthPath answers (the gateway sends more
// fields; these are the ones wal-verify reads).
type ClusterHealth struct {
	Cluster         string      `json:"cluster"`
	Status          string      `json:"status"` // ok, warning, critical
	Reasons         []string    `json:"reasons"`
	LastSegment     string      `json:"last_segment"`
	LastPush        time.Time   `json:"last_push,omitzero"`
	Stalled         bool        `json:"stalled"`
	Gaps            []HealthGap `json:"gaps"`
	LostSegments    uint64      `json:"lost_segments"`
	Delayed         uint64      `json:"delayed_segments"`
	LastBackup      string      `json:"last_backup"`
	LastBackupAt    time.Time   `json:"last_backup_at,omitzero"`
	ChainLength     int         `json:"chain_length"`
	WindowStart     time.Time   `json:"window_start,omitzero"`
	WindowEnd       time.Time   `json:"window_end,omitzero"`
	RestorableToNow bool        `json:"restorable_to_now"`
	// DamagedWAL lists WAL files (segments, history files) of which every
	// stored copy was found damaged or missing: recovery cannot pass them.
	DamagedWAL []string `json:"damaged_wal,omitempty"`
	// NewestBackupUnrestorable says why the newest backup cannot be
	// restored (a link of its chain or one of its objects missing or
	// damaged everywhere); empty when nothing known stands in the way.
	NewestBackupUnrestorable string `json:"newest_backup_unrestorable,omitempty"`
}

// HealthGap is a range of missing WAL segments.
type HealthGap struct {
	Timeline uint32 `json:"timeline"`
	From     string `json:"from"`
	To       string `json:"to"`
	Count    uint64 `json:"count"`
	Class    string `json:"class"` // delayed or lost
}

// DeletePath is POST of a retention deletion (admin scope): walgate-client
// delete retain [FULL] N and delete before NAME.
func DeletePath(cluster string) string {
	return "/" + Version + "/clusters/" + url.PathEscape(cluster) + "/delete"
}

// DeleteRequest asks the gateway's retention planner to delete a cluster's
// older backups and the WAL only they needed. Exactly one of Retain and
// Before is set. Without Confirm nothing is deleted: the answer says what
// would be.
type DeleteRequest struct {
	// Retain keeps the newest Retain backups (with Full: full backups,
	// with the deltas built on them).
	Retain int  `json:"retain,omitempty"`
	Full   bool `json:"full,omitempty"`
	// Before keeps the named backup and every later one.
	Before  string `json:"before,omitempty"`
	Confirm bool   `json:"confirm"`
}

// RetainedBackup is a backup retention keeps, and why.
type RetainedBackup struct {
	Name    string   `json:"name"`
	Reasons []string `json:"reasons"`
}

// DeleteResult says what a deletion deleted, or would delete.
type DeleteResult struct {
	Cluster  string           `json:"cluster"`
	Applied  bool             `json:"applied"`
	Retained []RetainedBackup `json:"retained"`
	// Backups deleted (Applied) or that would be.
	Backups        []string `json:"backups"`
	WALFiles       int      `json:"wal_files"`
	WALBytes       int64    `json:"wal_bytes"`
	BackupBytes    int64    `json:"backup_bytes"`
	WALKeptFrom    []string `json:"wal_kept_from"` // per timeline: "timeline N: from SEGMENT"
	Warnings       []string `json:"warnings,omitempty"`
	Errors         []string `json:"errors,omitempty"`
	ObjectsDeleted int      `json:"objects_deleted"`
	RefusedBecause string   `json:"refused_because,omitempty"`
}

// KeysPath is GET of which keys a cluster's archive is encrypted with
// (wal-verify --keys).
func KeysPath(cluster string) string {
	return "/" + Version + "/clusters/" + url.PathEscape(cluster) + "/keys"
}

// KeyUsage is what GET KeysPath answers: the cluster's WAL and backup
// objects grouped by the key they were sealed with. The gateway knows keys
// only by fingerprint.
type KeyUsage struct {
	Cluster string   `json:"cluster"`
	Keys    []KeyUse `json:"keys"`
}

// KeyUse is the objects of one fingerprint (Encryption libsodium), of
// encrypted objects that name no key (Fingerprint "": WAL-G's, and
// walgate's from before fingerprints), or of unencrypted ones
// (Encryption none).
type KeyUse struct {
	Fingerprint string `json:"fingerprint"`
	Encryption  string `json:"encryption"`
	// WAL counts the WAL files; FirstWAL and LastWAL are the first and
	// last by name.
	WAL      int    `json:"wal"`
	FirstWAL string `json:"first_wal,omitempty"`
	LastWAL  string `json:"last_wal,omitempty"`
	// Backups are the committed backups with at least one object sealed
	// so; BackupObjects counts those objects.
	Backups       []string `json:"backups,omitempty"`
	BackupObjects int      `json:"backup_objects"`
}
