package client

import (
	"time"

	"github.com/walgate/walgate/client/basebackup"
)

// skipMargin is how long before the parent's start a file must have been
// last written to be skipped: more than the kernel's file-time granularity
// and the distance between the client's clock reading and its first read.
const skipMargin = 2 * time.Second

// unchanged splits files into those to write and those a delta records as
// skipped: regular files the parent lists whose modification time, to the
// nanosecond, is the one the parent recorded and lies more than skipMargin
// before the parent started. PostgreSQL changes a file's
// modification time with every write, extension and truncation, so such a
// file is the parent's, neither read nor stored; a restore of the chain
// takes it from the parent (WAL-G decides the same way). A file with a
// later modification time is read and written as an increment, which
// also records its size. With no parent, every file is written.
func (b *deltaBase) unchanged(files []basebackup.File) (write, skipped []basebackup.File) {
	if b == nil {
		return files, nil
	}
	// Only a file last written well before the parent started can be
	// skipped: a write while the parent copied it could leave the same
	// modification time (the kernel stamps files with a coarse clock) on
	// other bytes, and the WAL of that write is older than this backup's
	// start, so restoring this backup would not replay it.
	before := b.parent.StartTime.Add(-skipMargin)
	write = files[:0:0]
	for _, f := range files {
		if mt, ok := b.mtimes[f.Member]; ok && !f.IsDir && !mt.IsZero() && mt.Equal(f.ModTime) && !b.parent.StartTime.IsZero() && mt.Before(before) {
			skipped = append(skipped, f)
			continue
		}
		write = append(write, f)
	}
	return write, skipped
}

// parentMTimes is the modification time the parent recorded for each of
// its regular files.
func parentMTimes(fm basebackup.FilesMetadata) map[string]time.Time {
	m := make(map[string]time.Time, len(fm.Files))
	for name, d := range fm.Files {
		m[name] = d.MTime
	}
	return m
}
