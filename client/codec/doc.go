// Package codec owns the byte format of every WAL segment, history file and
// backup part that walgate stores: compression, then optional encryption,
// exactly as WAL-G writes them, so that an archive written by one can be read
// by the other. docs/codec.md is the format specification.
//
// The package offers streams, one stage each:
//
//   - NewWriter / NewReader: the whole object (compress then encrypt, and
//     back). This is what the client uses; NewSegmentWriter is NewWriter
//     with zstd's window sized to WAL files, and EncodeSplit writes the
//     same object from a file's two halves compressed at once.
//   - NewEncryptWriter / NewDecryptReader: the encryption layer alone,
//     libsodium's crypto_secretstream_xchacha20poly1305 cut into 8192-byte
//     chunks as WAL-G does, implemented in pure Go.
//   - NewContentID: a hash of the plaintext that the gateway may see without
//     learning anything about the plaintext when a key is set.
//   - Key.Fingerprint / SelectKey: which of several keys (a rotation) sealed
//     an object, by the fingerprint recorded beside it or, without one, by
//     trying each key on the first chunk only.
//
// Readers are stricter than WAL-G's: a stream returns io.EOF only after it
// ended properly (the encrypted FINAL chunk, the end of the compression
// frame). Every other ending returns an error that wraps ErrAuth,
// ErrTruncated or ErrCorrupt, and no byte of a chunk that failed
// authentication is ever returned. Memory per stream is bounded by the
// compression method's window, never by the size of the object.
//
// The package must never import anything of walgate's, log, read
// configuration or environment variables, or touch the network or the file
// system. Its callers own all of that; this package only transforms bytes and
// returns errors.
package codec
