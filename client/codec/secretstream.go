package codec

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/poly1305"
)

// This file is libsodium's crypto_secretstream_xchacha20poly1305, written
// from its reference implementation (crypto_secretstream/xchacha20poly1305/
// secretstream_xchacha20poly1305.c). Names follow libsodium's.

const (
	streamHeaderSize = 24 // HEADERBYTES: HChaCha20 input (16) || initial inonce (8)
	chunkOverhead    = 17 // ABYTES: encrypted tag byte + 16-byte Poly1305 MAC
	plainChunkSize   = 8192
	sealedChunkSize  = plainChunkSize + chunkOverhead // 8209

	tagMessage byte = 0x00
	tagPush    byte = 0x01
	tagRekey   byte = 0x02
	tagFinal   byte = tagPush | tagRekey // 0x03
)

// streamState is crypto_secretstream_xchacha20poly1305_state: a ChaCha20
// key and the 12-byte IETF nonce, which is a 4-byte little-endian chunk
// counter followed by the 8-byte "inonce".
type streamState struct {
	key   [32]byte
	nonce [12]byte
	// aead is RFC 8439's ChaCha20-Poly1305 under key (pullInPlace), made
	// when first needed; nil after a rekey.
	aead cipher.AEAD
}

// newStreamState is init_push and init_pull: the stream key is
// HChaCha20(key, header[0:16]), the counter starts at 1 and the inonce is
// header[16:24].
func newStreamState(key *Key, header *[streamHeaderSize]byte) *streamState {
	subkey, err := chacha20.HChaCha20(key[:], header[:16])
	if err != nil {
		panic("codec: HChaCha20: " + err.Error()) // only for wrong lengths
	}
	s := &streamState{}
	copy(s.key[:], subkey)
	clear(subkey)
	s.resetCounter()
	copy(s.nonce[4:], header[16:])
	return s
}

func (s *streamState) resetCounter() {
	binary.LittleEndian.PutUint32(s.nonce[:4], 1)
}

// chunkKeys returns the ChaCha20 keystream of the current chunk positioned
// at block 1, and the Poly1305 key: the first 32 bytes of block 0.
func (s *streamState) chunkKeys() (*chacha20.Cipher, [32]byte) {
	stream, err := chacha20.NewUnauthenticatedCipher(s.key[:], s.nonce[:])
	if err != nil {
		panic("codec: chacha20: " + err.Error()) // only for wrong lengths
	}
	var block [64]byte
	stream.XORKeyStream(block[:], block[:]) // block 0
	var polyKey [32]byte
	copy(polyKey[:], block[:32])
	clear(block[:])
	return stream, polyKey
}

// tagBlock returns block 1 of the keystream XORed with a block whose first
// byte is tag and the rest zeros; the caller's stream then stands at
// block 2, where the message starts. Its first byte is the encrypted tag
// sent on the wire; all 64 bytes go into the MAC.
func tagBlock(stream *chacha20.Cipher, tag byte) [64]byte {
	var block [64]byte
	block[0] = tag
	stream.XORKeyStream(block[:], block[:])
	return block
}

// chunkMAC computes the Poly1305 tag of one chunk: no additional data (so
// no AD bytes and no AD padding), the 64-byte tag block, the ciphertext,
// len(ciphertext) mod 16 zero bytes (sic), then le64(adlen = 0) and
// le64(64 + len(ciphertext)).
func chunkMAC(polyKey *[32]byte, block *[64]byte, ciphertext []byte) [16]byte {
	h := poly1305.New(polyKey)
	h.Write(block[:])
	h.Write(ciphertext)
	// libsodium pads with (0x10 - 64 + mlen) & 0xf zero bytes, which is
	// mlen mod 16, not the (16 - mlen mod 16) mod 16 of RFC 8439's AEAD. It
	// is what every libsodium (and so WAL-G) stream uses.
	var pad [16]byte
	h.Write(pad[:len(ciphertext)%16])
	var lengths [16]byte
	binary.LittleEndian.PutUint64(lengths[0:8], 0)
	binary.LittleEndian.PutUint64(lengths[8:16], uint64(64+len(ciphertext)))
	h.Write(lengths[:])
	var mac [16]byte
	h.Sum(mac[:0])
	return mac
}

