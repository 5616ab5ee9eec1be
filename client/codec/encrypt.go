package codec

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// The errors a reader returns, wrapped with where and why. Test with
// errors.Is. Errors of the underlying io.Reader are returned as they are.
var (
	// ErrAuth: a chunk failed authentication. The key is wrong or the
	// ciphertext was changed. No byte of such a chunk is ever returned.
	ErrAuth = errors.New("authentication failed: wrong key or tampered ciphertext")
	// ErrTruncated: the stream ended early, without its FINAL chunk or
	// inside a compression frame.
	ErrTruncated = errors.New("stream truncated")
	// ErrCorrupt: the stream is malformed: undecodable compressed data, data
	// after the end of the stream, a bad header or chunk tag.
	ErrCorrupt = errors.New("stream corrupt")
)

var errClosed = errors.New("codec: use of a closed stream")

// NewEncryptWriter returns a writer that encrypts everything written to it
// into w with libsodium's crypto_secretstream_xchacha20poly1305, framed as
// WAL-G frames it: a random 24-byte header, then one sealed chunk per 8192
// bytes of input tagged MESSAGE, and on Close one last chunk of the remaining
// 0 to 8191 bytes tagged FINAL. For n input bytes the output is exactly
// 24 + floor(n/8192)*8209 + n%8192 + 17 bytes.
//
// Nothing is written to w before the first Write or Close. Close writes the
// last chunk and does not close w. The writer holds one chunk, which it
// seals in place.
func NewEncryptWriter(w io.Writer, key *Key) (io.WriteCloser, error) {
	if key == nil {
		return nil, errors.New("codec: encryption needs a key")
	}
	e := &encryptWriter{dst: w}
	if _, err := rand.Read(e.header[:]); err != nil {
		return nil, fmt.Errorf("codec: random stream header: %w", err)
	}
	e.state = newStreamState(key, &e.header)
	return e, nil
}

type encryptWriter struct {
	dst           io.Writer
	state         *streamState
	header        [streamHeaderSize]byte
	headerWritten bool
	// buf holds the plaintext of the next chunk at buf[inPlaceMessage:],
	// sealed there in place into buf[inPlaceRoom:].
	buf      [inPlaceRoom + sealedChunkSize]byte
	buffered int // bytes of plaintext waiting for the next chunk
	closed   bool
	err      error // sticky: after a failed write the stream is lost
}

