package basebackup

import (
	"encoding/binary"
	"path"
	"strconv"
	"strings"
)

// PostgreSQL's page geometry (default build: BLCKSZ 8192, RELSEG_SIZE
// 131072 blocks = 1 GiB per segment file).
const (
	BlockSize        = 8192
	BlocksPerSegment = 1 << 30 / BlockSize
	pageHeaderSize   = 24 // SizeOfPageHeaderData
)

// PageHeader is the part of PostgreSQL's PageHeaderData a delta scan reads
// (src/include/storage/bufpage.h).
type PageHeader struct {
	LSN      uint64 // pd_lsn: the last WAL record that changed the page
	Checksum uint16 // pd_checksum
	Flags    uint16 // pd_flags
	Lower    uint16 // pd_lower: start of free space
	Upper    uint16 // pd_upper: end of free space
	Special  uint16 // pd_special: start of the special space
	Version  uint16 // pd_pagesize_version: page size | layout version
}

// ParsePageHeader reads the header of an 8 KiB page (little-endian, as on
// every platform walgate runs on).
func ParsePageHeader(page []byte) PageHeader {
	le := binary.LittleEndian
	return PageHeader{
		LSN:      uint64(le.Uint32(page[0:4]))<<32 | uint64(le.Uint32(page[4:8])),
		Checksum: le.Uint16(page[8:10]),
		Flags:    le.Uint16(page[10:12]),
		Lower:    le.Uint16(page[12:14]),
		Upper:    le.Uint16(page[14:16]),
		Special:  le.Uint16(page[16:18]),
		Version:  le.Uint16(page[18:20]),
	}
}

// IsNew reports PostgreSQL's PageIsNew: pd_upper is 0, the page was
// extended but never initialised (all zeros after a relation extension).
func (h PageHeader) IsNew() bool { return h.Upper == 0 }

// Valid is PostgreSQL's PageHeaderIsValid plus the checks a delta scan
// needs to trust pd_lsn: known flag bits only, pd_lower <= pd_upper <=
// pd_special <= BLCKSZ with room for the header, the page size and a
// layout version PostgreSQL writes, and an LSN. A new page is not valid
// (check IsNew first).
func (h PageHeader) Valid() bool {
	const pdValidFlagBits = 0x0007
	return h.Flags&^pdValidFlagBits == 0 &&
		h.Lower >= pageHeaderSize && h.Lower <= h.Upper && h.Upper <= h.Special && int(h.Special) <= BlockSize &&
		int(h.Version&0xFF00) == BlockSize && h.Version&0x00FF <= 5 &&
		h.LSN != 0
}

// IsPagedFile reports whether a tar member names a relation main-fork data
// file, the only files a delta backup stores as page increments:
// base/<db>/<relfilenode>[.<segment>], global/<relfilenode>[.<segment>] and
// pg_tblspc/<oid>/<version dir>/<db>/<relfilenode>[.<segment>]. Free space
// maps, visibility maps, init forks (their names carry _fsm, _vm, _init),
// temporary relations, SLRU directories and configuration files are copied
// whole.
func IsPagedFile(member string) bool {
	rel := strings.TrimPrefix(member, "/")
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if !isRelFileName(base) {
		return false
	}
	parts := strings.Split(dir, "/")
	switch {
	case len(parts) == 1 && parts[0] == "global":
		return true
	case len(parts) == 2 && parts[0] == "base":
		return isDigits(parts[1])
	case len(parts) == 4 && parts[0] == tablespaceDir:
		return isDigits(parts[1]) && strings.HasPrefix(parts[2], "PG_") && isDigits(parts[3])
	}
	return false
}

// isRelFileName matches <relfilenode>[.<segment>].
func isRelFileName(s string) bool {
	node, seg, hasSeg := strings.Cut(s, ".")
	return isDigits(node) && (!hasSeg || isDigits(seg))
}

// isDigits matches an OID or relfilenode: 1 to 10 decimal digits.
func isDigits(s string) bool { return len(s) <= 10 && allDigits(s) }

