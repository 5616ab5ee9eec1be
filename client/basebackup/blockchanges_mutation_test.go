package basebackup

import (
	"slices"
	"testing"
)

// TestBlockChangesAtAndPastALimit: a relation truncated and written again
// at the truncation point lists that block once, and a limit in a later
// segment file counts blocks from that file's start.
func TestBlockChangesAtAndPastALimit(t *testing.T) {
	c := NewBlockChanges()
	c.Add(16400, 1663, 5, 0, 4, true) // truncated to 4 blocks
	c.Add(16400, 1663, 5, 0, 4, false)
	c.Add(16400, 1663, 5, 0, 2, false)
	c.Add(16500, 1663, 5, 0, BlocksPerSegment+2, true) // truncated inside the second segment
	c.Add(16500, 1663, 5, 0, 1, false)
	for _, tc := range []struct {
		member  string
		nblocks int64
		want    []uint32
	}{
		{"/base/5/16400", 6, []uint32{2, 4, 5}},
		{"/base/5/16500", 8, []uint32{1}},
		{"/base/5/16500.1", 5, []uint32{2, 3, 4}},
	} {
		got, whole := c.FileBlocks(tc.member, tc.nblocks)
		if whole || !slices.Equal(got, tc.want) {
			t.Errorf("%s (%d blocks): %v whole=%v, want %v", tc.member, tc.nblocks, got, whole, tc.want)
		}
	}
}
