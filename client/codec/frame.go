package codec

import (
	"encoding/binary"
	"fmt"
	"io"
)

// singleFrameReader passes exactly one zstd or LZ4 frame from src to a
// decoder and then reports io.EOF, following the frame's block headers as
// they go by. Both decoders would otherwise take whatever follows a frame as
// the start of the next one, so that bytes appended to an object would look
// like a truncated second frame. With it, the reader knows for certain
// whether the source ended inside the frame (truncated) or left bytes after
// it (corrupt). WAL-G writes one frame per object, and so does walgate.
type singleFrameReader struct {
	src    io.Reader
	parser frameParser
	skip   int64 // payload bytes to pass before the next header
	need   int   // size of the next header; 0 with skip 0: the frame is complete
	header [16]byte
	have   int // bytes of header collected
	// ended: the source ended inside the frame.
	ended bool
	err   error // a malformed header
}

// frameParser reads the headers of one frame: given a header of the size it
// asked for, it returns how many payload bytes follow and the size of the
// next header (0 once the frame is complete).
type frameParser interface {
	next(header []byte) (skip int64, need int, err error)
}

func newSingleFrameReader(src io.Reader, parser frameParser, firstHeader int) *singleFrameReader {
	return &singleFrameReader{src: src, parser: parser, need: firstHeader}
}

// complete reports whether the whole frame went through.
func (f *singleFrameReader) complete() bool { return f.skip == 0 && f.need == 0 && f.err == nil }

func (f *singleFrameReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.complete() {
		return 0, io.EOF
	}
	limit := int64(f.need - f.have)
	if f.skip > 0 {
		limit = f.skip
	}
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	n, err := f.src.Read(p)
	if f.skip > 0 {
		f.skip -= int64(n)
	} else {
		f.have += copy(f.header[f.have:f.need], p[:n])
		if f.have == f.need {
			f.have = 0
			f.skip, f.need, f.err = f.parser.next(f.header[:f.need])
			if f.err != nil {
				return n, f.err
			}
		}
	}
	if err == io.EOF && !f.complete() {
		f.ended = true
	}
	return n, err
}

// zstdFrame follows a zstd frame (RFC 8878, section 3.1.1): magic, frame
// header, blocks with 3-byte headers, optional checksum.
type zstdFrame struct {
	state    int
	checksum bool
}

const (
	zstdMagic       = 0xFD2FB528
	zstdMagicHeader = 4
)

func (z *zstdFrame) next(h []byte) (int64, int, error) {
	switch z.state {
	case 0: // magic
		magic := binary.LittleEndian.Uint32(h)
		if magic&0xFFFFFFF0 == 0x184D2A50 {
			return 0, 0, fmt.Errorf("%w: zstd: skippable frame where the data frame should be", ErrCorrupt)
		}
		if magic != zstdMagic {
			return 0, 0, fmt.Errorf("%w: zstd: bad magic number %08x", ErrCorrupt, magic)
		}
		z.state = 1
		return 0, 1, nil
	case 1: // frame header descriptor
		fhd := h[0]
		if fhd&0x08 != 0 {
			return 0, 0, fmt.Errorf("%w: zstd: reserved bit set in frame header", ErrCorrupt)
		}
		singleSegment := fhd&0x20 != 0
		z.checksum = fhd&0x04 != 0
		rest := []int64{0, 1, 2, 4}[fhd&0x03] // dictionary ID
		if !singleSegment {
			rest++ // window descriptor
		}
		switch fhd >> 6 { // frame content size
		case 0:
			if singleSegment {
				rest++
			}
		case 1:
			rest += 2
		case 2:
			rest += 4
		case 3:
			rest += 8
		}
		z.state = 2
		return rest, 3, nil
	default: // block header
		bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		last := bh&1 != 0
		size := int64(bh >> 3)
		switch (bh >> 1) & 3 {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return 0, 0, fmt.Errorf("%w: zstd: reserved block type", ErrCorrupt)
		}
		if !last {
			return size, 3, nil
		}
		if z.checksum {
			size += 4
		}
		return size, 0, nil
	}
}

// lz4Frame follows an LZ4 frame (lz4_Frame_format.md): magic, FLG and BD,
// optional content size and dictionary ID, header checksum, blocks with
// 4-byte sizes, an end mark, optional content checksum.
type lz4Frame struct {
	state           int
	blockChecksum   bool
	contentChecksum bool
}

const (
	lz4Magic       = 0x184D2204
	lz4MagicHeader = 4
)

func (l *lz4Frame) next(h []byte) (int64, int, error) {
	switch l.state {
	case 0: // magic
		magic := binary.LittleEndian.Uint32(h)
		if magic != lz4Magic {
			return 0, 0, fmt.Errorf("%w: lz4: bad magic number %08x (not an LZ4 frame)", ErrCorrupt, magic)
		}
		l.state = 1
		return 0, 2, nil
	case 1: // FLG, BD
		flg := h[0]
		if flg>>6 != 1 {
			return 0, 0, fmt.Errorf("%w: lz4: frame version %d", ErrCorrupt, flg>>6)
		}
		l.blockChecksum = flg&0x10 != 0
		l.contentChecksum = flg&0x04 != 0
		rest := int64(1) // header checksum
		if flg&0x08 != 0 {
			rest += 8 // content size
		}
		if flg&0x01 != 0 {
			rest += 4 // dictionary ID
		}
		l.state = 2
		return rest, 4, nil
	default: // block size, or the end mark
		v := binary.LittleEndian.Uint32(h)
		if v == 0 {
			if l.contentChecksum {
				return 4, 0, nil
			}
			return 0, 0, nil
		}
		size := int64(v & 0x7FFFFFFF)
		if l.blockChecksum {
			size += 4
		}
		return size, 4, nil
	}
}
