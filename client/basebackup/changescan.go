package basebackup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
)

// scanRangePages is how many pages of a file one scan job reads (32 MiB):
// a large relation file is scanned by several workers at once.
const scanRangePages = 4096

// ChangeScan is what a delta's page scan found: for each file the delta
// may write as an increment, its changed pages (pd_lsn at or after the
// parent's start, or new), or that it is copied whole (a page header is
// invalid). Its FileBlocks serves as TarOptions.ChangedBlocks, so that
// each file's payload (Payload) is known before any tar is written.
//
// Memory: per 32 MiB of scanned file, a sorted list of the changed block
// numbers, or a 512-byte bitmap once that is smaller; so at most 4 bytes
// per changed page and at most 16 MiB per TiB scanned.
type ChangeScan struct {
	files map[string]*scannedFile
}

type scannedFile struct {
	nblocks int64
	ranges  []pageSet // one per scanRangePages pages
	whole   atomic.Bool
}

// pageSet is the changed pages of one scan range: a list while short, a
// bitmap past 128 entries.
type pageSet struct {
	list []uint32
	bits []uint64 // bit i: block first+i
	n    int
}

func (s *pageSet) add(first, blk uint32) {
	s.n++
	if s.bits != nil {
		i := blk - first
		s.bits[i/64] |= 1 << (i % 64)
		return
	}
	s.list = append(s.list, blk)
	if len(s.list) > scanRangePages/64*2 {
		s.bits = make([]uint64, scanRangePages/64)
		for _, b := range s.list {
			i := b - first
			s.bits[i/64] |= 1 << (i % 64)
		}
		s.list = nil
	}
}

// appendTo appends the set's blocks, ascending.
func (s *pageSet) appendTo(dst []uint32, first uint32) []uint32 {
	if s.bits == nil {
		return append(dst, s.list...)
	}
	for w, word := range s.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			dst = append(dst, first+uint32(w*64+b))
			word &^= 1 << b
		}
	}
	return dst
}

// incrementable reports whether opts writes f as an increment when its
// pages allow: a relation file of whole pages that the parent holds.
func incrementable(f File, opts TarOptions) bool {
	return !f.IsDir && f.Size > 0 && f.Size%BlockSize == 0 && IsPagedFile(f.Member) &&
		opts.DeltaLSN != 0 && opts.Incremental != nil && opts.Incremental(f.Member)
}

// ScanChanges reads every page of the files in files that opts writes as
// increments (opts.DeltaLSN, opts.Incremental), each page once, with
// workers goroutines, each file split into ranges of 32 MiB; read, when
// not nil, is told of the bytes read as they are (from several goroutines;
// ScanBytes is their total). A file that vanished is left to the tar
// writer, which skips it. The first read error ends the scan.
func ScanChanges(ctx context.Context, files []File, opts TarOptions, workers int, read func(n int64)) (*ChangeScan, error) {
	type job struct {
		f  File
		sf *scannedFile
		r  int
	}
	cs := &ChangeScan{files: map[string]*scannedFile{}}
	var jobs []job
	for _, f := range files {
		if !incrementable(f, opts) {
			continue
		}
		nb := f.Size / BlockSize
		sf := &scannedFile{nblocks: nb, ranges: make([]pageSet, (nb+scanRangePages-1)/scanRangePages)}
		cs.files[f.Member] = sf
		for r := range sf.ranges {
			jobs = append(jobs, job{f, sf, r})
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, len(jobs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, copyBufferSize)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(jobs)) {
					return
				}
				j := jobs[i]
				if err := scanRange(j.f, j.sf, j.r, opts.DeltaLSN, buf, read); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return cs, nil
}

// ScanBytes is the bytes ScanChanges reads of files with opts.
func ScanBytes(files []File, opts TarOptions) int64 {
	var n int64
	for _, f := range files {
		if incrementable(f, opts) {
			n += f.Size
		}
	}
	return n
}

// scanRange classifies the pages of range r of f.
func scanRange(f File, sf *scannedFile, r int, deltaLSN uint64, buf []byte, read func(int64)) error {
	if sf.whole.Load() {
		return nil
	}
	src, err := os.Open(f.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("scanning %s for changed pages: %w", f.Path, err)
	}
	defer src.Close()
	first := int64(r) * scanRangePages
	end := min(first+scanRangePages, sf.nblocks) * BlockSize
	set := &sf.ranges[r]
	for off := first * BlockSize; off < end; {
		chunk := buf[:min(int64(len(buf)), end-off)]
		n, err := src.ReadAt(chunk, off)
		if err != nil && err != io.EOF {
			return fmt.Errorf("scanning %s for changed pages: %w", f.Path, err)
		}
		clear(chunk[n:]) // shrank since the directory scan: zero pages, new
		if read != nil {
			read(int64(len(chunk)))
		}
		for p := 0; p < len(chunk); p += BlockSize {
			switch ClassifyPage(chunk[p:p+BlockSize], deltaLSN) {
			case PageInvalid:
				sf.whole.Store(true)
				return nil
			case PageChanged:
				set.add(uint32(first), uint32((off+int64(p))/BlockSize))
			}
		}
		off += int64(len(chunk))
	}
	return nil
}

// FileBlocks is TarOptions.ChangedBlocks: the changed blocks of member
// (those below nblocks), or whole when the scan did not vouch for it.
func (cs *ChangeScan) FileBlocks(member string, nblocks int64) (blocks []uint32, whole bool) {
	sf := cs.files[member]
	if sf == nil || sf.whole.Load() || nblocks != sf.nblocks {
		return nil, true
	}
	n := 0
	for i := range sf.ranges {
		n += sf.ranges[i].n
	}
	blocks = make([]uint32, 0, n)
	for i := range sf.ranges {
		blocks = sf.ranges[i].appendTo(blocks, uint32(i*scanRangePages))
	}
	return blocks, false
}
