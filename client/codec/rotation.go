package codec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// fingerprintLabel derives the fingerprint key from the encryption key;
// fingerprintMessage is what the fingerprint key authenticates.
const (
	fingerprintLabel   = "walgate key-fingerprint v1"
	fingerprintMessage = "walgate key fingerprint"
	// FingerprintLength is the length of a fingerprint in hex digits.
	FingerprintLength = 16
)

// Fingerprint names the key without revealing anything about it: the first
// 8 bytes, in lowercase hex, of HMAC-SHA256(fk, "walgate key fingerprint")
// with fk = HMAC-SHA256(key, "walgate key-fingerprint v1"). Objects record
// the fingerprint of the key they were sealed with, so that a reader
// holding several keys (a rotation) picks the right one without trying
// them. Someone without the key can only tell that two objects were sealed
// with the same key.
func (k *Key) Fingerprint() string {
	derive := hmac.New(sha256.New, k[:])
	derive.Write([]byte(fingerprintLabel))
	fk := derive.Sum(nil)
	h := hmac.New(sha256.New, fk)
	clear(fk)
	h.Write([]byte(fingerprintMessage))
	return hex.EncodeToString(h.Sum(nil)[:FingerprintLength/2])
}

// KeyByFingerprint returns the key of keys whose fingerprint is fp, or nil.
func KeyByFingerprint(keys []*Key, fp string) *Key {
	for _, k := range keys {
		if k.Fingerprint() == fp {
			return k
		}
	}
	return nil
}

// SelectKey finds which of keys an encrypted object was sealed with, for
// objects that record no fingerprint (WAL-G's, and walgate's own from
// before fingerprints): it reads the stream header and the first chunk
// from r (at most 8233 bytes) and returns the first key under which that
// chunk authenticates, and a reader that gives the whole object again
// from its first byte (what was read, then the rest of r).
//
// When no key authenticates the first chunk, or the object is too short to
// have one, it returns keys[0] and a nil error: decoding then fails with
// the reader's own classification (ErrAuth, ErrTruncated). Errors of r are
// returned as they are. keys must not be empty.
func SelectKey(r io.Reader, keys []*Key) (*Key, io.Reader, error) {
	buf := make([]byte, streamHeaderSize+sealedChunkSize)
	n, err := readFull(r, buf)
	if err != nil {
		return nil, nil, err
	}
	buf = buf[:n]
	replay := io.MultiReader(&sliceReader{buf}, r)
	if len(keys) == 1 || n < streamHeaderSize+chunkOverhead {
		return keys[0], replay, nil
	}
	var header [streamHeaderSize]byte
	copy(header[:], buf)
	sealed := buf[streamHeaderSize:]
	scratch := make([]byte, len(sealed)-chunkOverhead)
	defer clear(scratch)
	for _, k := range keys {
		if newStreamState(k, &header).pull(scratch, sealed).ok {
			return k, replay, nil
		}
	}
	return keys[0], replay, nil
}

// sliceReader reads out a slice held in memory (one chunk at most).
type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
