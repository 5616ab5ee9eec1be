package codec

// EncryptedSizePossible reports whether n bytes can be an object
// NewEncryptWriter wrote: 24 + floor(N/8192)*8209 + N%8192 + 17 for some
// plaintext size N. A reader without the key (a catalog rebuild) tells a
// damaged libsodium object from an intact one this way.
func EncryptedSizePossible(n int64) bool {
	if n < streamHeaderSize+chunkOverhead {
		return false
	}
	return (n-streamHeaderSize)%(plainChunkSize+chunkOverhead) >= chunkOverhead
}
