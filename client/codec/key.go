package codec

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// KeySize is the size of an encryption key: libsodium's
// crypto_secretstream_xchacha20poly1305_KEYBYTES.
const KeySize = 32

// minRawKeyLength is WAL-G's minimalKeyLength: the shortest string accepted
// as a key with transform "none".
const minRawKeyLength = 25

// Key is a secretstream encryption key. It redacts itself when formatted, so
// printing or logging a Key never shows the key material.
type Key [KeySize]byte

// String returns a placeholder, never the key material.
func (k Key) String() string { return "codec.Key(redacted)" }

// Format prints the same placeholder as String for every verb (%v, %x, %#v,
// ...), so that no fmt verb can leak the key.
func (k Key) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, k.String()) }

// ParseKey turns WALG_LIBSODIUM_KEY and WALG_LIBSODIUM_KEY_TRANSFORM into a
// key, with WAL-G's rules:
//
//   - transform "" or "none": the bytes of value. At least 25 bytes; a longer
//     value is cut to its first 32 bytes, a shorter one is padded with zero
//     bytes to 32.
//   - "base64" (standard alphabet, padded) and "hex": the decoded value,
//     which must be exactly 32 bytes.
//
// value is used as given; trimming whitespace (WAL-G trims a key read from
// WALG_LIBSODIUM_KEY_PATH, not an inline one) is the caller's business.
// Errors never contain the key material.
func ParseKey(value, transform string) (*Key, error) {
	var decoded []byte
	switch transform {
	case "", "none":
		if len(value) < minRawKeyLength {
			return nil, fmt.Errorf("encryption key is %d bytes; with key transform none it must be at least %d bytes (use a longer passphrase, or transform hex or base64 for a 32-byte key)", len(value), minRawKeyLength)
		}
		var key Key
		copy(key[:], value) // longer is cut to 32 bytes, shorter stays zero-padded
		return &key, nil
	case "base64":
		var err error
		if decoded, err = base64.StdEncoding.DecodeString(value); err != nil {
			// The decoder's message names an offset only, but say nothing
			// about the input at all.
			return nil, fmt.Errorf("encryption key is not valid base64 (standard alphabet, with padding)")
		}
	case "hex":
		var err error
		if decoded, err = hex.DecodeString(value); err != nil {
			// hex's own message would quote the offending character.
			return nil, fmt.Errorf("encryption key is not valid hex (%d hex digits expected)", 2*KeySize)
		}
	default:
		return nil, fmt.Errorf("unknown key transform %q: use none, base64 or hex", transform)
	}
	if len(decoded) != KeySize {
		clear(decoded)
		return nil, fmt.Errorf("encryption key decodes to %d bytes; with key transform %s it must be exactly %d bytes", len(decoded), transform, KeySize)
	}
	var key Key
	copy(key[:], decoded)
	clear(decoded)
	return &key, nil
}
