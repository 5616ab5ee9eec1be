package client

import (
	"os"
	"strconv"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/pgname"
)

// segmentSystem reads the PostgreSQL system identifier from the long page
// header at the start of the WAL segment open in f, without moving f's
// offset; 0 (unknown) when f is not a segment or partial segment, or its
// first page is not a header walgate reads (pgname.ParseSegmentHeader).
// An unknown identifier is archived as before: the gateway compares only
// identifiers it is told.
func segmentSystem(f *os.File, wf pgname.WALFile) uint64 {
	if wf.Kind != pgname.Segment && wf.Kind != pgname.Partial {
		return 0
	}
	head := make([]byte, pgname.LongPageHeaderSize)
	if _, err := f.ReadAt(head, 0); err != nil {
		return 0
	}
	h, err := pgname.ParseSegmentHeader(head, wf)
	if err != nil {
		return 0
	}
	return h.SystemIdentifier
}

// systemHeaders is the request header that tells the gateway which
// PostgreSQL system an object belongs to (none when id is 0, unknown).
func systemHeaders(id uint64) map[string]string {
	if id == 0 {
		return nil
	}
	return map[string]string{protocol.HeaderSystemIdentifier: strconv.FormatUint(id, 10)}
}
