package basebackup

import (
	"slices"
	"testing"
)

func TestBlockChanges(t *testing.T) {
	c := NewBlockChanges()
	c.Add(16384, 1663, 5, 0, 3, false)
	c.Add(16384, 1663, 5, 0, 1, false)
	c.Add(16384, 1663, 5, 1, 0, false) // fsm: ignored
	c.Add(16384, 1663, 5, 0, BlocksPerSegment+2, false)
	c.Add(16400, 1663, 5, 0, 4, true) // truncated to 4 blocks, then 5 and 6 written
	c.Add(16400, 1663, 5, 0, 9, false)
	c.Add(2000, 1664, 0, 0, 0, false)
	c.Add(0, 1663, 16387, 0, 0, true) // CREATE DATABASE ... STRATEGY FILE_COPY
	c.Add(3000, 16500, 16390, 0, 7, false)
	for _, tc := range []struct {
		member  string
		nblocks int64
		want    []uint32
		whole   bool
	}{
		{"/base/5/16384", 10, []uint32{1, 3}, false},
		{"/base/5/16384", 2, []uint32{1}, false}, // block 3 is past the file's end
		{"/base/5/16384.1", 10, []uint32{2}, false},
		{"/base/5/16400", 7, []uint32{4, 5, 6}, false},
		{"/base/5/16401", 7, nil, false}, // unchanged
		{"/global/2000", 1, []uint32{0}, false},
		{"/base/16387/1259", 3, nil, true},
		{"/pg_tblspc/16500/PG_17_202406281/16390/3000", 8, []uint32{7}, false},
		{"/pg_tblspc/16500/PG_17_202406281/16390/3000", 7, nil, false},
		{"/base/x/1", 1, nil, true},
	} {
		got, whole := c.FileBlocks(tc.member, tc.nblocks)
		if whole != tc.whole || !slices.Equal(got, tc.want) {
			t.Errorf("%s (%d blocks): %v whole=%v, want %v whole=%v", tc.member, tc.nblocks, got, whole, tc.want, tc.whole)
		}
	}
}
