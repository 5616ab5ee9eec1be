package lifecycle

import (
	"fmt"
	"strings"
	"time"

	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/backends/gcs"
	"github.com/walgate/walgate/backends/s3"
	"github.com/walgate/walgate/index/pgname"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func testBackends() []Backend {
	s3 := NewBackend("s3", s3.Classes())
	az := NewBackend("az", azure.Classes())
	gcs := NewBackend("gcs", gcs.Classes())
	fs := NewBackend("local", fs.Classes())
	return []Backend{s3, az, gcs, fs}
}

func copies(backends ...string) []Copy {
	out := make([]Copy, len(backends))
	for i, b := range backends {
		out[i] = Copy{Backend: b}
	}
	return out
}

// segments archives segments from..to of a timeline, one every `every`
// starting at at.
func segments(cluster string, tl uint32, from, to uint64, at time.Time, every time.Duration, backends ...string) []WALFile {
	var out []WALFile
	for n := from; n <= to; n++ {
		name := SegmentName(tl, n, 0)
		out = append(out, WALFile{Name: name, Key: cluster + "/wal_005/" + name + ".zst", Kind: pgname.Segment,
			Timeline: tl, Segment: n, Size: 4 << 20, StoredAt: at.Add(time.Duration(n-from) * every), Copies: copies(backends...)})
	}
	return out
}

func historyFile(cluster string, tl uint32, at time.Time, backends ...string) WALFile {
	name := fmt.Sprintf("%08X.history", tl)
	return WALFile{Name: name, Key: cluster + "/wal_005/" + name, Kind: pgname.History, Timeline: tl, Size: 50, StoredAt: at, Copies: copies(backends...)}
}

func partialFile(cluster string, tl uint32, seg uint64, at time.Time, backends ...string) WALFile {
	name := SegmentName(tl, seg, 0) + ".partial"
	return WALFile{Name: name, Key: cluster + "/wal_005/" + name + ".zst", Kind: pgname.Partial, Timeline: tl, Segment: seg,
		Size: 1 << 20, StoredAt: at, Copies: copies(backends...)}
}

func backup(cluster, name string, full bool, from string, tl uint32, start, finish uint64, at time.Time, backends ...string) Backup {
	p := cluster + "/basebackups_005/" + name
	return Backup{Name: name, Full: full, DeltaFrom: from, Timeline: tl, StartSegment: start, FinishSegment: finish, FinishTime: at,
		Objects: []Object{
			{Key: p + "/tar_partitions/part_001.tar.zst", Kind: BackupData, Size: 1 << 30, Copies: copies(backends...)},
			{Key: p + "/metadata.json", Kind: Metadata, Size: 1 << 10, Copies: copies(backends...)},
			{Key: p + "_backup_stop_sentinel.json", Kind: Metadata, Size: 1 << 10, Copies: copies(backends...), Sentinel: true},
		}}
}

func baseName(tl uint32, seg uint64) string { return "base_" + SegmentName(tl, seg, 0) }

// actionsFor filters actions by kind and a substring of the object.
func actionsFor(as []Action, kind ActionKind, object string) []Action {
	var out []Action
	for _, a := range as {
		if a.Kind == kind && strings.Contains(a.Object, object) {
			out = append(out, a)
		}
	}
	return out
}

// actionsOn filters actions by kind and exact object.
func actionsOn(as []Action, kind ActionKind, object string) []Action {
	var out []Action
	for _, a := range as {
		if a.Kind == kind && a.Object == object {
			out = append(out, a)
		}
	}
	return out
}
