package basebackup

import (
	"archive/tar"
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
	var parts [][]File
	var cur []File
	var size int64
	for _, f := range files {
		cur = append(cur, f)
		size += f.Size
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

// TarResult reports what WriteTar wrote.
type TarResult struct {
	// Members are the member names written, in order (directories
	// included), as files_metadata.json's TarFileSets lists them.
	Members []string
	// Skipped are the members of files that had vanished (ENOENT when
	// opened) and were left out, as PostgreSQL and WAL-G do.
	Skipped []string
	// Bytes is the payload written: the sum of the regular files' sizes
	// (the sentinel's UncompressedSize sums it over all tars).
	Bytes int64
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
	var res TarResult
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
		n, written, err := writeFile(tw, f, buf)
		if err != nil {
			return res, err
		}
		if !written {
			res.Skipped = append(res.Skipped, f.Member)
			continue
		}
		res.Members = append(res.Members, f.Member)
		res.Bytes += n
	}
	if err := tw.Close(); err != nil {
		return res, fmt.Errorf("finish tar: %w", err)
	}
	return res, nil
}

// writeFile writes one regular file's header and exactly f.Size bytes.
// written is false if the file had vanished.
func writeFile(tw *tar.Writer, f File, buf []byte) (n int64, written bool, err error) {
	if f.Size < 0 {
		return 0, false, fmt.Errorf("write tar member %s: negative size %d", f.Member, f.Size)
	}
	src, err := os.Open(f.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("write tar member %s: %w", f.Member, err)
	}
	defer src.Close()
	var info fs.FileInfo
	if st, err := src.Stat(); err == nil {
		info = st
	}
	hdr := header(f, info)
	hdr.Typeflag = tar.TypeReg
	hdr.Size = f.Size
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, false, fmt.Errorf("write tar header %s: %w", f.Member, err)
	}
	copied, err := io.CopyBuffer(tw, io.LimitReader(src, f.Size), buf)
	if err != nil {
		return 0, false, fmt.Errorf("write tar member %s from %s: %w", f.Member, f.Path, err)
	}
	if copied < f.Size {
		// The file shrank since the scan: pad, as PostgreSQL and WAL-G do.
		// WAL replay from the backup's start rewrites those pages.
		clear(buf)
		for rest := f.Size - copied; rest > 0; {
			chunk := min(rest, int64(len(buf)))
			if _, err := tw.Write(buf[:chunk]); err != nil {
				return 0, false, fmt.Errorf("write tar member %s: %w", f.Member, err)
			}
			rest -= chunk
		}
	}
	return f.Size, true, nil
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
