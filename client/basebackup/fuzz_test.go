package basebackup

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseBackupName(f *testing.F) {
	for _, s := range []string{
		"base_000000010000000A00000030", "base_000000010000000A00000050_D_000000010000000A00000030",
		"base_../../etc", "base_000000010000000A00000030_00000028", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		start, from, err := ParseBackupName(name)
		if err != nil {
			return
		}
		if !isWALFile(start) || from != "" && !isWALFile(from) {
			t.Fatalf("accepted %q as %q %q", name, start, from)
		}
		rebuilt := BackupName(start)
		if from != "" {
			rebuilt += "_D_" + from
		}
		if rebuilt != name || strings.ContainsAny(name, "/.\\") {
			t.Fatalf("accepted %q, rebuilt %q", name, rebuilt)
		}
	})
}

func FuzzExtractTar(f *testing.F) {
	seed := func(members ...rawMember) []byte { return rawTar(f, members...) }
	f.Add(seed(rawMember{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "/base", Mode: 0o700}},
		rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/base/1"}, body: "x"}))
	f.Add(seed(rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../x"}, body: "x"}))
	f.Add(seed(rawMember{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "/"}}))
	f.Add(seed(rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/pg_tblspc/1/x"}, body: "y"}))
	f.Add(seed(rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.Repeat("a/", 80) + "b"}, body: "z"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "pgdata")
		ts := filepath.Join(parent, "ts")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		opts := ExtractOptions{TablespaceDir: func(oid string) (string, error) {
			return filepath.Join(ts, oid), nil
		}}
		members, _ := ExtractTar(bytes.NewReader(data), dir, opts)
		for _, m := range members {
			if _, err := CleanMemberName(m); err != nil {
				t.Fatalf("wrote unsafe member %q", m)
			}
		}
		for _, p := range listTree(t, parent) {
			if p != "." && p != "pgdata" && p != "ts" && !strings.HasPrefix(p, "pgdata/") && !strings.HasPrefix(p, "ts/") {
				t.Fatalf("wrote %s outside the restore directories", p)
			}
			info, err := os.Lstat(filepath.Join(parent, p))
			if err != nil {
				t.Fatal(err)
			}
			if !info.Mode().IsRegular() && !info.IsDir() {
				t.Fatalf("created %s with mode %v", p, info.Mode())
			}
		}
	})
}

// FuzzReadIncrementHeader: any input yields a consistent header or
// ErrBadIncrement, and never allocates beyond what the member size allows.
func FuzzReadIncrementHeader(f *testing.F) {
	var ok bytes.Buffer
	writeIncrementHeader(&ok, 4*BlockSize, []uint32{0, 2})
	f.Add(ok.Bytes(), IncrementSize(2))
	f.Add([]byte("wi1\x55"), int64(16))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, size int64) {
		inc, err := ReadIncrementHeader(bytes.NewReader(data), size)
		if err != nil {
			if !errors.Is(err, ErrBadIncrement) {
				t.Fatalf("error not ErrBadIncrement: %v", err)
			}
			return
		}
		if IncrementSize(len(inc.Blocks)) != size || inc.FileSize%BlockSize != 0 {
			t.Fatalf("inconsistent header accepted: %+v for member size %d", inc, size)
		}
		for i, b := range inc.Blocks {
			if int64(b) >= inc.FileSize/BlockSize || (i > 0 && b <= inc.Blocks[i-1]) {
				t.Fatalf("bad block list accepted: %v", inc.Blocks)
			}
		}
	})
}
