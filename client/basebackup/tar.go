package basebackup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// DefaultPartThreshold is WAL-G's default WALG_TAR_SIZE_THRESHOLD: a part is
// closed once its payload exceeds 1 GiB - 1.
const DefaultPartThreshold int64 = 1<<30 - 1

// copyBufferSize bounds the memory WriteTar and ExtractTar use per stream.
const copyBufferSize = 128 << 10

// Partition cuts files, in order, into the contents of consecutive data
// tars as WAL-G does: files are added to the current part, and the part is
// closed as soon as its payload (the sum of Size) exceeds threshold, so a
// part exceeds threshold by less than its last file. Directory entries go
// with the files around them. No part is empty; no files give no parts.
func Partition(files []File, threshold int64) [][]File {
	return PartitionBy(files, threshold, func(f File) int64 { return f.Size })
}

// PartitionBy is Partition with each file's payload given by payload (a
// delta's increments are smaller than their files).
func PartitionBy(files []File, threshold int64, payload func(File) int64) [][]File {
	var parts [][]File
	var cur []File
	var size int64
	for _, f := range files {
		cur = append(cur, f)
		if !f.IsDir {
			size += payload(f)
		}
		if size > threshold {
			parts = append(parts, cur)
			cur, size = nil, 0
		}
	}
	if len(cur) > 0 {
		parts = append(parts, cur)
	}
	return parts
}

// Payload is the bytes f adds to a tar written with opts: the size of its
// increment when it is written as one, else its size.
func Payload(f File, opts TarOptions) int64 {
	if incrementable(f, opts) && opts.ChangedBlocks != nil {
		if blocks, whole := opts.ChangedBlocks(f.Member, f.Size/BlockSize); !whole {
			n := 0
			for _, b := range blocks {
				if int64(b) < f.Size/BlockSize {
					n++
				}
			}
			return IncrementSize(n)
		}
	}
	if f.IsDir {
		return 0
	}
	return f.Size
}

// TarResult reports what WriteTar wrote.
type TarResult struct {
	// Members are the member names written, in order (directories
	// included), as files_metadata.json's TarFileSets lists them.
	Members []string
	// Skipped are the members of files that had vanished (ENOENT when
	// opened) and were left out, as PostgreSQL and WAL-G do.
	Skipped []string
	// Bytes is the payload written: the sum of the regular files' sizes
	// (the sentinel's UncompressedSize sums it over all tars); for an
	// increment, its size in the tar.
	Bytes int64
	// Incremented are the members stored as page increments.
	Incremented map[string]bool
	// Corrupt lists, per member, the pages that failed checksum
	// verification (TarOptions.VerifyChecksums).
	Corrupt map[string]*CorruptBlocks
	// ChangedPages counts the pages written into increments.
	ChangedPages int64
}

// TarOptions tune WriteTarWith.
type TarOptions struct {
	// DeltaLSN, when not 0, is the parent backup's start LSN: files for
	// which Incremental returns true are written as increments holding the
	// pages whose LSN is at or after it, plus new pages. A file with a page
	// whose header is invalid is written whole instead.
	DeltaLSN    uint64
	Incremental func(member string) bool
	// ChangedBlocks, when set, says for a file Incremental accepts which
	// of its nblocks pages changed since the parent (from PostgreSQL's WAL
	// summaries): the increment holds those pages, read alone, instead of
	// the pages a scan of every page finds; whole copies the file whole.
	ChangedBlocks func(member string, nblocks int64) (blocks []uint32, whole bool)
	// VerifyChecksums checks the checksum of every page of relation data
	// files read (clusters initialised with data checksums).
	VerifyChecksums bool
	// StartLSN is this backup's start LSN: a page failing its checksum
	// whose LSN is at or after it is being written concurrently (WAL
	// replay rewrites it) and is not reported, as pg_basebackup does.
	StartLSN uint64
}

// WriteTar writes files, in order, as a tar stream into w, then the
// end-of-archive marker. Member names are File.Member as given; directories
// are header-only entries. Headers are Go's archive/tar in the format it
// picks (USTAR, or PAX for long names and sizes of 8 GiB and more), with
// the permission bits of File.Mode, File.ModTime rounded to the second, and
// the owner of the file on disk where it can be read.
//
// A file's size is frozen at scan time: exactly File.Size bytes are written;
// a file that shrank is padded with zero bytes, one that grew is cut. A
// file that vanished (ENOENT on open) is skipped and listed in Skipped;
// every other error fails, leaving w with a partial stream. Memory use is
// bounded by one copy buffer whatever the file sizes. w is not closed.
func WriteTar(w io.Writer, files []File) (TarResult, error) {
	return WriteTarWith(w, files, TarOptions{})
}

