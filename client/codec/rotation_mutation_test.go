package codec

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestSelectKeyOfAnObjectTooShortForAChunk: an object cut before the end
// of its first chunk (anything from 0 to 40 bytes: the 24-byte header
// plus the 17 bytes of the smallest chunk, less one) holds no chunk that
// could authenticate under any key. With several keys to choose from,
// SelectKey then returns the first key and the cut object replayed byte
// for byte, and decoding it reports the truncation, never plaintext.
func TestSelectKeyOfAnObjectTooShortForAChunk(t *testing.T) {
	first, sealer := testKey(21), testKey(22)
	object := encode(t, nil, None, sealer, 0) // the smallest object: 41 bytes
	if len(object) != streamHeaderSize+chunkOverhead {
		t.Fatalf("an empty object encrypts to %d bytes, want %d", len(object), streamHeaderSize+chunkOverhead)
	}
	for cut := 0; cut < len(object); cut++ {
		short := object[:cut]
		k, replay, err := SelectKey(bytes.NewReader(short), []*Key{first, sealer})
		if err != nil {
			t.Fatalf("%d bytes: %v", cut, err)
		}
		if k != first {
			t.Fatalf("%d bytes: SelectKey chose the second key; no chunk is there to authenticate", cut)
		}
		again, err := io.ReadAll(replay)
		if err != nil || !bytes.Equal(again, short) {
			t.Fatalf("%d bytes: replayed %d bytes (%v), want the object as it was", cut, len(again), err)
		}
		got, err := decode(short, None, k)
		if !errors.Is(err, ErrTruncated) || len(got) != 0 {
			t.Fatalf("%d bytes: decoded %d bytes, %v; want nothing and ErrTruncated", cut, len(got), err)
		}
	}
}
