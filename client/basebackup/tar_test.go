package basebackup

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sizes(parts [][]File) [][]int64 {
	var out [][]int64
	for _, p := range parts {
		var s []int64
		for _, f := range p {
			s = append(s, f.Size)
		}
		out = append(out, s)
	}
	return out
}

func TestPartition(t *testing.T) {
	mk := func(ss ...int64) []File {
		var fs []File
		for _, s := range ss {
			fs = append(fs, File{Size: s})
		}
		return fs
	}
	for _, c := range []struct {
		files     []File
		threshold int64
		want      [][]int64
	}{
		{nil, 10, nil},
		{mk(5, 5), 10, [][]int64{{5, 5}}},       // exactly the threshold stays open
		{mk(5, 5, 1), 10, [][]int64{{5, 5, 1}}}, // closed once exceeded
		{mk(5, 5, 1, 0, 3), 10, [][]int64{{5, 5, 1}, {0, 3}}},
		{mk(100, 1, 2), 10, [][]int64{{100}, {1, 2}}}, // one big file makes a part alone
		{mk(0, 0, 11, 0), 10, [][]int64{{0, 0, 11}, {0}}},
		{mk(3, 3, 3, 3, 3, 3, 3, 3), 8, [][]int64{{3, 3, 3}, {3, 3, 3}, {3, 3}}},
	} {
		if got := sizes(Partition(c.files, c.threshold)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Partition(%v, %d) = %v, want %v", sizes([][]File{c.files}), c.threshold, got, c.want)
		}
	}
	// Nothing lost, order kept.
	var files []File
	for i := range 1000 {
		files = append(files, File{Member: string(rune('a' + i%26)), Size: int64(i % 97)})
	}
	var back []File
	for _, p := range Partition(files, 500) {
		var s int64
		for i, f := range p {
			s += f.Size
			if i < len(p)-1 && s > 500 {
				t.Fatalf("part exceeded the threshold before its last file")
			}
		}
		back = append(back, p...)
	}
	if !reflect.DeepEqual(back, files) {
		t.Fatal("Partition lost or reordered files")
	}
}

// treeFiles returns the files of a scan-like list built from a directory
// tree, for round trips.
func sourceTree(t *testing.T) (string, []File) {
	t.Helper()
	src := t.TempDir()
	long := strings.Repeat("long-directory-name/", 8) + "file-with-a-name-over-one-hundred-bytes"
	contents := map[string][]byte{
		"PG_VERSION":  []byte("15\n"),
		"base/5/1234": bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4096),
		"base/5/big":  bytes.Repeat([]byte("x"), 3*copyBufferSize+17),
		"empty":       nil,
		long:          []byte("deep"),
	}
	modes := map[string]os.FileMode{"PG_VERSION": 0o640, "base/5/1234": 0o600, "base/5/big": 0o644, "empty": 0o400, long: 0o600}
	mtime := time.Date(2024, 2, 29, 12, 34, 56, 0, time.UTC)
	for rel, c := range contents {
		mkfile(t, src, rel, string(c))
		p := filepath.Join(src, rel)
		if err := os.Chmod(p, modes[rel]); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	var files []File
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		member := "/" + filepath.ToSlash(rel)
		if rel == "." {
			member = "/"
		}
		f := File{Path: p, Member: member, Mode: info.Mode() & (os.ModeDir | os.ModePerm), ModTime: info.ModTime(), IsDir: info.IsDir()}
		if !info.IsDir() {
			f.Size = info.Size()
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(long) <= 100 {
		t.Fatal("long name not long")
	}
	return src, files
}

func TestWriteTarExtractTarRoundTrip(t *testing.T) {
	src, files := sourceTree(t)
	var buf bytes.Buffer
	res, err := WriteTar(&buf, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 0 || len(res.Members) != len(files) {
		t.Fatalf("result %+v", res)
	}
	var payload int64
	for _, f := range files {
		payload += f.Size
	}
	if res.Bytes != payload {
		t.Errorf("Bytes %d, want %d", res.Bytes, payload)
	}
	dst := t.TempDir()
	written, err := ExtractTar(bytes.NewReader(buf.Bytes()), dst, ExtractOptions{Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(written, res.Members) {
		t.Errorf("extracted %v, wrote %v", written, res.Members)
	}
	for _, f := range files {
		rel := strings.TrimPrefix(f.Member, "/")
		if rel == "" {
			rel = "."
		}
		p := filepath.Join(dst, rel)
		info, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", f.Member, err)
			continue
		}
		if info.Mode()&(os.ModeDir|os.ModePerm) != f.Mode {
			t.Errorf("%s: mode %v, want %v", f.Member, info.Mode(), f.Mode)
		}
		if !info.ModTime().Equal(f.ModTime.Round(time.Second)) {
			t.Errorf("%s: mtime %v, want %v", f.Member, info.ModTime(), f.ModTime.Round(time.Second))
		}
		if f.IsDir {
			continue
		}
		want, _ := os.ReadFile(filepath.Join(src, rel))
		got, _ := os.ReadFile(p)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (%d vs %d bytes)", f.Member, len(got), len(want))
		}
	}
}

func TestWriteTarSizeFrozenAtScan(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "shrinks", "0123456789")
	mkfile(t, dir, "grows", "abc")
	mkfile(t, dir, "vanishes", "gone")
	mkfile(t, dir, "stays", "same")
	var files []File
	for _, n := range []string{"grows", "shrinks", "stays", "vanishes"} {
		info, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Path: filepath.Join(dir, n), Member: "/" + n, Size: info.Size(), Mode: 0o600, ModTime: info.ModTime()})
	}
	// Between scan and write:
	mkfile(t, dir, "shrinks", "0123")
	mkfile(t, dir, "grows", "abcdefghij")
	if err := os.Remove(filepath.Join(dir, "vanishes")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := WriteTar(&buf, files)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Skipped, []string{"/vanishes"}) || !reflect.DeepEqual(res.Members, []string{"/grows", "/shrinks", "/stays"}) {
		t.Fatalf("result %+v", res)
	}
	if res.Bytes != 3+10+4 {
		t.Errorf("Bytes %d", res.Bytes)
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	want := map[string]string{"/grows": "abc", "/shrinks": "0123\x00\x00\x00\x00\x00\x00", "/stays": "same"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}
}

