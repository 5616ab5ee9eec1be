package client

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFilesystems flushes every filesystem holding one of dirs (syncfs(2)):
// one flush for all the files written there. done is told of each.
func syncFilesystems(dirs []string, done func(op, path string)) error {
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		err = unix.Syncfs(int(f.Fd()))
		f.Close()
		if err != nil {
			return fmt.Errorf("syncfs %s: %w", d, err)
		}
		done("syncfs", d)
	}
	return nil
}

// startWriteback asks the kernel to start writing path to disk now,
// without waiting for it. PostgreSQL fsyncs every file restore_command
// restores before it reads it; begun here, a segment's writeback is over
// by the time PostgreSQL asks for it, instead of on the critical path of
// recovery. It promises nothing about durability.
func startWriteback(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
