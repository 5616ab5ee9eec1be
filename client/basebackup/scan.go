package basebackup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File is one entry of a base backup: a regular file or a directory, as
// found by ScanDataDir or built by a caller.
type File struct {
	// Path is where the entry is read from on disk (absolute). For the
	// synthesized pg_wal/archive_status entry it is pg_wal's path.
	Path string
	// Member is the tar member name: "/" + the path relative to PGDATA,
	// e.g. "/base/5/1234"; tablespace files are named
	// "/pg_tblspc/<oid>/<path relative to the tablespace location>".
	// The data directory itself is the member "/".
	Member string
	// Size is the size at scan time; WriteTar writes exactly this many
	// bytes. 0 for directories.
	Size int64
	// Mode holds the permission bits (and os.ModeDir for directories).
	Mode os.FileMode
	// ModTime is the modification time at scan time, to the nanosecond
	// (files_metadata.json keeps it so; tar headers keep whole seconds).
	ModTime time.Time
	// IsDir is true for a directory, written as a header-only entry.
	IsDir bool
}

// Tablespace is a tablespace found as a symbolic link pg_tblspc/<OID>.
type Tablespace struct {
	// OID is the link's name, the tablespace's OID in decimal.
	OID string
	// Location is the link's target, as read from the link.
	Location string
}

// Scan is the result of walking a data directory.
type Scan struct {
	// Files are the entries to back up, sorted by Member. global/pg_control
	// is not among them: it goes into its own tar, written last.
	Files []File
	// PgControl is global/pg_control.
	PgControl File
	// Tablespaces are the pg_tblspc symbolic links, sorted by OID. Their
	// files are in Files under /pg_tblspc/<OID>/.
	Tablespaces []Tablespace
	// DataCatalogSize is the sum of the sizes of all regular files backed
	// up, pg_control included (the sentinel's DataCatalogSize).
	DataCatalogSize int64
	// Ignored lists the members of entries PostgreSQL would not back up
	// either and which a caller may want to warn about: symbolic links
	// outside pg_tblspc, sockets, devices, pipes.
	Ignored []string
}

// PostgreSQL's base-backup exclusion rules (src/backend/backup/basebackup.c,
// PostgreSQL 15), applied by name in every directory.
var (
	// excludeDirContents: the directory is kept as an empty entry, its
	// contents are skipped.
	excludeDirContents = map[string]bool{
		"pg_stat_tmp":  true,
		"pg_replslot":  true,
		"pg_dynshmem":  true,
		"pg_notify":    true,
		"pg_serial":    true,
		"pg_snapshots": true,
		"pg_subtrans":  true,
	}
	// excludeFiles: skipped outright.
	excludeFiles = map[string]bool{
		"postgresql.auto.conf.tmp": true,
		"current_logfiles.tmp":     true,
		"backup_label":             true,
		"tablespace_map":           true,
		"backup_manifest":          true,
		"postmaster.pid":           true,
		"postmaster.opts":          true,
	}
)

const (
	// relcacheInitPrefix: pg_internal.init and its temporary files are
	// rebuilt at startup (excluded by prefix).
	relcacheInitPrefix = "pg_internal.init"
	// tempFilePrefix: PG_TEMP_FILE_PREFIX, files and directories skipped
	// with no entry at all.
	tempFilePrefix = "pgsql_tmp"
	// tablespaceDir holds the tablespace links.
	tablespaceDir = "pg_tblspc"
	// pgControl is held back from Files.
	pgControl = "global/pg_control"
)

