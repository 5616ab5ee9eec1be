package basebackup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The increment format (WAL-G's, postgres/pagefile.go): a relation file of
// a delta backup stored as the pages changed since the parent, under the
// file's own tar member name, marked IsIncremented in files_metadata.json.
// All integers little-endian:
//
//	4 bytes   magic 'w' 'i' '1' 0x55
//	8 bytes   file size at backup time (restore truncates or extends to it)
//	4 bytes   N, the number of pages
//	N×4 bytes block numbers within the file, ascending
//	N×8192    the page images, in the same order
var incrementMagic = [4]byte{'w', 'i', '1', 0x55}

// incrementHeaderSize is the fixed part before the block numbers.
const incrementHeaderSize = 16

// IncrementSize is the size of an increment holding n pages.
func IncrementSize(n int) int64 {
	return incrementHeaderSize + 4*int64(n) + int64(n)*BlockSize
}

// ErrBadIncrement is wrapped by every error about a malformed increment.
var ErrBadIncrement = errors.New("malformed page increment")

// writeIncrementHeader writes the magic, the file size and the block list.
func writeIncrementHeader(w io.Writer, fileSize int64, blocks []uint32) error {
	hdr := make([]byte, incrementHeaderSize, incrementHeaderSize+4*len(blocks))
	copy(hdr, incrementMagic[:])
	binary.LittleEndian.PutUint64(hdr[4:12], uint64(fileSize))
	binary.LittleEndian.PutUint32(hdr[12:16], uint32(len(blocks)))
	for _, b := range blocks {
		hdr = binary.LittleEndian.AppendUint32(hdr, b)
	}
	_, err := w.Write(hdr)
	return err
}

// Increment is a parsed increment header; its pages follow in the stream.
type Increment struct {
	FileSize int64
	Blocks   []uint32
}

// maxIncrementFileSize bounds the file size an increment may claim: a
// relation segment file is 1 GiB; allow any size up to 1 TiB (builds with
// larger segments) but refuse absurd values before allocating anything.
const maxIncrementFileSize = 1 << 40

// ReadIncrementHeader reads an increment's header from r, the member's
// body of memberSize bytes, and checks that it is consistent: the magic,
// a file size that is a whole number of pages, block numbers ascending and
// inside the file, and a member size that is exactly the header plus the
// pages. The pages are then read from r in Blocks order.
func ReadIncrementHeader(r io.Reader, memberSize int64) (Increment, error) {
	var inc Increment
	var hdr [incrementHeaderSize]byte
	if memberSize < incrementHeaderSize {
		return inc, fmt.Errorf("%w: %d bytes is shorter than the header", ErrBadIncrement, memberSize)
	}
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return inc, fmt.Errorf("%w: reading the header: %v", ErrBadIncrement, err)
	}
	if [4]byte(hdr[0:4]) != incrementMagic {
		return inc, fmt.Errorf("%w: bad magic %x (want %x)", ErrBadIncrement, hdr[0:4], incrementMagic[:])
	}
	size := binary.LittleEndian.Uint64(hdr[4:12])
	n := binary.LittleEndian.Uint32(hdr[12:16])
	if size > maxIncrementFileSize || size%BlockSize != 0 {
		return inc, fmt.Errorf("%w: file size %d is not a whole number of %d-byte pages up to 1 TiB", ErrBadIncrement, size, BlockSize)
	}
	if uint64(n) > size/BlockSize {
		return inc, fmt.Errorf("%w: %d pages in a file of %d pages", ErrBadIncrement, n, size/BlockSize)
	}
	if want := IncrementSize(int(n)); want != memberSize {
		return inc, fmt.Errorf("%w: %d pages need %d bytes, the member has %d", ErrBadIncrement, n, want, memberSize)
	}
	inc.FileSize = int64(size)
	inc.Blocks = make([]uint32, n)
	buf := make([]byte, 4*min(n, 4096))
	for i := uint32(0); i < n; {
		chunk := min(n-i, uint32(len(buf)/4))
		if _, err := io.ReadFull(r, buf[:4*chunk]); err != nil {
			return inc, fmt.Errorf("%w: reading block numbers: %v", ErrBadIncrement, err)
		}
		for j := uint32(0); j < chunk; j++ {
			b := binary.LittleEndian.Uint32(buf[4*j:])
			if uint64(b) >= size/BlockSize || (i+j > 0 && b <= inc.Blocks[i+j-1]) {
				return inc, fmt.Errorf("%w: block number %d out of order or outside the file", ErrBadIncrement, b)
			}
			inc.Blocks[i+j] = b
		}
		i += chunk
	}
	return inc, nil
}
