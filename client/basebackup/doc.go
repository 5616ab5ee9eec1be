// Package basebackup owns the host-side file formats of a PostgreSQL base
// backup, shared byte for byte with WAL-G so that either tool can restore
// what the other wrote (docs/backup-format.md is the specification):
//
//   - backup names (base_<WAL file>[_D_<WAL file>]) and the names of the
//     objects of one backup (sentinel, metadata.json, files_metadata.json,
//     tar_partitions/part_NNN.tar.<ext>, pg_control.tar.<ext>,
//     backup_label.tar.<ext>);
//   - the walk of a data directory and its tablespaces, following
//     PostgreSQL's own base-backup exclusion rules (basebackup.c:
//     excludeDirContents, excludeFiles, temporary files and relations,
//     unlogged relations, pg_wal), with pg_control held back;
//   - which pages of a relation file changed, from a page scan or from the
//     block lists of PostgreSQL 17's WAL summaries (BlockChanges);
//   - cutting the walk into tar parts as WAL-G does, and writing and reading
//     those tars (member names "/base/5/1234", sizes frozen at scan time);
//   - the JSON documents: the backup stop sentinel, metadata.json and
//     files_metadata.json, field for field as WAL-G writes and reads them.
//
// ExtractTar is the restore side: it refuses any member that could write
// outside the target directory and any member that is not a regular file
// or a directory.
//
// The package is a library of pure functions over files and streams. It
// must never touch the network, talk to PostgreSQL, read configuration or
// the environment, log, or import walgate's gateway, index or backends
// packages; the only walgate packages it may import are client/codec (for
// object name extensions) and the leaf index/layout (the archive's names
// it shares with the gateway: backup prefix, sentinel suffix); of the
// system beyond os, only sync_file_range (golang.org/x/sys/unix, in
// writeback_linux.go). Compression, encryption and upload are the
// caller's: the tars are written to an io.Writer and read from an
// io.Reader.
package basebackup
