package basebackup

import (
	"fmt"
	"strings"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/index/layout"
)

// Names of the objects that make up one base backup, as WAL-G writes them
// under basebackups_005/ (docs/backup-format.md, "Layout").
const (
	// NamePrefix starts every backup name.
	NamePrefix = layout.BackupPrefix
	// deltaInfix separates a delta backup's start WAL file from its parent's.
	deltaInfix = "_D_"
	// SentinelSuffix follows the backup name in the sentinel's object name.
	SentinelSuffix = layout.SentinelSuffix
	// MetadataName is the object name of metadata.json inside the backup's folder.
	MetadataName = "metadata.json"
	// FilesMetadataName is the object name of files_metadata.json inside the
	// backup's folder.
	FilesMetadataName = "files_metadata.json"
	// TarFolder is the folder of the tar objects inside the backup's folder.
	TarFolder = "tar_partitions"
)

// walFileLen is the length of a WAL file name: timeline, log and segment,
// 8 upper-case hex digits each.
const walFileLen = 24

// BackupName returns the name of a full backup whose start LSN lies in WAL
// file startWALFile ("base_" + the 24 hex digits). startWALFile is used as
// given; names read back are checked by ParseBackupName.
func BackupName(startWALFile string) string {
	return NamePrefix + startWALFile
}

// DeltaBackupName returns the name of a delta backup starting in WAL file
// startWALFile whose immediate parent is the backup called parent: WAL-G's
// "base_<start>_D_<parent's start WAL file>".
func DeltaBackupName(startWALFile, parent string) (string, error) {
	if !isWALFile(startWALFile) {
		return "", fmt.Errorf("delta backup start %q is not a WAL file name (24 upper-case hex digits)", startWALFile)
	}
	parentStart, _, err := ParseBackupName(parent)
	if err != nil {
		return "", fmt.Errorf("delta backup parent: %w", err)
	}
	return NamePrefix + startWALFile + deltaInfix + parentStart, nil
}

// ParseBackupName splits a backup name into the WAL file its start LSN lies
// in and, for a delta backup, the WAL file of its parent's start (""
// for a full backup). It accepts exactly "base_" + 24 upper-case hex digits,
// optionally followed by "_D_" + 24 upper-case hex digits, and nothing else:
// no WAL-E style "_<8hex>" tail, no lower-case hex, no path separators, so a
// name that passes is safe to use as part of an object key.
func ParseBackupName(name string) (startWAL string, deltaFrom string, err error) {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok || len(rest) < walFileLen || !isWALFile(rest[:walFileLen]) {
		return "", "", fmt.Errorf("invalid backup name %q: want base_ followed by a 24-hex-digit WAL file name", name)
	}
	startWAL, rest = rest[:walFileLen], rest[walFileLen:]
	if rest == "" {
		return startWAL, "", nil
	}
	parent, ok := strings.CutPrefix(rest, deltaInfix)
	if !ok || !isWALFile(parent) {
		return "", "", fmt.Errorf("invalid backup name %q: after the WAL file name only _D_ and the parent's 24-hex-digit WAL file name may follow", name)
	}
	return startWAL, parent, nil
}

// SentinelObjectName returns the name of backup's sentinel object,
// relative to basebackups_005/.
func SentinelObjectName(backup string) string {
	return backup + SentinelSuffix
}

// PartObjectName returns the name of the n-th data tar (n counts from 1),
// relative to the tar folder: "part_001.tar.lz4", or "part_001.tar" without
// compression.
func PartObjectName(n int, c codec.Compression) string {
	return tarObjectName(fmt.Sprintf("part_%03d", n), c)
}

// PgControlObjectName returns the name of the tar holding global/pg_control,
// relative to the tar folder.
func PgControlObjectName(c codec.Compression) string {
	return tarObjectName("pg_control", c)
}

// LabelObjectName returns the name of the tar holding backup_label and
// tablespace_map, relative to the tar folder.
func LabelObjectName(c codec.Compression) string {
	return tarObjectName("backup_label", c)
}

func tarObjectName(base string, c codec.Compression) string {
	if ext := c.Ext(); ext != "" {
		return base + ".tar." + ext
	}
	return base + ".tar"
}

func isWALFile(s string) bool {
	if len(s) != walFileLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