// WriteTarWith is WriteTar with page increments and checksum verification
// (see TarOptions). The tar header of an increment needs the member's size,
// the count of its changed pages, before its body: without
// opts.ChangedBlocks, the files' pages are first scanned for their LSNs
// (ScanChanges, in this goroutine), and an increment then reads its
// changed pages again, a run of consecutive pages per read. Memory stays
// bounded: one copy buffer, the scan's record of changed pages, and 4
// bytes per changed page of the file being written.
func WriteTarWith(w io.Writer, files []File, opts TarOptions) (TarResult, error) {
	res := TarResult{Incremented: map[string]bool{}, Corrupt: map[string]*CorruptBlocks{}}
	if opts.DeltaLSN != 0 && opts.Incremental != nil && opts.ChangedBlocks == nil {
		cs, err := ScanChanges(context.Background(), files, opts, 1, nil)
		if err != nil {
			return res, err
		}
		opts.ChangedBlocks = cs.FileBlocks
	}
	tw := tar.NewWriter(w)
	buf := make([]byte, copyBufferSize)
	for _, f := range files {
		if f.IsDir {
			hdr := header(f, nil)
			hdr.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(hdr); err != nil {
				return res, fmt.Errorf("write tar header %s: %w", f.Member, err)
			}
			res.Members = append(res.Members, f.Member)
			continue
		}
		fr, err := writeFile(tw, f, buf, opts)
		if err != nil {
			return res, err
		}
		if !fr.written {
			res.Skipped = append(res.Skipped, f.Member)
			continue
		}
		res.Members = append(res.Members, f.Member)
		res.Bytes += fr.n
		if fr.incremented {
			res.Incremented[f.Member] = true
			res.ChangedPages += int64(fr.pages)
		}
		if fr.corrupt != nil {
			res.Corrupt[f.Member] = fr.corrupt
		}
	}
	if err := tw.Close(); err != nil {
		return res, fmt.Errorf("finish tar: %w", err)
	}
	return res, nil
}

// fileResult is what writeFile did with one file.
type fileResult struct {
	n           int64 // bytes of tar payload
	written     bool  // false: the file had vanished
	incremented bool
	pages       int // pages in the increment
	corrupt     *CorruptBlocks
}

// maxCorruptListed bounds the corrupt block numbers kept per file, as
// WAL-G's SomeCorruptBlocks does.
const maxCorruptListed = 10

// writeFile writes one regular file's header and body: an increment when
// opts asks for one and every page header is sound, else exactly f.Size
// bytes of the file.
func writeFile(tw *tar.Writer, f File, buf []byte, opts TarOptions) (fileResult, error) {
	if f.Size < 0 {
		return fileResult{}, fmt.Errorf("write tar member %s: negative size %d", f.Member, f.Size)
	}
	src, err := os.Open(f.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fileResult{}, nil
		}
		return fileResult{}, fmt.Errorf("write tar member %s: %w", f.Member, err)
	}
	defer src.Close()
	var info fs.FileInfo
	if st, err := src.Stat(); err == nil {
		info = st
	}
	paged := f.Size > 0 && f.Size%BlockSize == 0 && IsPagedFile(f.Member)
	var pv *pageVerifier
	if paged && opts.VerifyChecksums {
		pv = &pageVerifier{src: src, member: f.Member, startLSN: opts.StartLSN, base: SegmentNumber(f.Member) * BlocksPerSegment}
	}
	if incrementable(f, opts) {
		if blocks, whole := opts.ChangedBlocks(f.Member, f.Size/BlockSize); !whole {
			return writeIncrementBlocks(tw, f, src, info, buf, blocks, pv)
		}
		// An invalid page header: copy the whole file instead.
		if pv != nil {
			pv.reset()
		}
	}
	hdr := header(f, info)
	hdr.Typeflag = tar.TypeReg
	hdr.Size = f.Size
	if err := tw.WriteHeader(hdr); err != nil {
		return fileResult{}, fmt.Errorf("write tar header %s: %w", f.Member, err)
	}
	// Reads start at offset 0 and are whole buffers (a multiple of the
	// page size), so every page is seen whole by the verifier.
	var off int64
	for off < f.Size {
		chunk := buf[:min(int64(len(buf)), f.Size-off)]
		n, err := io.ReadFull(src, chunk)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fileResult{}, fmt.Errorf("write tar member %s from %s: %w", f.Member, f.Path, err)
		}
		if n < len(chunk) {
			// The file shrank since the scan: pad, as PostgreSQL and WAL-G
			// do. WAL replay from the backup's start rewrites those pages.
			clear(chunk[n:])
		}
		if pv != nil {
			pv.check(chunk, off)
		}
		if _, err := tw.Write(chunk); err != nil {
			return fileResult{}, fmt.Errorf("write tar member %s: %w", f.Member, err)
		}
		off += int64(len(chunk))
	}
	res := fileResult{n: f.Size, written: true}
	if pv != nil {
		res.corrupt = pv.result()
	}
	return res, nil
}