func TestWriteTarFailsOnOtherErrors(t *testing.T) {
	dir := t.TempDir()
	// A directory where a file is expected: open works, read fails.
	mkdir(t, dir, "adir")
	files := []File{{Path: filepath.Join(dir, "adir"), Member: "/adir", Size: 10, Mode: 0o600}}
	if _, err := WriteTar(io.Discard, files); err == nil {
		t.Fatal("WriteTar of an unreadable file succeeded")
	}
	if _, err := WriteTar(io.Discard, []File{{Path: filepath.Join(dir, "x"), Member: "/x", Size: -1}}); err == nil {
		t.Fatal("WriteTar with a negative size succeeded")
	}
}

// stopAfter accepts n bytes, then fails.
type stopAfter struct {
	buf bytes.Buffer
	n   int
}

var errStop = errors.New("stop")

func (s *stopAfter) Write(p []byte) (int, error) {
	if s.buf.Len()+len(p) > s.n {
		p = p[:s.n-s.buf.Len()]
		s.buf.Write(p)
		return len(p), errStop
	}
	return s.buf.Write(p)
}

// TestWriteTarHugeFile checks that a file beyond USTAR's 8 GiB size limit
// gets a valid header, without writing 9 GiB: a sparse file, and a writer
// that stops once the header and a little data are through.
func TestWriteTarHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge")
	mkfile(t, filepath.Dir(p), "huge", "")
	const size = 9 << 30
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	w := &stopAfter{n: 64 << 10}
	_, err := WriteTar(w, []File{{Path: p, Member: "/base/5/huge", Size: size, Mode: 0o600, ModTime: time.Unix(1700000000, 0)}})
	if !errors.Is(err, errStop) {
		t.Fatalf("WriteTar: %v, want the writer's error", err)
	}
	h, err := tar.NewReader(bytes.NewReader(w.buf.Bytes())).Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Size != size || h.Name != "/base/5/huge" || h.Typeflag != tar.TypeReg {
		t.Fatalf("read back %q type %c size %d", h.Name, h.Typeflag, h.Size)
	}
}

func TestWriteLabelTar(t *testing.T) {
	var buf bytes.Buffer
	label := "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\n"
	if err := WriteLabelTar(&buf, label, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		if h.Mode != 0o600 || h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 || h.Typeflag != tar.TypeReg {
			t.Errorf("%s: header %+v", h.Name, h)
		}
		if h.Name == "backup_label" && string(b) != label || h.Name == "tablespace_map" && len(b) != 0 {
			t.Errorf("%s: content %q", h.Name, b)
		}
	}
	if !reflect.DeepEqual(names, []string{"backup_label", "tablespace_map"}) {
		t.Errorf("members %v", names)
	}
}
