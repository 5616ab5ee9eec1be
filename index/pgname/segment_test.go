package pgname

import "testing"

func TestSegmentSize(t *testing.T) {
	for _, c := range []struct {
		size SegmentSize
		name string
		num  uint64
	}{
		{0, "000000010000000A00000042", 0xA*256 + 0x42},
		{16 << 20, "000000010000000A00000042", 0xA*256 + 0x42},
		{64 << 20, "000000010000000A0000003F", 0xA*64 + 0x3F},
		{1 << 30, "00000001000000FF00000003", 0xFF*4 + 3},
	} {
		f, err := ParseWALFile(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.size.Number(f); got != c.num {
			t.Errorf("%d: Number(%s) = %d, want %d", c.size, c.name, got, c.num)
		}
		if got := c.size.Name(f.Timeline, c.num); got != c.name {
			t.Errorf("%d: Name(%d) = %s, want %s", c.size, c.num, got, c.name)
		}
		lsn := LSN(c.num * c.size.Bytes())
		if got := c.size.Of(lsn + 0x28); got != c.num {
			t.Errorf("%d: Of(%s) = %d, want %d", c.size, lsn+0x28, got, c.num)
		}
		if got := SegmentName(f.Timeline, lsn, c.size.Bytes()); got != c.name {
			t.Errorf("%d: SegmentName = %s, want %s", c.size, got, c.name)
		}
	}
	for n, ok := range map[int64]bool{1 << 20: true, 16 << 20: true, 1 << 30: true, 1 << 19: false, 2 << 30: false, 3 << 20: false, 0: false} {
		if IsSegmentSize(n) != ok {
			t.Errorf("IsSegmentSize(%d) = %v", n, !ok)
		}
	}
}
