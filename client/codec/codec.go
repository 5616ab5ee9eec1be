package codec

import (
	"errors"
	"fmt"
	"io"
)

// NewWriter returns a writer that compresses with c and then, when key is not
// nil, encrypts as NewEncryptWriter does, writing the object into w: the
// bytes WAL-G would store for the same input and settings (up to the random
// encryption header and the compressor's version).
//
// Close ends the compressed stream and writes the FINAL chunk; it does not
// close w. Nothing is complete before Close returns nil. Memory is bounded
// by the compressor's window (see docs/codec.md), whatever the object size.
// c must be one of the methods ParseCompression accepts.
func NewWriter(w io.Writer, c Compression, key *Key) (io.WriteCloser, error) {
	return newObjectWriter(w, c, key, LevelDefault, zstdWindow, false)
}

// NewSegmentWriter is NewWriter for a WAL segment (or another WAL file):
// the same format, with zstd's window sized to WAL, whose records find
// their matches close by (256 KiB instead of 1 MiB: less memory, less
// CPU, the same size; see zstdSegmentWindow), at zstd level l.
func NewSegmentWriter(w io.Writer, c Compression, key *Key, l Level) (io.WriteCloser, error) {
	return newObjectWriter(w, c, key, l, zstdSegmentWindow, false)
}

// NewBulkWriter is NewWriter for large objects written by a process that
// lives long enough to pay for a little more memory (the tar partitions of
// a base backup). The object is the same, byte for byte before encryption:
// same format, same window, same compressed bytes. Only zstd differs in how
// it gets there: its history holds two windows instead of the window plus
// one block, so the history is moved down once per window of input instead
// of once per 128 KiB block (about eight times the input otherwise), and it
// finds the matches of one block while the block before is entropy coded
// and written and the caller fills the next, so one stream keeps up to two
// CPUs busy. It holds about 1.5 MiB more than NewWriter (see docs/codec.md).
// Close waits for everything written to reach w. l is zstd's level.
func NewBulkWriter(w io.Writer, c Compression, key *Key, l Level) (io.WriteCloser, error) {
	return newObjectWriter(w, c, key, l, zstdWindow, true)
}

// newObjectWriter is the writer of the three above: l and window are
// zstd's, bulk chooses NewBulkWriter's encoder.
func newObjectWriter(w io.Writer, c Compression, key *Key, l Level, window int, bulk bool) (io.WriteCloser, error) {
	ow := &objectWriter{}
	sink := w
	if key != nil {
		encryptor, err := NewEncryptWriter(w, key)
		if err != nil {
			return nil, err
		}
		ow.encryptor = encryptor
		sink = encryptor
	}
	compressor, err := newCompressor(sink, c, l, window, bulk)
	if err != nil {
		return nil, err
	}
	ow.compressor = compressor
	return ow, nil
}

type objectWriter struct {
	compressor io.WriteCloser
	encryptor  io.WriteCloser // nil without a key
	closed     bool
	err        error
}

func (o *objectWriter) Write(p []byte) (int, error) {
	if o.closed {
		return 0, errClosed
	}
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.compressor.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

func (o *objectWriter) Close() error {
	if o.closed {
		return o.err
	}
	o.closed = true
	if o.err != nil {
		return o.err
	}
	if err := o.compressor.Close(); err != nil {
		o.err = err
		return err
	}
	if o.encryptor != nil {
		if err := o.encryptor.Close(); err != nil {
			o.err = err
			return err
		}
	}
	return nil
}

// NewReader returns a reader of the plaintext of an object read from r:
// decryption when key is not nil, then decompression with c. Like
// NewDecryptReader it returns io.EOF only after a properly ended stream: the
// FINAL chunk when encrypted, and the end of the compressed stream with
// nothing after it. Otherwise Read fails with an error wrapping ErrAuth,
// ErrTruncated or ErrCorrupt; errors of r itself are returned unchanged.
//
// An unencrypted object compressed with None has no end marker at all, so
// its truncation cannot be seen here; the content hash kept by the gateway
// covers that case.
//
// Nothing is read from r before the first Read. Close releases the
// decoder's buffers; it does not close r.
func NewReader(r io.Reader, c Compression, key *Key) (io.ReadCloser, error) {
	switch c {
	case Zstd, LZ4, Brotli, None, LZMA:
	default:
		return nil, fmt.Errorf("unknown compression method %q", c)
	}
	or := &objectReader{compression: c}
	if key != nil {
		or.source.r = NewDecryptReader(r, key)
	} else {
		or.source.r = r
	}
	if c == Zstd {
		return zstdObjectReader{or}, nil
	}
	return or, nil
}

// zstdObjectReader is the reader of a zstd object; io.Copy uses its
// WriteTo.
type zstdObjectReader struct{ *objectReader }

// WriteTo writes the rest of the plaintext to w with the same checks and
// errors as Read, but the decoder writes each block it decodes straight
// from its own buffer: no copy through a buffer of the caller's, whose
// fresh pages a short-lived process pays for. An error of w is returned
// as it is.
func (z zstdObjectReader) WriteTo(w io.Writer) (int64, error) {
	o := z.objectReader
	if err := o.start(); err == io.EOF {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	to, ok := o.decompressor.Reader.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{o})
	}
	out := &writeErr{w: w}
	n, err := to.WriteTo(out)
	switch {
	case out.err != nil:
		o.err = out.err
		return n, out.err
	case err == nil:
		o.err = o.checkEnd()
	default:
		o.err = o.explain(err)
	}
	if o.err == io.EOF {
		return n, nil
	}
	return n, o.err
}