// advance is the end of push and pull: inonce ^= mac[0:8], counter += 1,
// and a rekey when the tag has the REKEY bit (FINAL has it) or the counter
// wrapped to zero.
func (s *streamState) advance(mac *[16]byte, tag byte) {
	for i := range 8 {
		s.nonce[4+i] ^= mac[i]
	}
	counter := binary.LittleEndian.Uint32(s.nonce[:4]) + 1
	binary.LittleEndian.PutUint32(s.nonce[:4], counter)
	if tag&tagRekey != 0 || counter == 0 {
		s.rekey()
	}
}

// rekey is crypto_secretstream_xchacha20poly1305_rekey: key || inonce is
// XORed with the keystream (block 0 of the current nonce) to give the new
// key and inonce, and the counter restarts at 1.
func (s *streamState) rekey() {
	var buf [32 + 8]byte
	copy(buf[:32], s.key[:])
	copy(buf[32:], s.nonce[4:])
	stream, err := chacha20.NewUnauthenticatedCipher(s.key[:], s.nonce[:])
	if err != nil {
		panic("codec: chacha20: " + err.Error())
	}
	stream.XORKeyStream(buf[:], buf[:])
	copy(s.key[:], buf[:32])
	copy(s.nonce[4:], buf[32:])
	clear(buf[:])
	s.resetCounter()
	s.aead = nil
}

// push seals plain (at most plainChunkSize bytes) with tag into out, which
// must hold len(plain)+chunkOverhead bytes: out[0] is the encrypted tag,
// then the ciphertext, then the 16-byte MAC. It returns the used part of out.
func (s *streamState) push(out, plain []byte, tag byte) []byte {
	stream, polyKey := s.chunkKeys()
	block := tagBlock(stream, tag)
	out = out[:len(plain)+chunkOverhead]
	out[0] = block[0]
	ciphertext := out[1 : 1+len(plain)]
	stream.XORKeyStream(ciphertext, plain)
	mac := chunkMAC(&polyKey, &block, ciphertext)
	copy(out[1+len(plain):], mac[:])
	s.advance(&mac, tag)
	return out
}

// inPlaceMessage is where pushInPlace takes the message from: the place of
// its ciphertext in a sealed chunk at buf[inPlaceRoom:], after the
// encrypted tag byte. So buf[:inPlaceMessage] is room for the whole tag
// block.
const inPlaceMessage = inPlaceRoom + 1

// pushInPlace is push for a message of mlen bytes (at most plainChunkSize)
// at buf[inPlaceMessage:], in a buf of at least inPlaceMessage+mlen+16
// bytes: it seals the message with tag where it lies and returns the sealed
// chunk, buf[inPlaceRoom:inPlaceMessage+mlen+16]. buf[:inPlaceRoom] is
// overwritten. The chunk is byte for byte the one push seals.
//
// As pullInPlace explains, a chunk whose message length is a multiple of 8
// is RFC 8439's ChaCha20-Poly1305 sealing of the tag block (the tag byte
// and 63 zeros) followed by the message, of which the first byte of the
// encrypted tag block, the encrypted message and the MAC are sent. Such a
// chunk, every full one, is sealed by x/crypto's AEAD in one pass over the
// message. The last chunk, and any chunk where that AEAD is not allowed
// (FIPS 140-only mode), is sealed by push, in place.
func (s *streamState) pushInPlace(buf []byte, mlen int, tag byte) []byte {
	if mlen%8 != 0 || s.aeadCipher() == nil {
		return s.push(buf[inPlaceRoom:], buf[inPlaceMessage:inPlaceMessage+mlen], tag)
	}
	return s.sealAEAD(buf, mlen, tag)
}

// sealAEAD is pushInPlace's AEAD path, for an mlen that is a multiple of 8
// once s.aeadCipher() is not nil.
func (s *streamState) sealAEAD(buf []byte, mlen int, tag byte) []byte {
	buf = buf[:inPlaceMessage+mlen+16]
	buf[0] = tag
	clear(buf[1:inPlaceMessage])
	// Sealed over its own plaintext, within buf's capacity: no copy.
	sealed := s.aead.Seal(buf[:0], s.nonce[:], buf[:inPlaceMessage+mlen], nil)
	var mac [16]byte
	copy(mac[:], sealed[inPlaceMessage+mlen:])
	// Of the encrypted tag block only its first byte is sent, right
	// before the ciphertext of the message.
	buf[inPlaceRoom] = buf[0]
	s.advance(&mac, tag)
	return buf[inPlaceRoom:]
}