// SegmentNumber is the segment number of a relation file member
// (".1" -> 1; no suffix -> 0): block i of the file is block
// SegmentNumber*BlocksPerSegment + i of the relation, which is what page
// checksums are computed over.
func SegmentNumber(member string) uint32 {
	_, seg, ok := strings.Cut(path.Base(member), ".")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(seg, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// checksumBaseOffsets are PostgreSQL's (src/include/storage/checksum_impl.h).
var checksumBaseOffsets = [32]uint32{
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A,
	0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA,
	0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE,
	0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
	0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
}

// PageChecksum is PostgreSQL's pg_checksum_page: the FNV-1a-derived
// checksum of an 8 KiB page with pd_checksum taken as zero, mixed with the
// block number within the relation.
//
// PostgreSQL keeps 32 sums, sum j taking the page's 32-bit words j, j+32,
// j+64, ... The sums are independent, so they are computed here eight at
// a time, in registers, each group over the whole page; the word holding
// pd_checksum (word 2 of the first row) is masked before the loop.
func PageChecksum(page []byte, blkno uint32) uint16 {
	p := (*[BlockSize]byte)(page[:BlockSize])
	var result uint32
	for g := 0; g < 32; g += 8 {
		o := &checksumBaseOffsets
		s0, s1, s2, s3, s4, s5, s6, s7 := o[g], o[g+1], o[g+2], o[g+3], o[g+4], o[g+5], o[g+6], o[g+7]
		for off := 4 * g; off < BlockSize; off += 4 * 32 {
			w := (*[32]byte)(p[off : off+32])
			v0, v1, v2, v3 := checksumWord(w, 0), checksumWord(w, 4), checksumWord(w, 8), checksumWord(w, 12)
			v4, v5, v6, v7 := checksumWord(w, 16), checksumWord(w, 20), checksumWord(w, 24), checksumWord(w, 28)
			if off == 0 {
				v2 &^= 0xFFFF // pd_checksum (bytes 8-9) counts as zero
			}
			s0, s1, s2, s3 = checksumComp(s0, v0), checksumComp(s1, v1), checksumComp(s2, v2), checksumComp(s3, v3)
			s4, s5, s6, s7 = checksumComp(s4, v4), checksumComp(s5, v5), checksumComp(s6, v6), checksumComp(s7, v7)
		}
		for range 2 {
			s0, s1, s2, s3 = checksumComp(s0, 0), checksumComp(s1, 0), checksumComp(s2, 0), checksumComp(s3, 0)
			s4, s5, s6, s7 = checksumComp(s4, 0), checksumComp(s5, 0), checksumComp(s6, 0), checksumComp(s7, 0)
		}
		result ^= s0 ^ s1 ^ s2 ^ s3 ^ s4 ^ s5 ^ s6 ^ s7
	}
	result ^= blkno
	return uint16(result%65535 + 1)
}

// checksumWord is the little-endian 32-bit word at w[i:].
func checksumWord(w *[32]byte, i int) uint32 {
	return uint32(w[i]) | uint32(w[i+1])<<8 | uint32(w[i+2])<<16 | uint32(w[i+3])<<24
}

// checksumComp is PostgreSQL's CHECKSUM_COMP: one FNV-1a-like step of a
// sum with a word.
func checksumComp(sum, v uint32) uint32 {
	const fnvPrime = 16777619
	tmp := sum ^ v
	return tmp*fnvPrime ^ tmp>>17
}

// PageVerdict is what a delta scan makes of one page.
type PageVerdict int

const (
	// PageUnchanged: a valid page last changed before the parent backup
	// started; the parent holds it.
	PageUnchanged PageVerdict = iota
	// PageChanged: changed at or after the parent's start, or new: it goes
	// into the increment.
	PageChanged
	// PageInvalid: the header is neither new nor valid; the file is copied
	// whole.
	PageInvalid
)

// ClassifyPage decides whether a page belongs in an increment over a
// parent that started at deltaLSN.
func ClassifyPage(page []byte, deltaLSN uint64) PageVerdict {
	h := ParsePageHeader(page)
	switch {
	case h.IsNew():
		return PageChanged
	case !h.Valid():
		return PageInvalid
	case h.LSN >= deltaLSN:
		return PageChanged
	}
	return PageUnchanged
}

// PageChecksumOK reports whether a page passes PostgreSQL's checksum test
// (new pages have none and always pass).
func PageChecksumOK(page []byte, blkno uint32) bool {
	h := ParsePageHeader(page)
	if h.IsNew() {
		return true
	}
	return PageChecksum(page, blkno) == h.Checksum
}
