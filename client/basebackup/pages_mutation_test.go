package basebackup

import (
	"encoding/binary"
	"testing"
)

// TestPageHeaderLimits: each bound of Valid is inclusive where PostgreSQL's
// PageHeaderIsValid is (pd_lower at the header's end, pd_lower equal to
// pd_upper, pd_upper equal to pd_special, pd_special at BLCKSZ) and a page
// one past it is invalid, so that a delta copies such a file whole instead
// of trusting its pd_lsn.
func TestPageHeaderLimits(t *testing.T) {
	le := binary.LittleEndian
	set := func(off int, v uint16) func([]byte) { return func(p []byte) { le.PutUint16(p[off:off+2], v) } }
	both := func(a, b func([]byte)) func([]byte) { return func(p []byte) { a(p); b(p) } }
	for name, c := range map[string]struct {
		change func([]byte)
		valid  bool
	}{
		"as written":                   {func([]byte) {}, true},
		"pd_lower at the header's end": {set(12, pageHeaderSize), true},
		"pd_lower inside the header":   {set(12, pageHeaderSize-1), false},
		"pd_lower at pd_upper":         {set(12, 8000), true},
		"pd_lower past pd_upper":       {set(12, 8001), false},
		"pd_upper at pd_special":       {both(set(14, 8100), set(16, 8100)), true},
		"pd_upper past pd_special":     {both(set(14, 8101), set(16, 8100)), false},
		"pd_special past BLCKSZ":       {both(set(14, 8000), set(16, BlockSize+1)), false},
		"layout version 6":             {set(18, BlockSize|6), false},
		"page size 4096":               {set(18, 4096|4), false},
		"every known flag":             {set(10, 0x0007), true},
		"an unknown flag":              {set(10, 0x0008), false},
		"no LSN":                       {func(p []byte) { clear(p[0:8]) }, false},
		"an LSN in the low half only":  {func(p []byte) { clear(p[0:4]) }, true},
	} {
		p := page(0x100000028, 1, 0)
		c.change(p)
		h := ParsePageHeader(p)
		if h.Valid() != c.valid {
			t.Errorf("%s: Valid() = %v, header %+v", name, h.Valid(), h)
		}
		want := PageInvalid
		if c.valid {
			want = PageChanged
		}
		if got := ClassifyPage(p, 1); got != want {
			t.Errorf("%s: ClassifyPage = %v, want %v", name, got, want)
		}
	}
}

// TestParsePageHeaderFields: every field is read from its own bytes, the
// LSN as PostgreSQL's two 32-bit halves (xlogid, then xrecoff).
func TestParsePageHeaderFields(t *testing.T) {
	p := make([]byte, BlockSize)
	le := binary.LittleEndian
	le.PutUint32(p[0:4], 0x01020304)
	le.PutUint32(p[4:8], 0x05060708)
	for i, v := range []uint16{0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666} {
		le.PutUint16(p[8+2*i:], v)
	}
	want := PageHeader{LSN: 0x0102030405060708, Checksum: 0x1111, Flags: 0x2222, Lower: 0x3333, Upper: 0x4444, Special: 0x5555, Version: 0x6666}
	if h := ParsePageHeader(p); h != want {
		t.Errorf("ParsePageHeader = %+v, want %+v", h, want)
	}
}

// TestRelationFileNameLimits: a relfilenode or database OID has at most 10
// digits (2^32-1 has 10), and a segment number of any OID size is read.
func TestRelationFileNameLimits(t *testing.T) {
	for m, want := range map[string]bool{
		"/base/4294967295/4294967295":   true,
		"/base/5/4294967295.1023":       true,
		"/base/5/42949672950":           false,
		"/base/42949672950/16384":       false,
		"/base/5/16384.12345678901":     false,
		"/global/4294967295":            true,
		"/pg_tblspc/16385/PG_15_1/5/16": true,
		"/pg_tblspc/16385/15_1/5/16":    false,
		"/base/5/":                      false,
		"/base/5/.1":                    false,
	} {
		if got := IsPagedFile(m); got != want {
			t.Errorf("IsPagedFile(%q) = %v, want %v", m, got, want)
		}
	}
	for m, want := range map[string]uint32{"/base/5/16384.1023": 1023, "/base/5/16384.x": 0, "/base/5/16384.4294967296": 0} {
		if got := SegmentNumber(m); got != want {
			t.Errorf("SegmentNumber(%q) = %d, want %d", m, got, want)
		}
	}
}
