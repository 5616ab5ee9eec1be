package codec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// Content ID schemes: the part of a content ID before the colon.
const (
	contentIDPlain = "sha256"
	contentIDKeyed = "hmac-sha256"
	// contentIDLabel derives the content-ID key from the encryption key, so
	// that the two keys are never the same bytes.
	contentIDLabel = "walgate content-id v1"
)

// ContentIDHash hashes the plaintext of an object (the WAL segment as
// PostgreSQL handed it over) into a content ID the gateway can compare
// without learning the plaintext: it accepts a second push of the same
// segment with the same ID and refuses a different one.
//
// Write the plaintext into it; String then gives "<scheme>:<hex digest>".
type ContentIDHash struct {
	hash.Hash
	scheme string
}

// NewContentID returns a content ID hash. With key nil it is SHA-256 (scheme
// "sha256"). With a key it is HMAC-SHA256 (scheme "hmac-sha256") keyed with
// HMAC-SHA256(key, "walgate content-id v1"), so that someone without the key
// cannot confirm a guess of the plaintext from the ID.
func NewContentID(key *Key) ContentIDHash {
	if key == nil {
		return ContentIDHash{Hash: sha256.New(), scheme: contentIDPlain}
	}
	derive := hmac.New(sha256.New, key[:])
	derive.Write([]byte(contentIDLabel))
	idKey := derive.Sum(nil)
	h := hmac.New(sha256.New, idKey)
	clear(idKey)
	return ContentIDHash{Hash: h, scheme: contentIDKeyed}
}

// Scheme returns "sha256" or "hmac-sha256".
func (h ContentIDHash) Scheme() string { return h.scheme }

// String returns the content ID of what was written so far:
// "<scheme>:<64 lowercase hex digits>".
func (h ContentIDHash) String() string {
	return h.scheme + ":" + hex.EncodeToString(h.Sum(nil))
}