// ScanDataDir walks the data directory pgdata and every tablespace linked
// from pg_tblspc, and returns what a base backup must contain, following
// PostgreSQL's own rules for base backups:
//
//   - the contents of pg_stat_tmp, pg_replslot, pg_dynshmem, pg_notify,
//     pg_serial, pg_snapshots and pg_subtrans are skipped, the directories
//     kept (a symbolic link there becomes a directory entry);
//   - pg_wal (top level only) is kept as an empty directory plus an empty
//     pg_wal/archive_status and, where it exists (PostgreSQL 17 and later),
//     an empty pg_wal/summaries, all with pg_wal's metadata;
//   - files and directories named pgsql_tmp* are skipped entirely;
//   - postgresql.auto.conf.tmp, current_logfiles.tmp, pg_internal.init*,
//     backup_label, tablespace_map, backup_manifest, postmaster.pid and
//     postmaster.opts are skipped;
//   - in database directories (base/<oid>, <tablespace>/PG_*/<oid>): temporary
//     relations (t<backend>_<relfilenode>[_fork][.segment]) are skipped, and so
//     is every fork of an unlogged relation (one that has a <relfilenode>_init
//     file) except the _init fork itself;
//   - global/pg_control is returned apart, in PgControl;
//   - symbolic links other than pg_tblspc/<oid>, and special files, are not
//     backed up (listed in Ignored).
//
// Unlike PostgreSQL, which only sends a tablespace's PG_<version>_<catalog>
// directory, the whole tablespace location is walked, as WAL-G does; the
// rules above apply inside it too. An entry that vanishes during the walk is
// skipped; any other error fails the scan.
func ScanDataDir(pgdata string) (*Scan, error) {
	root, err := filepath.Abs(pgdata)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", pgdata, err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("scan data directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("scan data directory: %s is not a directory", root)
	}
	s := &Scan{}
	w := walker{scan: s}
	w.addDir(root, "/", info)
	if err := w.walk(root, ""); err != nil {
		return nil, err
	}
	if s.PgControl.Member == "" {
		return nil, fmt.Errorf("scan data directory: %s has no %s: not a PostgreSQL data directory", root, pgControl)
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Member < s.Files[j].Member })
	sort.Slice(s.Tablespaces, func(i, j int) bool { return s.Tablespaces[i].OID < s.Tablespaces[j].OID })
	sort.Strings(s.Ignored)
	return s, nil
}

type walker struct {
	scan *Scan
}

func (w *walker) addDir(path, member string, info fs.FileInfo) {
	w.scan.Files = append(w.scan.Files, File{
		Path: path, Member: member, Mode: os.ModeDir | info.Mode().Perm(),
		ModTime: info.ModTime(), IsDir: true,
	})
}

// walk adds the contents of directory dir. rel is dir's member name
// without the leading "/" ("" for the data directory; "pg_tblspc/<oid>/..."
// inside a linked tablespace, whatever its location on disk).
func (w *walker) walk(dir, rel string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && rel != "" {
			return nil // went away while scanning
		}
		return fmt.Errorf("scan %s: %w", dir, err)
	}
	dbDir := isDatabaseDir(rel)
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		member := "/" + childRel

		if strings.HasPrefix(name, tempFilePrefix) || excludeFiles[name] || strings.HasPrefix(name, relcacheInitPrefix) {
			continue
		}
		if dbDir {
			if relNum, fork, ok := parseRelationFile(name); ok && fork != "init" {
				if _, err := os.Lstat(filepath.Join(dir, relNum+"_init")); err == nil {
					continue // unlogged relation: only its init fork is kept
				}
			}
			if looksLikeTempRelation(name) {
				continue
			}
		}
		if childRel == pgControl {
			info, err := os.Lstat(path)
			if err != nil {
				return fmt.Errorf("scan %s: %w", path, err)
			}
			if !info.Mode().IsRegular() {
				return fmt.Errorf("scan %s: not a regular file", path)
			}
			w.scan.PgControl = fileOf(path, member, info)
			w.scan.DataCatalogSize += info.Size()
			continue
		}
		info, err := os.Lstat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("scan %s: %w", path, err)
		}
		isLink := info.Mode()&os.ModeSymlink != 0

		if excludeDirContents[name] && (info.IsDir() || isLink) {
			w.addDir(path, member, dirInfo(path, info))
			continue
		}
		if childRel == "pg_wal" && (info.IsDir() || isLink) {
			info = dirInfo(path, info)
			w.addDir(path, member, info)
			w.addDir(path, member+"/archive_status", info)
			// PostgreSQL 17 and later keep WAL summaries in
			// pg_wal/summaries and send it, empty, in a base backup.
			if fi, err := os.Stat(filepath.Join(path, "summaries")); err == nil && fi.IsDir() {
				w.addDir(path, member+"/summaries", info)
			}
			continue
		}
		if rel == tablespaceDir && isLink {
			target, err := os.Readlink(path)
			if err != nil {
				return fmt.Errorf("scan tablespace link %s: %w", path, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			tinfo, err := os.Stat(target)
			if err != nil {
				return fmt.Errorf("scan tablespace %s (%s): %w", name, target, err)
			}
			if !tinfo.IsDir() {
				return fmt.Errorf("scan tablespace %s: %s is not a directory", name, target)
			}
			w.scan.Tablespaces = append(w.scan.Tablespaces, Tablespace{OID: name, Location: target})
			w.addDir(target, member, tinfo)
			if err := w.walk(target, childRel); err != nil {
				return err
			}
			continue
		}
		switch {
		case info.IsDir():
			w.addDir(path, member, info)
			if err := w.walk(path, childRel); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			w.scan.Files = append(w.scan.Files, fileOf(path, member, info))
			w.scan.DataCatalogSize += info.Size()
		default:
			w.scan.Ignored = append(w.scan.Ignored, member)
		}
	}
	return nil
}