// openResult is what pull learned about one sealed chunk.
type openResult struct {
	plain []byte
	tag   byte
	ok    bool // authentic; plain and tag are valid only then
	// claimedTag is the decrypted tag byte even when the chunk is not
	// authentic. It is only a hint for a clearer error message.
	claimedTag byte
}

// pull opens one sealed chunk (at least chunkOverhead bytes) into out, which
// must hold len(sealed)-chunkOverhead bytes. The MAC is checked before any
// byte is decrypted; on failure the state is unchanged and out untouched.
func (s *streamState) pull(out, sealed []byte) openResult {
	mlen := len(sealed) - chunkOverhead
	stream, polyKey := s.chunkKeys()
	var block [64]byte
	block[0] = sealed[0]
	stream.XORKeyStream(block[:], block[:])
	claimed := block[0]
	block[0] = sealed[0] // the MAC covers the encrypted tag byte
	ciphertext := sealed[1 : 1+mlen]
	mac := chunkMAC(&polyKey, &block, ciphertext)
	if !equalMAC(&mac, sealed[1+mlen:]) {
		return openResult{claimedTag: claimed}
	}
	plain := out[:mlen]
	stream.XORKeyStream(plain, ciphertext)
	s.advance(&mac, claimed)
	return openResult{plain: plain, tag: claimed, ok: true, claimedTag: claimed}
}

// inPlaceRoom is the room pullInPlace needs before a sealed chunk: the
// 64-byte tag block less the encrypted tag byte, which the chunk begins
// with.
const inPlaceRoom = 63

// pullInPlace is pull for a sealed chunk read into buf[inPlaceRoom:]: the
// plaintext is returned inside buf, and buf is overwritten whether the
// chunk authenticates or not. The state changes only when it does.
//
// A chunk is RFC 8439's ChaCha20-Poly1305 AEAD of the tag block (the tag
// byte and 63 zeros) followed by the message, with the chunk's key and
// nonce and no additional data, of which only the first byte of the
// encrypted tag block is sent: the MAC covers the ciphertext of all 64
// bytes, the message starts at block 2. Only the zero padding after the
// ciphertext differs (see chunkMAC), and not when the message length is a
// multiple of 8, as every chunk but the last is. Such a chunk is opened by
// x/crypto's AEAD, which decrypts and authenticates in one pass with
// vector instructions where the CPU has them, once the 63 unsent bytes
// (block 1 of the keystream) are put back in front of the ciphertext. The
// last chunk, and any chunk where that AEAD is not allowed (FIPS 140-only
// mode), is opened by pull, in place.
func (s *streamState) pullInPlace(buf []byte) openResult {
	sealed := buf[inPlaceRoom:]
	mlen := len(sealed) - chunkOverhead
	if mlen%8 != 0 || s.aeadCipher() == nil {
		// pull checks the MAC before it decrypts, so the plaintext may
		// take the place of the ciphertext.
		return s.pull(sealed[1:], sealed)
	}
	stream, err := chacha20.NewUnauthenticatedCipher(s.key[:], s.nonce[:])
	if err != nil {
		panic("codec: chacha20: " + err.Error()) // only for wrong lengths
	}
	stream.SetCounter(1)
	var block [64]byte
	block[0] = sealed[0]
	stream.XORKeyStream(block[:], block[:])
	claimed := block[0]
	// The ciphertext of the tag block: the byte sent (sealed[0], which
	// is buf[inPlaceRoom]), then block 1 of the keystream XOR zeros.
	buf[0] = sealed[0]
	copy(buf[1:64], block[1:])
	clear(block[:])
	var mac [16]byte
	copy(mac[:], sealed[1+mlen:])
	opened, err := s.aead.Open(buf[:0], s.nonce[:], buf[:64+mlen+16], nil)
	if err != nil {
		return openResult{claimedTag: claimed}
	}
	s.advance(&mac, claimed)
	return openResult{plain: opened[64:], tag: claimed, ok: true, claimedTag: claimed}
}

// aeadCipher returns the ChaCha20-Poly1305 AEAD under the current key, or
// nil where it is not allowed.
func (s *streamState) aeadCipher() cipher.AEAD {
	if s.aead == nil {
		if a, err := chacha20poly1305.New(s.key[:]); err == nil {
			s.aead = a
		}
	}
	return s.aead
}

// equalMAC compares a computed MAC with the one on the wire in constant time.
func equalMAC(mac *[16]byte, wire []byte) bool {
	return subtle.ConstantTimeCompare(mac[:], wire) == 1
}
