package codec

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// HashReader passes reads through while hashing (SHA-256) and counting
// them: the identity of an object's stored bytes that the wire protocol
// and the catalog check (Walgate-Content-Sha256 and the size).
type HashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

// NewHashReader hashes and counts what is read from r through it.
func NewHashReader(r io.Reader) *HashReader {
	return &HashReader{r: r, h: sha256.New()}
}

func (h *HashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// Size is the number of bytes read so far.
func (h *HashReader) Size() int64 { return h.n }

// SHA256 is the hex SHA-256 of the bytes read so far.
func (h *HashReader) SHA256() string { return hex.EncodeToString(h.h.Sum(nil)) }
