package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/protocol"
)

// The PostgreSQL majors walgate backs up and restores. A server outside
// them is refused: its backup API, data directory layout or WAL format
// may differ in ways this client does not know.
const (
	MinPgMajor = 13
	MaxPgMajor = 18
)

// checkPgVersion refuses a server_version_num outside MinPgMajor..MaxPgMajor.
func checkPgVersion(versionNum int) error {
	major := pgMajor(versionNum)
	switch {
	case major == 0:
		return fmt.Errorf("PostgreSQL version %d is not supported: walgate backs up PostgreSQL %d to %d", versionNum, MinPgMajor, MaxPgMajor)
	case major < MinPgMajor:
		return fmt.Errorf("PostgreSQL %d is not supported: walgate backs up PostgreSQL %d to %d (upgrade the cluster, or use a tool that supports %d)", major, MinPgMajor, MaxPgMajor, major)
	case major > MaxPgMajor:
		return fmt.Errorf("PostgreSQL %d is newer than this walgate-client knows (PostgreSQL %d to %d): upgrade walgate-client before backing it up", major, MinPgMajor, MaxPgMajor)
	}
	return nil
}

// backupStartSQL starts a non-exclusive backup with a fast checkpoint and
// returns its start LSN as text and its WAL file name ($1 is the label).
// PostgreSQL 15 renamed pg_start_backup to pg_backup_start and dropped
// exclusive mode.
func backupStartSQL(major int) string {
	if major < 15 {
		return `SELECT l::text, pg_walfile_name(l) FROM pg_start_backup($1, true, false) AS l`
	}
	return `SELECT l::text, pg_walfile_name(l) FROM pg_backup_start($1, true) AS l`
}

// backupStopSQL ends the non-exclusive backup of this session without
// waiting for archiving (the client watches archive_status itself) and
// returns the stop LSN, the backup_label and tablespace_map contents, the
// stop LSN's WAL file name and whether archiving is on.
func backupStopSQL(major int) string {
	from := "pg_backup_stop(false)"
	if major < 15 {
		from = "pg_stop_backup(false, false)" // (exclusive, wait_for_archive)
	}
	return `SELECT lsn::text, labelfile, spcmapfile, pg_walfile_name(lsn),
		current_setting('archive_mode') <> 'off' FROM ` + from
}

// checkRestoreMajor refuses, before anything is written, a backup of a
// major newer than this client knows, and a backup of another major than
// the server programs in pgBin ("" skips that check). versionNum is the
// backup's server_version_num (0 when the sentinel does not say).
func checkRestoreMajor(versionNum int, pgBin string) error {
	major := pgMajor(versionNum)
	if major > MaxPgMajor {
		return fmt.Errorf("the backup is of PostgreSQL %d, newer than this walgate-client knows (PostgreSQL %d to %d): upgrade walgate-client to restore it", major, MinPgMajor, MaxPgMajor)
	}
	if pgBin == "" {
		return nil
	}
	if _, err := findPgBin(pgBin, major); err != nil {
		return fmt.Errorf("%w: PostgreSQL cannot start a data directory of another major; use the programs of PostgreSQL %d", err, major)
	}
	return nil
}

// checkArchiveSegmentSize refuses a backup of a server whose WAL segment
// size differs from the one the cluster's newest backup records: the
// gateway would refuse its WAL (a cluster archives one size), and the
// backup would wait for archiving in vain.
func (c *Client) checkArchiveSegmentSize(ctx context.Context, segSize int64) error {
	// No backup yet, or a token without the fetch scope: nothing to
	// compare with (the gateway still refuses WAL of another size).
	d, err := c.Backup(ctx, protocol.Latest)
	if err != nil {
		return nil
	}
	// A sentinel that cannot be read says nothing of the size; the new
	// backup is worth more than this check.
	s, err := basebackup.ParseSentinel(bytes.NewReader(d.Sentinel))
	if err == nil && s.WALSegmentSize != 0 && s.WALSegmentSize != segSize {
		return &Error{Kind: ErrRejected, Op: "backup-push", Message: fmt.Sprintf(
			"this server's WAL segments are %d MiB, but cluster %s archives %d MiB segments (backup %s): a server with another wal_segment_size (initdb --wal-segsize) must archive under a new cluster name",
			segSize>>20, c.cfg.Cluster, s.WALSegmentSize>>20, d.Name)}
	}
	return nil
}