// writeErr keeps the first error of w.
type writeErr struct {
	w   io.Writer
	err error
}

func (e *writeErr) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

type objectReader struct {
	compression  Compression
	source       sourceReader
	decompressor *decompressor // nil until the first Read
	closed       bool
	err          error // sticky
}

// sourceReader is the input of the decompressor. It counts bytes and keeps
// the first error other than io.EOF, which already says what went wrong
// (an ErrAuth from decryption, an I/O error), whatever the decompressor
// makes of it.
type sourceReader struct {
	r   io.Reader
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// start returns the error that ends reading, if any, and otherwise makes
// the decompressor when there is none yet.
func (o *objectReader) start() error {
	if o.closed {
		return errClosed
	}
	if o.err != nil {
		return o.err
	}
	if o.decompressor == nil {
		d, err := newDecompressor(&o.source, o.compression)
		if err != nil {
			o.err = o.explain(err)
			return o.err
		}
		o.decompressor = d
	}
	return nil
}

func (o *objectReader) Read(p []byte) (int, error) {
	if err := o.start(); err != nil {
		return 0, err
	}
	n, err := o.decompressor.Read(p)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		o.err = o.checkEnd()
	default:
		o.err = o.explain(err)
	}
	return n, o.err
}

// checkEnd runs when the decompressor reports the end of its stream: the
// object is complete only if there was a compressed stream at all and
// nothing follows it (which, when encrypted, also means the FINAL chunk).
func (o *objectReader) checkEnd() error {
	if o.source.err != nil {
		// A decoder may take a failing source for the end of its input.
		return o.source.err
	}
	if o.compression != None && o.source.n == 0 {
		return fmt.Errorf("%w: %s stream is empty", ErrTruncated, o.compression)
	}
	if f := o.decompressor.frame; f != nil && !f.complete() {
		return fmt.Errorf("%w: %s frame ends early", ErrTruncated, o.compression)
	}
	var probe [1]byte
	for {
		n, err := o.decompressor.tail.Read(probe[:])
		if n > 0 {
			return fmt.Errorf("%w: data after the end of the %s stream", ErrCorrupt, o.compression)
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return o.explain(err)
		}
	}
}

// explain classifies a decompressor error.
func (o *objectReader) explain(err error) error {
	if o.source.err != nil {
		return o.source.err
	}
	if o.decompressor != nil && o.decompressor.frame != nil {
		if f := o.decompressor.frame; f.err != nil {
			return f.err
		} else if f.ended {
			return fmt.Errorf("%w: %s frame ends early: %v", ErrTruncated, o.compression, err)
		}
	}
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrCorrupt) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || isLZMAUnexpectedEOF(err) {
		return fmt.Errorf("%w: %s stream ends early: %v", ErrTruncated, o.compression, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, o.compression, err)
}

// isLZMAUnexpectedEOF recognises the lzma package's own end-of-input error,
// which is a plain errors.New value.
func isLZMAUnexpectedEOF(err error) bool {
	return err.Error() == "lzma: unexpected EOF"
}

// Close releases the decoder's buffers. It does not close the underlying
// reader.
func (o *objectReader) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	if o.decompressor != nil {
		o.decompressor.release()
		o.decompressor = nil
	}
	return nil
}
