package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// SplitMin is the smallest plaintext EncodeSplit compresses in two halves
// at once; below it one encoder is about as fast.
const SplitMin = 1 << 20

// splitHold bounds the compressed output of the second half that is held in
// memory while the first half is still being compressed. When it is full,
// the second encoder waits for the first to finish.
const splitHold = 4 << 20

// splitReadBuf is the read size of the reader that hashes the plaintext.
const splitReadBuf = 128 << 10

// CanSplit reports whether EncodeSplit takes size bytes with compression c:
// zstd, and at least SplitMin bytes.
func CanSplit(c Compression, size int64) bool { return c == Zstd && size >= SplitMin }

// EncodeSplit writes to w the object of the first size bytes of src,
// compressed with zstd at level l and, with a key, encrypted: the format
// NewSegmentWriter writes, one zstd frame with the checksum of the whole content, sealed as
// one encrypted stream. It compresses the two halves of the input at once,
// on two goroutines, each with an encoder of its own, and joins their
// blocks into the one frame: the first half's header and blocks (its last
// block no longer marked last), the second half's blocks, the checksum of
// the whole. A fresh encoder's first block uses no repeat offset before
// three sequences of its own and no entropy table of an earlier block, so
// the second half's blocks decode the same after the first half's
// (klauspost/compress joins its own parallel jobs this way). A third
// goroutine reads the input in order into plain (which must not fail; nil
// for none) and into the frame checksum. The second half's matches do not
// reach back into the first: the object is a few hundred bytes larger
// than one encoder's.
//
// Memory is two encoders, one read buffer and at most splitHold of the
// second half's output, whatever size is. src shorter than size fails
// with io.ErrUnexpectedEOF; bytes after size are not read. It returns the
// number of plaintext bytes encoded, size on success.
func EncodeSplit(w io.Writer, src io.ReaderAt, size int64, key *Key, l Level, plain io.Writer) (int64, error) {
	if size < SplitMin {
		return 0, fmt.Errorf("codec: EncodeSplit needs at least %d bytes, got %d", SplitMin, size)
	}
	sink := w
	var encryptor io.WriteCloser
	if key != nil {
		var err error
		if encryptor, err = NewEncryptWriter(w, key); err != nil {
			return 0, err
		}
		sink = encryptor
	}
	half := size / 2
	j := newJoin(sink)
	first := &blockFilter{dst: j.writeFirst, first: true}
	second := &blockFilter{dst: j.writeSecond}
	var content *xxhash.Digest
	var wg sync.WaitGroup
	var errs [3]error
	wg.Go(func() {
		content = xxhash.New()
		var out io.Writer = content
		if plain != nil {
			out = io.MultiWriter(plain, content)
		}
		errs[0] = copyAt(out, src, 0, size)
	})
	wg.Go(func() {
		errs[1] = compressAt(first, src, 0, half, l)
		j.finishFirst(errs[1])
	})
	wg.Go(func() {
		errs[2] = compressAt(second, src, half, size-half, l)
	})
	wg.Wait()
	if err := errors.Join(errs[0], errs[1], errs[2]); err != nil {
		return 0, err
	}
	if err := j.flush(); err != nil {
		return 0, err
	}
	if !first.checksum || !second.checksum {
		return 0, errors.New("codec: zstd encoder wrote no frame checksum")
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], uint32(content.Sum64()))
	if _, err := sink.Write(sum[:]); err != nil {
		return 0, err
	}
	if encryptor != nil {
		if err := encryptor.Close(); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// copyAt writes n bytes of src from off to w.
func copyAt(w io.Writer, src io.ReaderAt, off, n int64) error {
	_, err := io.CopyBuffer(w, io.NewSectionReader(src, off, n), make([]byte, splitReadBuf))
	return err
}

// compressAt compresses n bytes of src from off into w, as one zstd frame
// at level l. The encoder reads straight into its block buffer.
func compressAt(w io.Writer, src io.ReaderAt, off, n int64, l Level) error {
	zw, err := zstd.NewWriter(w, zstdWriterOptions(l, zstdSegmentWindow, false)...)
	if err != nil {
		return err
	}
	read, err := zw.ReadFrom(io.NewSectionReader(src, off, n))
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err == nil && read != n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// join puts the output of the two halves into the sink in order: the
// first half's as it comes, the second half's held (up to splitHold)
// until the first half is done, then as it comes.
type join struct {
	mu          sync.Mutex
	cond        *sync.Cond
	sink        io.Writer
	firstDone   bool
	firstFailed bool
	held        [][]byte
	heldBytes   int
}

func newJoin(sink io.Writer) *join {
	j := &join{sink: sink}
	j.cond = sync.NewCond(&j.mu)
	return j
}

var errFirstHalf = errors.New("codec: the first half failed")

// writeFirst is called by the first half's goroutine only, before
// finishFirst.
func (j *join) writeFirst(p []byte) error {
	_, err := j.sink.Write(p)
	return err
}

func (j *join) finishFirst(err error) {
	j.mu.Lock()
	j.firstDone = true
	j.firstFailed = err != nil
	j.cond.Broadcast()
	j.mu.Unlock()
}

// writeSecond is called by the second half's goroutine only.
func (j *join) writeSecond(p []byte) error {
	j.mu.Lock()
	for !j.firstDone && j.heldBytes+len(p) > splitHold {
		j.cond.Wait()
	}
	if j.firstFailed {
		j.mu.Unlock()
		return errFirstHalf
	}
	if !j.firstDone {
		j.held = append(j.held, append([]byte(nil), p...))
		j.heldBytes += len(p)
		j.mu.Unlock()
		return nil
	}
	j.mu.Unlock()
	if err := j.flush(); err != nil {
		return err
	}
	_, err := j.sink.Write(p)
	return err
}

// flush writes what is held to the sink; only once the first half is done.
func (j *join) flush() error {
	for len(j.held) > 0 {
		if _, err := j.sink.Write(j.held[0]); err != nil {
			return err
		}
		j.heldBytes -= len(j.held[0])
		j.held[0] = nil
		j.held = j.held[1:]
	}
	return nil
}

// blockFilter takes one zstd frame as an encoder writes it and passes on
// what belongs in the joined frame: the first half's frame header and
// blocks, its last block marked as not the last, then the second half's
// blocks alone. Neither frame's checksum is passed on. It refuses a frame
// with a content size or a dictionary (the joined frame could not keep
// them) and anything after the frame.
type blockFilter struct {
	dst      func([]byte) error
	first    bool // the first half: keep the header, unmark the last block
	hdr      [18]byte
	have     int   // bytes of hdr collected
	need     int   // bytes of hdr needed
	state    int   // filterMagic, filterHeader, filterBlock, filterContent, filterChecksum, filterDone
	content  int64 // bytes of the current block left to pass
	last     bool  // the current block is the frame's last
	checksum bool
}

const (
	filterMagic = iota
	filterHeader
	filterBlock
	filterContent
	filterChecksum
	filterDone
)

func (f *blockFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if f.state == filterContent {
			k := int(min(int64(len(p)), f.content))
			if err := f.dst(p[:k]); err != nil {
				return 0, err
			}
			p = p[k:]
			f.content -= int64(k)
			if f.content == 0 {
				f.endBlock()
			}
			continue
		}
		if f.state == filterDone {
			return 0, errors.New("codec: zstd encoder wrote more than one frame")
		}
		if f.need == 0 {
			f.need = 5 // magic and frame header descriptor
			if f.state >= filterBlock {
				f.need = 3
			}
			if f.state == filterChecksum {
				f.need = 4
			}
		}
		k := copy(f.hdr[f.have:f.need], p)
		f.have += k
		p = p[k:]
		if f.have < f.need {
			continue
		}
		if err := f.header(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// header acts on a complete piece of header in f.hdr[:f.need].
func (f *blockFilter) header() error {
	h := f.hdr[:f.need]
	switch f.state {
	case filterMagic:
		if binary.LittleEndian.Uint32(h) != zstdMagic {
			return errors.New("codec: zstd encoder wrote no frame magic")
		}
		fhd := h[4]
		if fhd>>6 != 0 || fhd&0x20 != 0 || fhd&0x03 != 0 {
			return fmt.Errorf("codec: zstd frame header %#02x has a content size or dictionary", fhd)
		}
		f.checksum = fhd&0x04 != 0
		f.state, f.need = filterHeader, 6 // the window descriptor follows
		return nil
	case filterHeader:
		if f.first {
			if err := f.dst(h); err != nil {
				return err
			}
		}
		f.reset(filterBlock)
		return nil
	case filterBlock:
		bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		f.last = bh&1 != 0
		f.content = int64(bh >> 3)
		switch (bh >> 1) & 3 {
		case 1: // RLE: one byte
			f.content = 1
		case 3:
			return errors.New("codec: zstd encoder wrote a reserved block type")
		}
		if f.first && f.last {
			if bh>>1 == 0 {
				// An empty raw block that only ends the frame: drop it.
				f.reset(filterContent)
				f.endBlock()
				return nil
			}
			bh &^= 1
			h = []byte{byte(bh), byte(bh >> 8), byte(bh >> 16)}
		}
		if err := f.dst(h); err != nil {
			return err
		}
		f.reset(filterContent)
		if f.content == 0 {
			f.endBlock()
		}
		return nil
	case filterChecksum:
		f.reset(filterDone)
		return nil
	}
	return errors.New("codec: zstd frame filter in an impossible state")
}

func (f *blockFilter) reset(state int) { f.state, f.have, f.need = state, 0, 0 }

// endBlock moves on after a block's content.
func (f *blockFilter) endBlock() {
	switch {
	case !f.last:
		f.reset(filterBlock)
	case f.checksum:
		f.reset(filterChecksum)
	default:
		f.reset(filterDone)
	}
}
