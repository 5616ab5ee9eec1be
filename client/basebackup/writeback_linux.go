package basebackup

import (
	"os"

	"golang.org/x/sys/unix"
)

// startFileWriteback queues n bytes of f from off for writing to disk and
// returns without waiting (sync_file_range with SYNC_FILE_RANGE_WRITE).
func startFileWriteback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