func fileOf(path, member string, info fs.FileInfo) File {
	return File{Path: path, Member: member, Size: info.Size(), Mode: info.Mode().Perm(), ModTime: info.ModTime()}
}

// dirInfo returns the metadata to store for a directory entry that may be
// a symbolic link: the target's if it is a directory, else the link's own
// with mode 0700 (PostgreSQL's convert_link_to_directory).
func dirInfo(path string, info fs.FileInfo) fs.FileInfo {
	if info.Mode()&os.ModeSymlink == 0 {
		return info
	}
	if t, err := os.Stat(path); err == nil && t.IsDir() {
		return t
	}
	return linkAsDir{info}
}

type linkAsDir struct{ fs.FileInfo }

func (l linkAsDir) Mode() fs.FileMode { return fs.ModeDir | 0o700 }
func (l linkAsDir) IsDir() bool       { return true }

// isDatabaseDir reports whether rel (a member name without the leading
// "/") is a directory holding relation files: base/<digits>, or
// pg_tblspc/<oid>/PG_*/<digits> inside a tablespace.
func isDatabaseDir(rel string) bool {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 2 && parts[0] == "base":
		return allDigits(parts[1])
	case len(parts) == 4 && parts[0] == tablespaceDir && strings.HasPrefix(parts[2], "PG_"):
		return allDigits(parts[3])
	}
	return false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// digitsAt returns the number of ASCII digits at the start of s.
func digitsAt(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// forkNameLen returns the length of the fork name ("fsm", "vm", "init"; the
// main fork has no suffix) that s starts with, or 0.
func forkNameLen(s string) (string, int) {
	for _, f := range []string{"fsm", "vm", "init"} {
		if strings.HasPrefix(s, f) {
			return f, len(f)
		}
	}
	return "", 0
}

// relationSuffix parses the optional "_<fork>" and ".<segment>" that may
// follow a relation file number at s, and reports the fork and whether s
// is exactly that.
func relationSuffix(s string) (fork string, ok bool) {
	pos := 0
	fork = "main"
	if pos < len(s) && s[pos] == '_' {
		f, n := forkNameLen(s[pos+1:])
		if n == 0 {
			return "", false
		}
		fork = f
		pos += 1 + n
	}
	if pos < len(s) && s[pos] == '.' {
		n := digitsAt(s[pos+1:])
		if n == 0 {
			return "", false
		}
		pos += 1 + n
	}
	return fork, pos == len(s)
}

// parseRelationFile is PostgreSQL's parse_filename_for_nontemp_relation:
// <relfilenode>[_<fork>][.<segment>], the relfilenode 1 to 10 digits.
func parseRelationFile(name string) (relNum, fork string, ok bool) {
	n := digitsAt(name)
	if n == 0 || n > 10 {
		return "", "", false
	}
	fork, ok = relationSuffix(name[n:])
	if !ok {
		return "", "", false
	}
	return name[:n], fork, true
}

// looksLikeTempRelation is PostgreSQL's looks_like_temp_rel_name:
// t<backend>_<relfilenode>[_<fork>][.<segment>].
func looksLikeTempRelation(name string) bool {
	if !strings.HasPrefix(name, "t") {
		return false
	}
	rest := name[1:]
	n := digitsAt(rest)
	if n == 0 || n >= len(rest) || rest[n] != '_' {
		return false
	}
	rest = rest[n+1:]
	n = digitsAt(rest)
	if n == 0 {
		return false
	}
	_, ok := relationSuffix(rest[n:])
	return ok
}