func (e *encryptWriter) Write(p []byte) (int, error) {
	if e.closed {
		return 0, errClosed
	}
	if e.err != nil {
		return 0, e.err
	}
	if err := e.writeHeader(); err != nil {
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		// Even a whole chunk of p is copied: the chunk is sealed in place,
		// after the room for its tag block.
		n := copy(e.buf[inPlaceMessage+e.buffered:inPlaceMessage+plainChunkSize], p)
		e.buffered += n
		p = p[n:]
		written += n
		// Like WAL-G, seal a chunk as soon as it is full, even if Close
		// follows: the FINAL chunk is then empty, never full-size.
		if e.buffered == plainChunkSize {
			e.buffered = 0
			if err := e.writeChunk(plainChunkSize, tagMessage); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// Close writes the FINAL chunk. It does not close the underlying writer.
func (e *encryptWriter) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	if e.err != nil {
		return e.err
	}
	if err := e.writeHeader(); err != nil {
		return err
	}
	n := e.buffered
	e.buffered = 0
	// Sealing leaves only ciphertext where the plaintext was.
	return e.writeChunk(n, tagFinal)
}

func (e *encryptWriter) writeHeader() error {
	if e.headerWritten {
		return nil
	}
	e.headerWritten = true
	if _, err := e.dst.Write(e.header[:]); err != nil {
		e.err = err
		return err
	}
	return nil
}

// writeChunk seals the mlen bytes at buf[inPlaceMessage:] with tag and
// writes the chunk.
func (e *encryptWriter) writeChunk(mlen int, tag byte) error {
	sealed := e.state.pushInPlace(e.buf[:], mlen, tag)
	if _, err := e.dst.Write(sealed); err != nil {
		e.err = err
		return err
	}
	return nil
}

// NewDecryptReader returns a reader of the plaintext of an encrypted stream
// read from r, the reverse of NewEncryptWriter. It returns io.EOF only after
// an authentic FINAL chunk that ends the stream. Otherwise it fails with an
// error wrapping ErrAuth (a chunk does not authenticate: wrong key, changed
// bytes), ErrTruncated (the stream ends without its FINAL chunk) or
// ErrCorrupt (a full-size chunk tagged FINAL, a tag other than MESSAGE and
// FINAL). Bytes after the FINAL chunk fail authentication (ErrAuth): with
// no length field they become part of the last chunk. A chunk's bytes are returned only
// after it authenticated, so a wrong key yields no plaintext at all.
//
// Nothing is read from r before the first Read. The reader holds one
// sealed chunk, which it opens in place.
func NewDecryptReader(r io.Reader, key *Key) io.Reader {
	d := &decryptReader{src: r}
	if key == nil {
		d.err = errors.New("codec: decryption needs a key")
	} else {
		d.key = *key
	}
	return d
}

type decryptReader struct {
	src    io.Reader
	key    Key
	state  *streamState // nil until the header has been read
	chunk  int          // number of chunks opened so far
	offset int64        // stream offset of the next chunk
	// buf holds a sealed chunk at buf[inPlaceRoom:], opened in place.
	buf     [inPlaceRoom + sealedChunkSize]byte
	pending []byte // opened plaintext not yet returned
	final   bool   // the FINAL chunk has been opened
	err     error  // sticky; returned once pending is drained
}

func (d *decryptReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		d.err = d.nextChunk()
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// nextChunk reads and opens one chunk into pending, or returns why not.
func (d *decryptReader) nextChunk() error {
	if d.state == nil {
		return d.readHeader()
	}
	if d.final {
		return io.EOF
	}
	n, err := readFull(d.src, d.buf[inPlaceRoom:])
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: encrypted stream ends after chunk %d (offset %d) without its FINAL chunk", ErrTruncated, d.chunk, d.offset)
	}
	full := n == sealedChunkSize
	if n < chunkOverhead {
		return fmt.Errorf("%w: encrypted stream ends with %d bytes at offset %d, less than the smallest chunk (%d bytes)", ErrTruncated, n, d.offset, chunkOverhead)
	}
	opened := d.state.pullInPlace(d.buf[:inPlaceRoom+n])
	if !opened.ok {
		return d.authError(n, full, opened.claimedTag)
	}
	d.chunk++
	d.offset += int64(n)
	switch {
	case full && opened.tag == tagMessage:
		d.pending = opened.plain
		return nil
	case !full && opened.tag == tagFinal:
		d.pending = opened.plain
		d.final = true
		return nil
	case full && opened.tag == tagFinal:
		return fmt.Errorf("%w: chunk %d is full-size and tagged FINAL; a FINAL chunk holds at most %d bytes", ErrCorrupt, d.chunk, plainChunkSize-1)
	case !full && opened.tag == tagMessage:
		return fmt.Errorf("%w: encrypted stream ends after a short chunk %d not tagged FINAL", ErrTruncated, d.chunk)
	}
	return fmt.Errorf("%w: chunk %d has tag 0x%02x; only MESSAGE (0x00) and FINAL (0x03) are used", ErrCorrupt, d.chunk, opened.tag)
}

func (d *decryptReader) readHeader() error {
	var header [streamHeaderSize]byte
	n, err := readFull(d.src, header[:])
	if err != nil {
		return err
	}
	if n < streamHeaderSize {
		return fmt.Errorf("%w: encrypted stream is %d bytes, shorter than its %d-byte header", ErrTruncated, n, streamHeaderSize)
	}
	d.state = newStreamState(&d.key, &header)
	clear(d.key[:]) // the stream key is all that is needed from now on
	d.offset = streamHeaderSize
	return nil
}

// authError explains a chunk of n bytes that failed authentication. Bytes
// after the FINAL chunk end up here too: chunks carry no length, so they
// join the last read, which then fails as a whole. Telling that apart from
// tampering would mean trying every shorter length for an authentic chunk;
// either way the object is refused, so it is reported as ErrAuth.
func (d *decryptReader) authError(n int, full bool, claimedTag byte) error {
	index := d.chunk + 1
	if !full && claimedTag == tagMessage {
		// A short chunk that claims to be a MESSAGE chunk: most likely a
		// full chunk cut short, but it cannot be told from tampering.
		return fmt.Errorf("%w: %w: encrypted stream ends inside chunk %d (offset %d, %d of %d bytes)", ErrTruncated, ErrAuth, index, d.offset, n, sealedChunkSize)
	}
	return fmt.Errorf("%w (chunk %d at offset %d)", ErrAuth, index, d.offset)
}

// readFull fills buf from r until it is full or r reports io.EOF; n < len(buf)
// with a nil error means the stream ended there. Any other error of r, even
// io.ErrUnexpectedEOF (an HTTP body cut short), is returned as it is: it
// says the transport broke, not where the stream ends.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
