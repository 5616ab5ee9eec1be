package codec

import (
	"bytes"
	"crypto/fips140"
	"testing"
)

// pullInPlace must open exactly what pull opens, for every message length
// (those it hands to x/crypto's AEAD and those it leaves to pull) and every
// tag, leave the state as pull does, and refuse a chunk with any byte
// changed without changing the state.
func TestPullInPlaceMatchesPull(t *testing.T) {
	key := testKey(11)
	header := testStreamHeader(3, 1)
	lengths := chunkTestLengths()
	push := newStreamState(key, &header)
	generic := newStreamState(key, &header)
	inPlace := newStreamState(key, &header)
	for i, n := range lengths {
		tag := []byte{tagMessage, tagFinal, tagPush, tagRekey}[i%4]
		plain := pseudoWALBytes(uint64(i), n)
		sealed := push.push(make([]byte, n+chunkOverhead), plain, tag)

		for _, at := range []int{0, 1, n / 2, n, n + 1, n + chunkOverhead - 1} {
			if at >= len(sealed) {
				continue
			}
			before := *inPlace
			buf := make([]byte, inPlaceRoom+len(sealed))
			copy(buf[inPlaceRoom:], sealed)
			buf[inPlaceRoom+at] ^= 0x20
			if res := inPlace.pullInPlace(buf); res.ok {
				t.Fatalf("length %d: a chunk with byte %d changed opened", n, at)
			}
			if inPlace.key != before.key || inPlace.nonce != before.nonce {
				t.Fatalf("length %d: a chunk that failed changed the state", n)
			}
		}

		want := generic.pull(make([]byte, n), sealed)
		buf := make([]byte, inPlaceRoom+len(sealed))
		copy(buf[inPlaceRoom:], sealed)
		got := inPlace.pullInPlace(buf)
		if !want.ok || !got.ok || got.tag != tag || want.tag != tag || !bytes.Equal(got.plain, plain) || !bytes.Equal(want.plain, plain) {
			t.Fatalf("length %d, tag %d: pull ok %v tag %d, pullInPlace ok %v tag %d, plaintexts equal %v",
				n, tag, want.ok, want.tag, got.ok, got.tag, bytes.Equal(got.plain, plain))
		}
		if inPlace.key != generic.key || inPlace.nonce != generic.nonce {
			t.Fatalf("length %d: the states differ after opening", n)
		}
	}
}

// pushInPlace must seal exactly what push seals, byte for byte, for every
// message length and every tag, in place, and leave the state as push does.
// Its AEAD path, sealAEAD, must agree with push on its own for every length
// that is a multiple of 8 (the lengths pushInPlace gives it).
func TestPushInPlaceMatchesPush(t *testing.T) {
	key := testKey(12)
	header := testStreamHeader(5, 2)
	lengths := chunkTestLengths()
	for _, tag := range []byte{tagMessage, tagPush, tagRekey, tagFinal} {
		generic := newStreamState(key, &header)
		inPlace := newStreamState(key, &header)
		for i, n := range lengths {
			plain := pseudoWALBytes(uint64(100*int(tag)+i), n)
			before := *generic
			want := generic.push(make([]byte, n+chunkOverhead), plain, tag)

			var buf [inPlaceRoom + sealedChunkSize]byte
			for j := range buf {
				buf[j] = 0xa5 // what was in the buffer must not matter
			}
			copy(buf[inPlaceMessage:], plain)
			got := inPlace.pushInPlace(buf[:], n, tag)
			if !bytes.Equal(got, want) {
				t.Fatalf("length %d, tag %d: pushInPlace sealed %d bytes that differ from push's %d", n, tag, len(got), len(want))
			}
			if &got[0] != &buf[inPlaceRoom] {
				t.Fatalf("length %d: the chunk is not sealed in place", n)
			}
			if inPlace.key != generic.key || inPlace.nonce != generic.nonce {
				t.Fatalf("length %d, tag %d: the states differ after sealing", n, tag)
			}

			if n%8 != 0 || fips140.Enforced() {
				// In FIPS 140-only mode every chunk is sealed by push.
				continue
			}
			aead := before
			aead.aead = nil
			if aead.aeadCipher() == nil {
				t.Fatal("x/crypto's ChaCha20-Poly1305 is not available: the AEAD path is not tested")
			}
			clear(buf[:])
			copy(buf[inPlaceMessage:], plain)
			if got := aead.sealAEAD(buf[:], n, tag); !bytes.Equal(got, want) {
				t.Fatalf("length %d, tag %d: sealAEAD sealed bytes that differ from push's", n, tag)
			}
			if aead.key != generic.key || aead.nonce != generic.nonce {
				t.Fatalf("length %d, tag %d: the states differ after sealAEAD", n, tag)
			}
		}
	}
}

// Sealing a full chunk allocates nothing: it takes the AEAD path, in
// place, with the AEAD made once per key (push, ChaCha20 and Poly1305 apart,
// allocates for every chunk). In FIPS 140-only mode, where that AEAD is not
// allowed, there is no AEAD path.
func TestPushInPlaceFullChunkAllocations(t *testing.T) {
	header := testStreamHeader(7, 3)
	s := newStreamState(testKey(13), &header)
	if fips140.Enforced() {
		if s.aeadCipher() != nil {
			t.Fatal("FIPS 140-only mode, yet the ChaCha20-Poly1305 AEAD is in use")
		}
		return
	}
	var buf [inPlaceRoom + sealedChunkSize]byte
	copy(buf[inPlaceMessage:], pseudoWALBytes(13, plainChunkSize))
	if n := testing.AllocsPerRun(50, func() { s.pushInPlace(buf[:], plainChunkSize, tagMessage) }); n != 0 {
		t.Errorf("sealing a full chunk: %v allocations, want 0", n)
	}
	g := newStreamState(testKey(13), &header)
	if n := testing.AllocsPerRun(50, func() { g.push(buf[inPlaceRoom:], buf[inPlaceMessage:inPlaceMessage+plainChunkSize], tagMessage) }); n == 0 {
		t.Errorf("push allocated nothing per chunk: this test no longer tells the two paths apart")
	}
}

// testStreamHeader is a stream header of bytes mul*i + add.
func testStreamHeader(mul, add int) [streamHeaderSize]byte {
	var header [streamHeaderSize]byte
	for i := range header {
		header[i] = byte(mul*i + add)
	}
	return header
}

// chunkTestLengths are the message lengths the chunk tests try: every
// length up to 80 (every padding), around half a chunk, and the last ones
// below a full chunk.
func chunkTestLengths() []int {
	var lengths []int
	for n := 0; n <= 80; n++ {
		lengths = append(lengths, n)
	}
	return append(lengths, 4095, 4096, 4100, plainChunkSize-16, plainChunkSize-9, plainChunkSize-8, plainChunkSize-1, plainChunkSize)
}
