package basebackup

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestScanSymlinkedDirectories: pg_wal and pg_stat_tmp as symbolic links
// to directories elsewhere (a WAL disk, a tmpfs) are directory entries
// with their targets' modes and times, their contents left out; a link
// whose target is gone is a directory of mode 0700, as PostgreSQL makes
// it. Every tablespace is walked, and the tablespaces are sorted.
func TestScanSymlinkedDirectories(t *testing.T) {
	pgdata := filepath.Join(t.TempDir(), "pgdata")
	elsewhere := t.TempDir()
	mkfile(t, pgdata, "global/pg_control", "control")
	mkfile(t, pgdata, "PG_VERSION", "15\n")
	mkdir(t, pgdata, "pg_tblspc")
	mkdir(t, pgdata, "base")
	mtime := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, d := range []string{"wal", "stat"} {
		mkfile(t, elsewhere, d+"/000000010000000000000001", "contents")
		if err := os.Chmod(filepath.Join(elsewhere, d), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(elsewhere, d), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"pg_wal":                filepath.Join(elsewhere, "wal"),
		"pg_stat_tmp":           filepath.Join(elsewhere, "stat"),
		"pg_replslot":           filepath.Join(elsewhere, "gone"),
		"pg_tblspc/16600":       filepath.Join(elsewhere, "ts2"),
		"pg_tblspc/16500":       filepath.Join(elsewhere, "ts1"),
		"pg_tblspc/9000":        filepath.Join(elsewhere, "ts3"),
		"base/not-a-tablespace": filepath.Join(elsewhere, "ts1"),
		"otherlink":             "/etc",
	}
	for _, ts := range []string{"ts1", "ts2", "ts3"} {
		mkfile(t, elsewhere, ts+"/PG_15_202209061/5/16501", "data of "+ts)
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(pgdata, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	scan, err := ScanDataDir(pgdata)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]File{}
	for _, f := range scan.Files {
		got[f.Member] = f
	}
	for _, m := range []string{"/pg_wal", "/pg_wal/archive_status", "/pg_stat_tmp"} {
		f, ok := got[m]
		if !ok || !f.IsDir || f.Mode != os.ModeDir|0o750 || !f.ModTime.Equal(mtime) {
			t.Errorf("%s: %+v, want a directory of mode 0750 from %v", m, f, mtime)
		}
	}
	if f, ok := got["/pg_replslot"]; !ok || !f.IsDir || f.Mode != os.ModeDir|0o700 {
		t.Errorf("/pg_replslot (dangling link): %+v, want a directory of mode 0700", f)
	}
	for _, m := range []string{"/pg_wal/000000010000000000000001", "/pg_stat_tmp/000000010000000000000001", "/pg_wal/summaries"} {
		if _, ok := got[m]; ok {
			t.Errorf("%s backed up", m)
		}
	}
	var oids []string
	for _, ts := range scan.Tablespaces {
		oids = append(oids, ts.OID)
	}
	if !reflect.DeepEqual(oids, []string{"16500", "16600", "9000"}) {
		t.Errorf("tablespaces %v", oids)
	}
	for _, oid := range oids {
		m := "/pg_tblspc/" + oid + "/PG_15_202209061/5/16501"
		if f, ok := got[m]; !ok || f.Size != int64(len("data of ts1")) {
			t.Errorf("%s: %+v", m, f)
		}
	}
	if !reflect.DeepEqual(scan.Ignored, []string{"/base/not-a-tablespace", "/otherlink"}) {
		t.Errorf("Ignored %v", scan.Ignored)
	}
}
