package basebackup

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

type rawMember struct {
	hdr  tar.Header
	body string
}

func rawTar(t testing.TB, members ...rawMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := m.hdr
		if h.Typeflag == tar.TypeReg || h.Typeflag == 0 {
			h.Size = int64(len(m.body))
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o600
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if m.body != "" {
			if _, err := tw.Write([]byte(m.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTree returns every path under root, relative, sorted.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestExtractTarRefusals(t *testing.T) {
	reg := func(name string) rawMember {
		return rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name}, body: "evil"}
	}
	cases := map[string][]rawMember{
		"dotdot":          {reg("../x")},
		"slash dotdot":    {reg("/../x")},
		"nested dotdot":   {reg("a/../../x")},
		"inner dotdot":    {reg("/base/../x")},
		"double slash":    {reg("//etc/passwd")},
		"dot":             {reg("./x")},
		"empty component": {reg("a//x")},
		"empty name":      {reg("")},
		"symlink":         {{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "/pg_tblspc/16500", Linkname: "/tmp"}}},
		"relative symlink": {
			{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: ".."}},
			reg("link/x"),
		},
		"hardlink":      {reg("/a"), {hdr: tar.Header{Typeflag: tar.TypeLink, Name: "/b", Linkname: "/etc/passwd"}}},
		"char dev":      {{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "/dev", Devmajor: 1, Devminor: 3}}},
		"block dev":     {{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "/blk", Devmajor: 8}}},
		"fifo":          {{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "/fifo"}}},
		"global header": {{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}}},
		"dir dotdot":    {{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "../d/", Mode: 0o700}}},
	}
	for name, members := range cases {
		t.Run(name, func(t *testing.T) {
			checkRefused(t, rawTar(t, members...))
		})
	}
	t.Run("pax sparse", func(t *testing.T) { checkRefused(t, paxSparseTar(t)) })
}

// paxSparseTar builds a PAX GNU sparse 1.0 member whose map expands 512
// stored bytes to a terabyte. archive/tar will not write one, so the
// extended header's type flag is patched in by hand.
func paxSparseTar(t *testing.T) []byte {
	rec := func(k, v string) string {
		n := len(k) + len(v) + 3
		for len(fmt.Sprintf("%d %s=%s\n", n, k, v)) != n {
			n++
		}
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	pax := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") +
		rec("GNU.sparse.name", "/s") + rec("GNU.sparse.realsize", "1000000000000")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/s", Size: int64(len(pax)), Mode: 0o600, Format: tar.FormatUSTAR})
	tw.Write([]byte(pax))
	// Sparse map block: one entry, data at offset 0, length 1.
	body := []byte("1\n0\n1\n")
	body = append(body, make([]byte, 512-len(body))...)
	body = append(body, 'x')
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "GNUSparseFile.0/s", Size: int64(len(body)), Mode: 0o600, Format: tar.FormatUSTAR})
	tw.Write(body)
	tw.Close()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func checkRefused(t *testing.T, tarball []byte) {
	t.Helper()
	{
		{
			parent := t.TempDir()
			dir := filepath.Join(parent, "restore", "pgdata")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			_, err := ExtractTar(bytes.NewReader(tarball), dir, ExtractOptions{})
			if err == nil {
				t.Fatal("extraction succeeded")
			}
			if !errors.Is(err, ErrUnsafeMember) {
				t.Errorf("error %v does not wrap ErrUnsafeMember", err)
			}
			got := listTree(t, parent)
			allowed := map[string]bool{".": true, "restore": true, "restore/pgdata": true, "restore/pgdata/a": true}
			for _, p := range got {
				if !allowed[p] {
					t.Errorf("written: %s", p)
				}
			}
		}
	}
}

