package pgname

import "fmt"

// SegmentSize is a cluster's wal_segment_size in bytes. The zero value
// stands for PostgreSQL's default, 16 MiB, so that a cluster whose size is
// not known yet numbers its segments as most clusters do.
type SegmentSize uint64

// DefaultSegmentSize is PostgreSQL's default wal_segment_size.
const DefaultSegmentSize SegmentSize = 16 << 20

// IsSegmentSize says whether n can be a WAL segment's size: PostgreSQL's
// wal_segment_size is a power of two from 1 MiB to 1 GiB.
func IsSegmentSize(n int64) bool {
	return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0
}

// Bytes is the size in bytes (the default for the zero value).
func (s SegmentSize) Bytes() uint64 {
	if s == 0 {
		return uint64(DefaultSegmentSize)
	}
	return uint64(s)
}

// PerLog is how many segments one "log" (the middle 8 hex digits of a
// segment name, 4 GiB of WAL) holds.
func (s SegmentSize) PerLog() uint64 { return 0x100000000 / s.Bytes() }

// Number is the segment number of a segment file name (and of the
// segment a partial or backup history file belongs to): the position of
// the segment in the WAL of its timeline.
func (s SegmentSize) Number(f WALFile) uint64 {
	return uint64(f.Log)*s.PerLog() + uint64(f.Seg)
}

// Of is the number of the segment that holds lsn.
func (s SegmentSize) Of(lsn LSN) uint64 { return uint64(lsn) / s.Bytes() }

// Name is the file name of segment seg of timeline tli.
func (s SegmentSize) Name(tli Timeline, seg uint64) string {
	per := s.PerLog()
	return fmt.Sprintf("%08X%08X%08X", uint32(tli), uint32(seg/per), uint32(seg%per))
}
