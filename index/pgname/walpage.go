package pgname

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The first page of every WAL segment file starts with PostgreSQL's
// XLogLongPageHeaderData (src/include/access/xlog_internal.h), written in
// the server's byte order:
//
//	offset  size  field
//	 0      2     xlp_magic        XLOG_PAGE_MAGIC of the major
//	 2      2     xlp_info         flags; XLP_LONG_HEADER (0x0002) on a segment's first page
//	 4      4     xlp_tli          timeline of the page's first record
//	 8      8     xlp_pageaddr     the LSN of the page: the segment's first byte
//	16      4     xlp_rem_len      length of a record continued from the previous page
//	20      4     (padding)
//	24      8     xlp_sysid        the system identifier from pg_control
//	32      4     xlp_seg_size     wal_segment_size
//	36      4     xlp_xlog_blcksz  XLOG_BLCKSZ
const LongPageHeaderSize = 40

// pageMagics maps XLOG_PAGE_MAGIC to the major that writes it (read from
// the first segment each major's initdb writes).
var pageMagics = map[uint16]int{0xD106: 13, 0xD10D: 14, 0xD110: 15, 0xD113: 16, 0xD116: 17, 0xD118: 18}

const (
	xlpLongHeader = 0x0002
	xlpAllFlags   = 0x000F
)

// SegmentHeader is what a segment's long page header says.
type SegmentHeader struct {
	Major            int // the major whose XLOG_PAGE_MAGIC the page carries
	SystemIdentifier uint64
	Timeline         Timeline
	PageAddr         LSN
	SegmentSize      uint32
	BlockSize        uint32
}

// ErrNotSegmentHeader is wrapped by every error ParseSegmentHeader returns.
var ErrNotSegmentHeader = errors.New("not the long page header of a WAL segment")

// ParseSegmentHeader reads the long page header at the start of the
// segment (or partial segment) f from head, its first bytes (at least
// LongPageHeaderSize). It accepts only a header that is what PostgreSQL
// 13 to 18 writes at the start of that very segment: a known page magic,
// the long-header flag and no unknown flag, a possible segment and block
// size, the segment's own start address (from its name and the header's
// segment size) and a non-zero system identifier. Both byte orders are
// tried. It never reads past LongPageHeaderSize.
func ParseSegmentHeader(head []byte, f WALFile) (SegmentHeader, error) {
	if f.Kind != Segment && f.Kind != Partial {
		return SegmentHeader{}, fmt.Errorf("%w: %s is not a segment", ErrNotSegmentHeader, f.Name)
	}
	if len(head) < LongPageHeaderSize {
		return SegmentHeader{}, fmt.Errorf("%w: %d bytes, the header has %d", ErrNotSegmentHeader, len(head), LongPageHeaderSize)
	}
	h, err := parseLongHeader(head, binary.LittleEndian, f)
	if err != nil {
		if hb, errb := parseLongHeader(head, binary.BigEndian, f); errb == nil {
			return hb, nil
		}
	}
	return h, err
}

func parseLongHeader(b []byte, bo binary.ByteOrder, f WALFile) (SegmentHeader, error) {
	bad := func(format string, args ...any) (SegmentHeader, error) {
		return SegmentHeader{}, fmt.Errorf("%w: %s", ErrNotSegmentHeader, fmt.Sprintf(format, args...))
	}
	magic := bo.Uint16(b[0:])
	major, ok := pageMagics[magic]
	if !ok {
		return bad("page magic %#04x is not one of PostgreSQL 13 to 18", magic)
	}
	h := SegmentHeader{Major: major, Timeline: Timeline(bo.Uint32(b[4:])), PageAddr: LSN(bo.Uint64(b[8:])),
		SystemIdentifier: bo.Uint64(b[24:]), SegmentSize: bo.Uint32(b[32:]), BlockSize: bo.Uint32(b[36:])}
	info := bo.Uint16(b[2:])
	switch {
	case info&xlpLongHeader == 0 || info&^xlpAllFlags != 0:
		return bad("page flags %#04x are not those of a segment's first page", info)
	case h.Timeline == 0:
		return bad("timeline 0")
	case !IsSegmentSize(int64(h.SegmentSize)):
		return bad("segment size %d is not a power of two from 1 MiB to 1 GiB", h.SegmentSize)
	case h.BlockSize < 1<<10 || h.BlockSize > 1<<16 || h.BlockSize&(h.BlockSize-1) != 0:
		return bad("WAL block size %d is not a power of two from 1 KiB to 64 KiB", h.BlockSize)
	case uint64(h.PageAddr) != SegmentSize(h.SegmentSize).Number(f)*uint64(h.SegmentSize):
		return bad("page address %s is not where segment %s starts", h.PageAddr, f.Name)
	case h.SystemIdentifier == 0:
		return bad("system identifier 0")
	}
	return h, nil
}