// TestExtractTarExistingSymlink: a link already inside the restore
// directory cannot carry a write outside it.
func TestExtractTarExistingSymlink(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "pgdata")
	outside := filepath.Join(parent, "outside")
	mkdir(t, parent, "pgdata")
	mkdir(t, parent, "outside")
	if err := os.Symlink(outside, filepath.Join(dir, "base")); err != nil {
		t.Fatal(err)
	}
	tarball := rawTar(t, rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/base/1/1234"}, body: "x"})
	if _, err := ExtractTar(bytes.NewReader(tarball), dir, ExtractOptions{}); err == nil {
		t.Fatal("extraction through an escaping symlink succeeded")
	}
	if got := listTree(t, outside); len(got) != 1 {
		t.Fatalf("written outside: %v", got)
	}
}

func TestExtractTarTruncatedStream(t *testing.T) {
	tarball := rawTar(t, rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/f"}, body: strings.Repeat("a", 5000)})
	if _, err := ExtractTar(bytes.NewReader(tarball[:2048]), t.TempDir(), ExtractOptions{}); err == nil {
		t.Fatal("truncated tar extracted without error")
	}
}

func TestCleanMemberName(t *testing.T) {
	for name, want := range map[string]string{
		"/": ".", "/base/5/1234": "base/5/1234", "backup_label": "backup_label",
		"/pg_wal/": "pg_wal", "/pg_tblspc/16500/PG_15_1/5/1": "pg_tblspc/16500/PG_15_1/5/1",
	} {
		got, err := CleanMemberName(name)
		if err != nil || got != want {
			t.Errorf("CleanMemberName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

// TestScanWriteExtractTablespace runs the whole host-side cycle on the
// fake data directory: scan, partition, write, extract with the
// tablespace redirected to a new location.
func TestScanWriteExtractTablespace(t *testing.T) {
	pgdata, _ := fakePGDATA(t)
	os.Remove(filepath.Join(pgdata, "base", "5", "link"))
	scan, err := ScanDataDir(pgdata)
	if err != nil {
		t.Fatal(err)
	}
	restore := t.TempDir()
	newLoc := filepath.Join(t.TempDir(), "ts-new")
	var asked []string
	opts := ExtractOptions{TablespaceDir: func(oid string) (string, error) {
		asked = append(asked, oid)
		if oid != "16500" {
			return "", fmt.Errorf("unknown tablespace %s", oid)
		}
		return newLoc, nil
	}}
	parts := Partition(scan.Files, 40)
	if len(parts) < 2 {
		t.Fatalf("expected several parts, got %d", len(parts))
	}
	for _, p := range parts {
		var buf bytes.Buffer
		if _, err := WriteTar(&buf, p); err != nil {
			t.Fatal(err)
		}
		if _, err := ExtractTar(&buf, restore, opts); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := WriteTar(&buf, []File{scan.PgControl}); err != nil {
		t.Fatal(err)
	}
	if _, err := ExtractTar(&buf, restore, opts); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(scan.Files, scan.PgControl) {
		rel := strings.TrimPrefix(f.Member, "/")
		p := filepath.Join(restore, rel)
		if rest, ok := strings.CutPrefix(rel, "pg_tblspc/16500"); ok {
			p = filepath.Join(newLoc, rest)
		}
		info, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", f.Member, err)
			continue
		}
		if info.IsDir() != f.IsDir || !f.IsDir && info.Size() != f.Size {
			t.Errorf("%s: restored dir=%v size=%d", f.Member, info.IsDir(), info.Size())
		}
		// A directory's time is reset by files later parts write into
		// it (documented); files keep theirs.
		if !f.IsDir && !info.ModTime().Equal(f.ModTime.Round(time.Second)) {
			t.Errorf("%s: mtime %v want %v", f.Member, info.ModTime(), f.ModTime.Round(time.Second))
		}
	}
	if _, err := os.Stat(filepath.Join(restore, "pg_tblspc", "16500")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tablespace written under pg_tblspc/16500 too: %v", err)
	}
	for _, oid := range asked {
		if oid != "16500" {
			t.Errorf("TablespaceDir asked for %q", oid)
		}
	}
	if len(asked) == 0 {
		t.Error("TablespaceDir never called")
	}
}