// writeIncrementBlocks writes f as an increment holding blocks (sorted,
// distinct; those past the file's end are dropped), verifying the pages it
// reads when pv is set.
func writeIncrementBlocks(tw *tar.Writer, f File, src *os.File, info fs.FileInfo, buf []byte, blocks []uint32, pv *pageVerifier) (fileResult, error) {
	nblocks := f.Size / BlockSize
	for len(blocks) > 0 && int64(blocks[len(blocks)-1]) >= nblocks {
		blocks = blocks[:len(blocks)-1]
	}
	hdr := header(f, info)
	hdr.Typeflag = tar.TypeReg
	hdr.Size = IncrementSize(len(blocks))
	if err := tw.WriteHeader(hdr); err != nil {
		return fileResult{}, fmt.Errorf("write tar header %s: %w", f.Member, err)
	}
	if err := writeIncrementHeader(tw, f.Size, blocks); err != nil {
		return fileResult{}, fmt.Errorf("write tar member %s: %w", f.Member, err)
	}
	for i := 0; i < len(blocks); {
		// A run of consecutive blocks (up to len(buf) bytes) per read.
		end := i + 1
		for end < len(blocks) && blocks[end] == blocks[end-1]+1 && (end-i+1)*BlockSize <= len(buf) {
			end++
		}
		run := buf[:(end-i)*BlockSize]
		off := int64(blocks[i]) * BlockSize
		n, err := src.ReadAt(run, off)
		if err != nil && err != io.EOF {
			return fileResult{}, fmt.Errorf("write tar member %s from %s: %w", f.Member, f.Path, err)
		}
		clear(run[n:]) // shrank since the scan: zero pages, as the scan saw them
		if pv != nil {
			pv.check(run, off)
		}
		if _, err := tw.Write(run); err != nil {
			return fileResult{}, fmt.Errorf("write tar member %s: %w", f.Member, err)
		}
		i = end
	}
	res := fileResult{n: hdr.Size, written: true, incremented: true, pages: len(blocks)}
	if pv != nil {
		res.corrupt = pv.result()
	}
	return res, nil
}

// pageVerifier checks page checksums of one relation file as its pages
// are read.
type pageVerifier struct {
	src      *os.File
	member   string
	startLSN uint64
	base     uint32 // block number of the file's first page in the relation
	count    int
	some     []uint32
}

func (v *pageVerifier) reset() { v.count, v.some = 0, nil }

// check verifies the whole pages of data, read at file offset off. A
// failing page is read once more (it may have been torn by a concurrent
// write); it counts as corrupt only if it fails again and its LSN is
// before the backup's start.
func (v *pageVerifier) check(data []byte, off int64) {
	for p := 0; p+BlockSize <= len(data); p += BlockSize {
		blk := uint32((off + int64(p)) / BlockSize)
		page := data[p : p+BlockSize]
		if PageChecksumOK(page, v.base+blk) {
			continue
		}
		again := make([]byte, BlockSize)
		if n, err := v.src.ReadAt(again, off+int64(p)); (err == nil || err == io.EOF) && n == BlockSize {
			if PageChecksumOK(again, v.base+blk) {
				continue
			}
			if h := ParsePageHeader(again); h.Valid() && h.LSN >= v.startLSN && v.startLSN != 0 {
				continue
			}
		}
		v.count++
		if len(v.some) < maxCorruptListed {
			v.some = append(v.some, blk)
		}
	}
}

func (v *pageVerifier) result() *CorruptBlocks {
	if v.count == 0 {
		return nil
	}
	return &CorruptBlocks{CorruptBlocksCount: v.count, SomeCorruptBlocks: v.some}
}

// header builds f's tar header. info, when not nil, supplies the owner
// (uid, gid and their names) the way archive/tar.FileInfoHeader reads them.
func header(f File, info fs.FileInfo) *tar.Header {
	hdr := &tar.Header{}
	if info != nil {
		if h, err := tar.FileInfoHeader(info, ""); err == nil {
			hdr = h
		}
	}
	hdr.Name = f.Member
	hdr.Linkname = ""
	hdr.Mode = int64(f.Mode.Perm())
	hdr.ModTime = f.ModTime
	hdr.AccessTime = time.Time{}
	hdr.ChangeTime = time.Time{}
	hdr.Size = 0
	hdr.Format = tar.FormatUnknown
	return hdr
}

// Members of the backup_label tar, without a leading "/" as WAL-G writes
// them.
const (
	LabelMember         = "backup_label"
	TablespaceMapMember = "tablespace_map"
)

// LabelTarMembers lists the backup_label tar's members in the order WAL-G
// records them in files_metadata.json's TarFileSets.
var LabelTarMembers = []string{TablespaceMapMember, LabelMember}

// WriteLabelTar writes the backup_label tar: members "backup_label" then
// "tablespace_map" holding labelFile and spcmapFile (the strings
// pg_backup_stop returned; spcmapFile may be empty), mode 0600, owner 0,
// modification time mtime (the Unix epoch if zero, as WAL-G's headers
// carry).
func WriteLabelTar(w io.Writer, labelFile, spcmapFile string, mtime time.Time) error {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	tw := tar.NewWriter(w)
	for _, m := range []struct{ name, body string }{{LabelMember, labelFile}, {TablespaceMapMember, spcmapFile}} {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: 0o600, Size: int64(len(m.body)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", m.name, err)
		}
		if _, err := io.WriteString(tw, m.body); err != nil {
			return fmt.Errorf("write %s: %w", m.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish backup_label tar: %w", err)
	}
	return nil
}
