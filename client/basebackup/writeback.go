package basebackup

import "os"

// writebackChunk is how much of a file is written before the kernel is
// asked to start writing it to disk.
const writebackChunk = 8 << 20

// writebackWriter writes to a file and, every writebackChunk bytes, starts
// the disk write of what it just wrote (sync_file_range with
// SYNC_FILE_RANGE_WRITE: it queues the pages and returns without waiting).
// A restore then writes to disk while it is still decoding, instead of
// leaving gigabytes of dirty pages for one flush at the end; that flush
// (fsync or syncfs) stays the point where the data is durable, and does
// less. Where the call is not supported, it is simply not made again.
type writebackWriter struct {
	f       *os.File
	off     int64 // bytes written through this writer
	started int64 // offset up to which writeback was started
	off0    int64 // the file offset writing began at
	failed  bool
	// start is startFileWriteback, or what a test records calls with.
	start func(f *os.File, off, n int64) error
}

func newWritebackWriter(f *os.File, at int64) *writebackWriter {
	return &writebackWriter{f: f, off0: at, start: startFileWriteback}
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.advance(int64(n))
	return n, err
}

// advance records that the n bytes after those already counted were
// written (by Write, or by the caller at those offsets with WriteAt), and
// starts their disk write once writebackChunk of them are pending.
func (w *writebackWriter) advance(n int64) {
	w.off += n
	if w.off-w.started >= writebackChunk {
		w.startWriteback()
	}
}

// startWriteback starts the disk write of everything not yet started.
func (w *writebackWriter) startWriteback() {
	if w.failed || w.off == w.started {
		return
	}
	if err := w.start(w.f, w.off0+w.started, w.off-w.started); err != nil {
		w.failed = true
		return
	}
	w.started = w.off
}
