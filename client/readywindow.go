package client

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/walgate/walgate/index/pgname"
)

// maxDoneSkipped bounds how many segments marked done readyFrom steps over
// by name before it lists archive_status instead.
const maxDoneSkipped = 64

// statusListings counts the listings of archive_status readyFrom made
// (for tests).
var statusListings atomic.Int64

// readyFrom returns, oldest first, up to n full segments of from's
// timeline, from from on, that archive_status (statusDir) marks ready:
// the order in which PostgreSQL's archiver hands them over. Timeline
// history files, partial segments and backup history files are left out.
//
// segBytes is the size of from's file. When it is a WAL segment size, the
// names after from are looked up one by one (a stat of NAME.ready, and of
// NAME.done to step over a segment archived already), which costs the same
// whatever the backlog: with 10,000 segments waiting, one listing of
// archive_status takes some 5 ms here, and an archiver draining such a
// backlog would have it listed dozens of times a second. When the names
// run out before n are found (the newest ready segment, a segment neither
// ready nor done, or many done in a row), or the size is not a segment's,
// the directory is listed: the answer is the same either way.
func readyFrom(statusDir string, from pgname.WALFile, segBytes int64, n int) []string {
	if n <= 0 || from.Kind != pgname.Segment {
		return nil
	}
	if names, ok := readyByName(statusDir, from, segBytes, n); ok {
		return names
	}
	return readyListed(statusDir, from, n)
}

// readyByName is readyFrom by name; ok is false when it cannot tell.
func readyByName(statusDir string, from pgname.WALFile, segBytes int64, n int) (names []string, ok bool) {
	if !pgname.IsSegmentSize(segBytes) {
		return nil, false
	}
	size := pgname.SegmentSize(segBytes)
	seg := size.Number(from)
	if size.Name(from.Timeline, seg) != from.Name {
		return nil, false // not a name of a segment this size
	}
	done := 0
	for ; len(names) < n; seg++ {
		name := size.Name(from.Timeline, seg)
		switch {
		case exists(filepath.Join(statusDir, name+".ready")):
			names = append(names, name)
		case done < maxDoneSkipped && exists(filepath.Join(statusDir, name+".done")):
			done++
		default:
			return nil, false
		}
	}
	return names, true
}

// readyListed is readyFrom by a listing of archive_status.
func readyListed(statusDir string, from pgname.WALFile, n int) []string {
	statusListings.Add(1)
	entries, err := os.ReadDir(statusDir)
	if err != nil {
		return nil
	}
	var ready []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".ready"); ok {
			ready = append(ready, name)
		}
	}
	segs := timelineSegments(ready, from.Timeline)
	segs = segs[sort.SearchStrings(segs, from.Name):]
	return segs[:min(len(segs), n)]
}

// timelineSegments returns the full segments of timeline tl among names,
// sorted: the order in which PostgreSQL's archiver hands them over.
func timelineSegments(names []string, tl pgname.Timeline) []string {
	var out []string
	for _, r := range names {
		f, err := pgname.ParseWALFile(r)
		// Segment names of one timeline compare as their numbers do,
		// whatever the segment size: fixed-width upper-case hex.
		if err == nil && f.Kind == pgname.Segment && f.Timeline == tl {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// fileSize is the size of the file at path, 0 when it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
