package codec

import (
	"bufio"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// Compression names a compression method, with the same names as WAL-G's
// WALG_COMPRESSION_METHOD.
type Compression string

// The compression methods. LZMA can only be read: WAL-G can write it, walgate
// does not.
const (
	Zstd   Compression = "zstd"
	LZ4    Compression = "lz4"
	Brotli Compression = "brotli"
	None   Compression = "none"
	LZMA   Compression = "lzma"
)

// Settings shared with WAL-G. Changing any of them changes the bytes walgate
// writes, not their readability.
const (
	brotliQuality = 3  // WAL-G: cbrotli WriterOptions{Quality: 3}
	brotliWindow  = 22 // log2 of the window; the brotli default, as in cbrotli
	// zstdMaxWindow caps the window a zstd frame may ask the decoder to
	// allocate. WAL-G and walgate use 8 MiB.
	zstdMaxWindow = 32 << 20
	// lzmaMaxDict caps the dictionary an lzma header may ask for. WAL-G
	// writes 8 MiB dictionaries.
	lzmaMaxDict = 16 << 20
)

// ParseCompression returns the method called s, one of zstd, lz4, brotli or
// none: the methods walgate writes. lzma objects can be read, but the method
// is reached only through CompressionFromExt.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Zstd, LZ4, Brotli, None:
		return c, nil
	case LZMA:
		return "", fmt.Errorf("compression method %q can only be read, not written: use zstd, lz4, brotli or none", s)
	}
	return "", fmt.Errorf("unknown compression method %q: use zstd, lz4, brotli or none", s)
}

// Ext returns the file name extension WAL-G gives objects compressed with c,
// without the dot: "zst", "lz4", "br", "lzma", and "" for none (the object
// name then has no extension at all).
func (c Compression) Ext() string {
	switch c {
	case Zstd:
		return "zst"
	case LZ4:
		return "lz4"
	case Brotli:
		return "br"
	case LZMA:
		return "lzma"
	}
	return ""
}

// CompressionFromExt returns the method of an object whose name ends in
// "." + ext; ext "" means none. It is how a reader learns the method of an
// object: WAL-G stores no other marker.
func CompressionFromExt(ext string) (Compression, error) {
	switch ext {
	case "zst":
		return Zstd, nil
	case "lz4":
		return LZ4, nil
	case "br":
		return Brotli, nil
	case "lzma":
		return LZMA, nil
	case "":
		return None, nil
	}
	return "", fmt.Errorf("unknown compression extension %q: expected zst, lz4, br, lzma or none", ext)
}

// newCompressor returns the compressing stage writing into w; l and window
// are zstd's, bulk chooses NewBulkWriter's zstd encoder. Its Close ends the
// compressed stream without closing w.
func newCompressor(w io.Writer, c Compression, l Level, window int, bulk bool) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		return zstd.NewWriter(w, zstdWriterOptions(l, window, bulk)...)
	case LZ4:
		lw := lz4.NewWriter(w)
		err := lw.Apply(
			lz4.BlockSizeOption(lz4.Block4Mb),
			lz4.ChecksumOption(true),
			lz4.BlockChecksumOption(false),
			lz4.CompressionLevelOption(lz4.Fast),
			lz4.ConcurrencyOption(1))
		if err != nil {
			return nil, fmt.Errorf("lz4 writer: %v", err)
		}
		return lw, nil
	case Brotli:
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: brotliQuality, LGWin: brotliWindow}), nil
	case None:
		return nopWriteCloser{w}, nil
	case LZMA:
		return nil, fmt.Errorf("compression method %q can only be read, not written", c)
	}
	return nil, fmt.Errorf("unknown compression method %q", c)
}

// zstd windows, smaller than the level's 8 MiB. With 1 MiB (backup parts)
// WAL compresses within half a percent as well as with 8 MiB. A WAL
// record finds its matches within the last few pages: with 256 KiB
// (WAL files) real segments of pgbench's COPY load and UPDATEs come out
// the same size or a little smaller than with 1 MiB, while the encoder
// allocates 0.75 MiB less and an exec'd wal-push spends about 8% less CPU.
const (
	zstdWindow        = 1 << 20
	zstdSegmentWindow = 256 << 10
)

// zstdWriterOptions are the settings of every zstd encoder walgate runs,
// with the given level and window. bulk keeps the same level, window and
// empty-object frame, so the same bytes, with a history of two windows (the
// encoder's default) and matching beside entropy coding and writing
// (NewBulkWriter).
func zstdWriterOptions(l Level, window int, bulk bool) []zstd.EOption {
	if bulk {
		return []zstd.EOption{
			zstd.WithEncoderLevel(l.zstd()),
			zstd.WithEncoderConcurrency(2),
			zstd.WithWindowSize(window),
			zstd.WithZeroFrames(true),
		}
	}
	return []zstd.EOption{
		zstd.WithEncoderLevel(l.zstd()),
		zstd.WithEncoderConcurrency(1),
		// The exec'd client touches fresh pages for every byte of
		// window it allocates (its start-up cost).
		zstd.WithWindowSize(window),
		// History sized to the window plus one block (not twice the
		// window), and block buffers that grow only as needed: the
		// same bytes out, less memory touched.
		zstd.WithLowerEncoderMem(true),
		// An empty object still gets a frame, so that a reader can
		// tell an empty object from a truncated one.
		zstd.WithZeroFrames(true),
	}
}

// decompressor is the decompressing stage of a reader.
type decompressor struct {
	io.Reader
	// tail is where bytes after the end of the compressed stream would be
	// found: the stage's source, or its read-ahead buffer.
	tail io.Reader
	// frame, for zstd and lz4, knows where the one frame of the object
	// ends.
	frame *singleFrameReader
	// release frees the decoder's buffers.
	release func()
}

// newDecompressor starts decompressing src with c. It may read src (lzma
// reads its header here).
func newDecompressor(src io.Reader, c Compression) (*decompressor, error) {
	switch c {
	case Zstd:
		frame := newSingleFrameReader(src, &zstdFrame{}, zstdMagicHeader)
		zr, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, err
		}
		if err := zr.Reset(frame); err != nil {
			zr.Close()
			return nil, err
		}
		return &decompressor{Reader: zr, tail: src, frame: frame, release: zr.Close}, nil
	case LZ4:
		frame := newSingleFrameReader(src, &lz4Frame{}, lz4MagicHeader)
		lr := lz4.NewReader(frame)
		return &decompressor{Reader: lr, tail: src, frame: frame, release: func() { lr.Reset(nil) }}, nil
	case Brotli:
		// The brotli reader refuses input after the end of its stream
		// itself ("excessive input").
		return &decompressor{Reader: brotli.NewReader(src), tail: src, release: func() {}}, nil
	case LZMA:
		// The lzma reader takes one byte at a time from an io.ByteReader
		// and stops right after the end marker, so whatever follows stays
		// in this buffer for the trailing-data check.
		buffered := bufio.NewReaderSize(src, 4096)
		lr, err := lzma.ReaderConfig{DictCap: lzmaMaxDict}.NewReader(buffered)
		if err != nil {
			return nil, err
		}
		return &decompressor{Reader: lr, tail: buffered, release: func() {}}, nil
	case None:
		return &decompressor{Reader: src, tail: src, release: func() {}}, nil
	}
	return nil, fmt.Errorf("unknown compression method %q", c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
