package basebackup

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// hookReader reads data and calls hook once, just before the first read
// at or past offset at.
type hookReader struct {
	data []byte
	off  int
	at   int
	hook func()
}

func (r *hookReader) Read(p []byte) (int, error) {
	if r.hook != nil && r.off >= r.at {
		r.hook()
		r.hook = nil
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

// TestExtractTarReportsAFailedDirectoryMode: the modes and times of the
// directory members are set once the whole stream is written; when that
// fails (here the directory is gone by then), ExtractTar returns the
// error instead of reporting a complete restore.
func TestExtractTarReportsAFailedDirectoryMode(t *testing.T) {
	tarball := rawTar(t,
		rawMember{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "/base/", Mode: 0o700}},
		rawMember{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/base/f"}, body: "x"},
	)
	dst := t.TempDir()
	r := &hookReader{data: tarball, at: len(tarball) - 1024, hook: func() {
		if err := os.RemoveAll(filepath.Join(dst, "base")); err != nil {
			t.Error(err)
		}
	}}
	written, err := ExtractTar(r, dst, ExtractOptions{})
	if err == nil {
		t.Fatalf("extraction whose directory vanished before its mode was set succeeded, wrote %v", written)
	}
	if r.hook != nil {
		t.Fatal("the end of the stream was never read")
	}
	// The same stream, nothing removed: no error.
	if _, err := ExtractTar(bytes.NewReader(tarball), t.TempDir(), ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
}
