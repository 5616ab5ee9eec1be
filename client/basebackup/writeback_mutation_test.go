package basebackup

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWritebackWriterChunks: the disk write is started once per
// writebackChunk bytes written, for exactly the bytes written since the
// last start: after 3 chunks and a tail, the 3 chunks are started and the
// tail is not until the file is complete.
func TestWritebackWriterChunks(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "16384"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newWritebackWriter(f, 0)
	piece := bytes.Repeat([]byte{7}, 64<<10)
	var starts []int64
	for range 3 * writebackChunk / len(piece) {
		if _, err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
		if len(starts) == 0 || starts[len(starts)-1] != w.started {
			starts = append(starts, w.started)
		}
	}
	if _, err := w.Write(piece[:12345]); err != nil {
		t.Fatal(err)
	}
	if w.failed {
		t.Fatal("sync_file_range refused on this filesystem")
	}
	want := []int64{0, writebackChunk, 2 * writebackChunk, 3 * writebackChunk}
	if len(starts) != len(want) || w.started != 3*writebackChunk {
		t.Fatalf("writeback started at %v, then %d; want at %v", starts, w.started, want)
	}
	for i := range want {
		if starts[i] != want[i] {
			t.Fatalf("writeback started at %v, want %v", starts, want)
		}
	}
	w.startWriteback()
	if w.started != 3*writebackChunk+12345 {
		t.Fatalf("writeback started up to %d at the end, want %d", w.started, 3*writebackChunk+12345)
	}
}
