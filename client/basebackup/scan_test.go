package basebackup

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// mkfile creates root/rel with content, creating parents.
func mkfile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(rel)), 0o700); err != nil {
		t.Fatal(err)
	}
}

// fakePGDATA builds a data directory with one example of every kind of
// entry PostgreSQL's rules treat specially, and a tablespace linked from
// pg_tblspc/16500. It returns pgdata and the tablespace location.
func fakePGDATA(t *testing.T) (string, string) {
	t.Helper()
	pgdata := filepath.Join(t.TempDir(), "pgdata")
	tsLoc := filepath.Join(t.TempDir(), "ts1")
	for _, f := range []string{
		"PG_VERSION", "postgresql.conf", "postgresql.auto.conf",
		"global/pg_control", "global/1262", "global/pg_filenode.map",
		"global/pg_internal.init", "global/pg_internal.init.1234",
		"base/5/1234", "base/5/1234_fsm", "base/5/1234.1", "base/5/PG_VERSION",
		"base/5/16400_init", "base/5/16400", "base/5/16400.1", "base/5/16400_fsm", "base/5/16400_vm",
		"base/5/t3_16384", "base/5/t3_16384_fsm", "base/5/t3_16384.2",
		"base/5/pg_internal.init",
		"base/pgsql_tmp/pgsql_tmp123.0", "base/5/pgsql_tmp42",
		"pg_wal/000000010000000000000001", "pg_wal/archive_status/000000010000000000000001.done",
		"pg_wal/summaries/0000000100000000010000280000000001000110.summary",
		"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "backup_manifest",
		"postgresql.auto.conf.tmp", "current_logfiles.tmp", "current_logfiles",
		"pg_replslot/x/state", "pg_stat_tmp/x", "pg_dynshmem/mmap.1", "pg_notify/0000",
		"pg_serial/0000", "pg_snapshots/0000-1", "pg_subtrans/0000",
		"pg_stat/pgstat.stat", "pg_xact/0000", "log/postgresql.log",
		// Not a database directory: relation-like names are kept.
		"global/t3_99", "pg_logical/16400_init", "pg_logical/16400",
	} {
		mkfile(t, pgdata, f, "data of "+f)
	}
	mkdir(t, pgdata, "pg_tblspc")
	mkdir(t, pgdata, "pgsql_tmp") // skipped entirely, even as a directory
	// The tablespace: its version directory, a database in it with an
	// unlogged and a temporary relation and a temp dir.
	for _, f := range []string{
		"PG_15_202209061/5/16501", "PG_15_202209061/5/16502_init", "PG_15_202209061/5/16502",
		"PG_15_202209061/5/t4_16503", "PG_15_202209061/pgsql_tmp/pgsql_tmp9.1",
	} {
		mkfile(t, tsLoc, f, "ts data of "+f)
	}
	if err := os.Symlink(tsLoc, filepath.Join(pgdata, "pg_tblspc", "16500")); err != nil {
		t.Fatal(err)
	}
	// A symbolic link elsewhere is not followed nor backed up.
	if err := os.Symlink("/etc", filepath.Join(pgdata, "base", "5", "link")); err != nil {
		t.Fatal(err)
	}
	return pgdata, tsLoc
}

