package client

import (
	"slices"
	"testing"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/protocol"
)

// TestDeltaSkipsOnlyFilesLastWrittenBeforeTheParent: a file is skipped
// only when its modification time is the parent's, to the nanosecond, and
// lies well before the parent started; a write during the parent's copy
// can leave the same coarse time on other bytes.
func TestDeltaSkipsOnlyFilesLastWrittenBeforeTheParent(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	old := start.Add(-time.Hour)
	during := start.Add(500 * time.Millisecond) // written while the parent copied it
	edge := start.Add(-time.Second)             // within the margin
	b := &deltaBase{
		parent: protocol.BackupSummary{StartTime: start},
		mtimes: map[string]time.Time{"/old": old, "/changed": old, "/during": during, "/edge": edge, "/dir": old},
	}
	files := []basebackup.File{
		{Member: "/old", ModTime: old},
		{Member: "/changed", ModTime: old.Add(time.Nanosecond)},
		{Member: "/during", ModTime: during},
		{Member: "/edge", ModTime: edge},
		{Member: "/dir", ModTime: old, IsDir: true},
		{Member: "/new", ModTime: old},
	}
	write, skipped := b.unchanged(files)
	names := func(fs []basebackup.File) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Member)
		}
		return out
	}
	if got := names(skipped); !slices.Equal(got, []string{"/old"}) {
		t.Errorf("skipped %v, want only /old", got)
	}
	if got := names(write); !slices.Equal(got, []string{"/changed", "/during", "/edge", "/dir", "/new"}) {
		t.Errorf("written %v", got)
	}

	// A parent without a start time (a backup made elsewhere) skips nothing.
	b.parent.StartTime = time.Time{}
	if _, skipped := b.unchanged(files); len(skipped) != 0 {
		t.Errorf("a parent without a start time skipped %v", names(skipped))
	}
	// No parent: everything is written.
	var none *deltaBase
	if write, skipped := none.unchanged(files); len(write) != len(files) || len(skipped) != 0 {
		t.Errorf("a full backup skipped %d files", len(skipped))
	}
}
