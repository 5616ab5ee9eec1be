package lifecycle

import (
	"iter"
	"time"

	"github.com/walgate/walgate/index/pgname"
)

// Copy is one backend's copy of an object and the backend's class name for
// it ("" = the backend's default class).
type Copy struct {
	Backend string
	Class   string
}

// WALFile is one archived WAL file as the planner sees it.
type WALFile struct {
	Name     string // PostgreSQL's file name
	Key      string // object key (the same on every backend)
	Kind     pgname.FileKind
	Timeline uint32
	// Segment is the segment number (for history files 0).
	Segment  uint64
	Size     int64 // stored bytes
	StoredAt time.Time
	Copies   []Copy
}

// ParseWALFile fills Kind, Timeline and Segment from a WAL file name for a
// cluster's segment size (0: 16 MiB).
func ParseWALFile(name string, segSize uint64) (WALFile, error) {
	f, err := pgname.ParseWALFile(name)
	if err != nil {
		return WALFile{}, err
	}
	return WALFile{Name: name, Kind: f.Kind, Timeline: uint32(f.Timeline),
		Segment: pgname.SegmentSize(segSize).Number(f)}, nil
}

// SegmentName names segment seg of timeline tli.
func SegmentName(tli uint32, seg, segSize uint64) string {
	return pgname.SegmentSize(segSize).Name(pgname.Timeline(tli), seg)
}

// Object is one stored object of a backup.
type Object struct {
	Key    string
	Kind   ObjectKind // BackupData or Metadata
	Size   int64
	Copies []Copy
	// Sentinel marks the backup's sentinel: deleted first, so that no
	// store ever shows a backup with missing parts.
	Sentinel bool
}

// Backup is one committed base backup.
type Backup struct {
	Name      string
	Full      bool
	DeltaFrom string // a delta's parent
	Timeline  uint32
	// StartSegment and FinishSegment hold the backup's start and finish
	// LSNs (use SegmentOf).
	StartSegment, FinishSegment uint64
	FinishTime                  time.Time
	// Permanent backups are never deleted; they pin the WAL from their
	// start to their finish.
	Permanent bool
	Objects   []Object
}

// SegmentOf is the number of the segment holding lsn.
func SegmentOf(lsn, segSize uint64) uint64 {
	return pgname.SegmentSize(segSize).Of(pgname.LSN(lsn))
}

// Timeline is what a timeline history file says of a timeline: it branched
// from Parent at SwitchLSN. Timeline 1 has no history. Parent 0: the
// history is not known; then every lower timeline counts as a possible
// ancestor (keeping more WAL), and no backup anchors the PITR window
// through it (keeping more backups).
type Timeline struct {
	ID        uint32
	Parent    uint32
	SwitchLSN uint64
}

// Cluster is one cluster's catalog snapshot. Only WAL is streamed: the
// planner reads it once, in any order, and keeps none of it.
type Cluster struct {
	Name        string
	SegmentSize uint64 // bytes; 0 = 16 MiB
	// Timelines lists every timeline above 1 that has WAL or backups. The
	// planner must know the newest timeline before the WAL streams: a WAL
	// file of an unlisted timeline fails the cluster's plan.
	Timelines []Timeline
	Backups   []Backup
	WAL       iter.Seq[WALFile]
	// PendingReplication counts copies the replicator has yet to make;
	// any refuses deletion.
	PendingReplication int
	// Disagreement, when set, says how the catalog and a backend disagree
	// (a rebuild check found objects missing or extra); it refuses
	// deletion.
	Disagreement string
}

// WALSlice streams a slice of WAL files.
func WALSlice(files []WALFile) iter.Seq[WALFile] {
	return func(yield func(WALFile) bool) {
		for _, f := range files {
			if !yield(f) {
				return
			}
		}
	}
}