func TestScanDataDir(t *testing.T) {
	pgdata, tsLoc := fakePGDATA(t)
	scan, err := ScanDataDir(pgdata)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ // member -> is directory
		"/": true, "/PG_VERSION": false, "/postgresql.conf": false, "/postgresql.auto.conf": false,
		"/current_logfiles": false,
		"/global":           true, "/global/1262": false, "/global/pg_filenode.map": false, "/global/t3_99": false,
		"/base": true, "/base/5": true, "/base/5/1234": false, "/base/5/1234_fsm": false,
		"/base/5/1234.1": false, "/base/5/PG_VERSION": false, "/base/5/16400_init": false,
		"/pg_wal": true, "/pg_wal/archive_status": true, "/pg_wal/summaries": true,
		"/pg_replslot": true, "/pg_stat_tmp": true, "/pg_dynshmem": true, "/pg_notify": true,
		"/pg_serial": true, "/pg_snapshots": true, "/pg_subtrans": true,
		"/pg_stat": true, "/pg_stat/pgstat.stat": false, "/pg_xact": true, "/pg_xact/0000": false,
		"/log": true, "/log/postgresql.log": false,
		"/pg_logical": true, "/pg_logical/16400_init": false, "/pg_logical/16400": false,
		"/pg_tblspc": true, "/pg_tblspc/16500": true,
		"/pg_tblspc/16500/PG_15_202209061":              true,
		"/pg_tblspc/16500/PG_15_202209061/5":            true,
		"/pg_tblspc/16500/PG_15_202209061/5/16501":      false,
		"/pg_tblspc/16500/PG_15_202209061/5/16502_init": false,
	}
	got := map[string]bool{}
	var members []string
	for _, f := range scan.Files {
		if _, dup := got[f.Member]; dup {
			t.Errorf("member %s listed twice", f.Member)
		}
		got[f.Member] = f.IsDir
		members = append(members, f.Member)
		if f.IsDir != f.Mode.IsDir() {
			t.Errorf("%s: IsDir %v but mode %v", f.Member, f.IsDir, f.Mode)
		}
		if !f.IsDir {
			if f.Size != int64(len("data of "))+int64(len(strings.TrimPrefix(f.Member, "/"))) && !strings.HasPrefix(f.Member, "/pg_tblspc/") {
				t.Errorf("%s: size %d", f.Member, f.Size)
			}
		}
	}
	if !sort.StringsAreSorted(members) {
		t.Errorf("Files not sorted by member: %v", members)
	}
	for m, dir := range want {
		g, ok := got[m]
		if !ok {
			t.Errorf("missing member %s", m)
		} else if g != dir {
			t.Errorf("member %s: directory %v, want %v", m, g, dir)
		}
	}
	for m := range got {
		if _, ok := want[m]; !ok {
			t.Errorf("unexpected member %s", m)
		}
	}
	if scan.PgControl.Member != "/global/pg_control" || scan.PgControl.Path != filepath.Join(pgdata, "global", "pg_control") {
		t.Errorf("PgControl = %+v", scan.PgControl)
	}
	if wantTS := []Tablespace{{OID: "16500", Location: tsLoc}}; !reflect.DeepEqual(scan.Tablespaces, wantTS) {
		t.Errorf("Tablespaces = %+v, want %+v", scan.Tablespaces, wantTS)
	}
	if !reflect.DeepEqual(scan.Ignored, []string{"/base/5/link"}) {
		t.Errorf("Ignored = %v", scan.Ignored)
	}
	var total int64
	for _, f := range scan.Files {
		total += f.Size
	}
	total += scan.PgControl.Size
	if scan.DataCatalogSize != total {
		t.Errorf("DataCatalogSize %d, want %d", scan.DataCatalogSize, total)
	}
	// The tablespace files are read from the tablespace location.
	for _, f := range scan.Files {
		if f.Member == "/pg_tblspc/16500/PG_15_202209061/5/16501" && f.Path != filepath.Join(tsLoc, "PG_15_202209061", "5", "16501") {
			t.Errorf("tablespace file path %s", f.Path)
		}
	}
}

func TestScanDataDirNeedsPgControl(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "PG_VERSION", "15")
	if _, err := ScanDataDir(dir); err == nil {
		t.Fatal("scan of a directory without global/pg_control succeeded")
	}
	if _, err := ScanDataDir(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("scan of a missing directory succeeded")
	}
}

func TestRelationNames(t *testing.T) {
	for _, c := range []struct {
		name     string
		rel      string
		fork     string
		relation bool
		temp     bool
	}{
		{"1234", "1234", "main", true, false},
		{"1234_fsm", "1234", "fsm", true, false},
		{"1234_vm.3", "1234", "vm", true, false},
		{"1234_init", "1234", "init", true, false},
		{"1234.12", "1234", "main", true, false},
		{"12345678901", "", "", false, false}, // 11 digits
		{"1234_main", "", "", false, false},
		{"1234_", "", "", false, false},
		{"1234.", "", "", false, false},
		{"1234.x", "", "", false, false},
		{"PG_VERSION", "", "", false, false},
		{"t3_16384", "", "", false, true},
		{"t3_16384_fsm.1", "", "", false, true},
		{"t_16384", "", "", false, false},
		{"t3_", "", "", false, false},
		{"t3_16384_x", "", "", false, false},
		{"t3", "", "", false, false},
	} {
		rel, fork, ok := parseRelationFile(c.name)
		if ok != c.relation || rel != c.rel || fork != c.fork {
			t.Errorf("parseRelationFile(%q) = %q, %q, %v", c.name, rel, fork, ok)
		}
		if got := looksLikeTempRelation(c.name); got != c.temp {
			t.Errorf("looksLikeTempRelation(%q) = %v", c.name, got)
		}
	}
}
