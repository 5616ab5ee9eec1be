package codec

import (
	"bytes"
	"testing"
)

// pullInPlace must open exactly what pull opens, for every message length
// (those it hands to x/crypto's AEAD and those it leaves to pull) and every
// tag, leave the state as pull does, and refuse a chunk with any byte
// changed without changing the state.
func TestPullInPlaceMatchesPull(t *testing.T) {
	key := testKey(11)
	var header [streamHeaderSize]byte
	for i := range header {
		header[i] = byte(3*i + 1)
	}
	var lengths []int
	for n := 0; n <= 80; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4095, 4096, 4100, plainChunkSize-8, plainChunkSize-1, plainChunkSize)
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
