package codec

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestEncodeSplitRoundTrip: the object EncodeSplit writes is one zstd frame
// (NewReader refuses anything after the first) whose content and checksum
// are the input's, sealed as one stream; plain gets the input in order;
// and it is about as small as NewWriter's object of the same input.
func TestEncodeSplitRoundTrip(t *testing.T) {
	random := make([]byte, 2*splitHold+3<<20) // the second half overflows the hold
	rand.Read(random)
	inputs := map[string][]byte{
		"pseudo-WAL 16 MiB": pseudoWALBytes(3, 16<<20),
		"pseudo-WAL odd":    pseudoWALBytes(4, SplitMin+12345),
		"pseudo-WAL min":    pseudoWALBytes(5, SplitMin),
		"random":            random,
	}
	for name, plain := range inputs {
		for _, key := range []*Key{nil, testKey(9)} {
			t.Run(name+"/"+keyName(key), func(t *testing.T) {
				var out, seen bytes.Buffer
				n, err := EncodeSplit(&out, bytes.NewReader(plain), int64(len(plain)), key, LevelDefault, &seen)
				if err != nil || n != int64(len(plain)) {
					t.Fatalf("EncodeSplit: %d of %d bytes, %v", n, len(plain), err)
				}
				if !bytes.Equal(seen.Bytes(), plain) {
					t.Fatal("plain did not get the input in order")
				}
				got, err := decode(out.Bytes(), Zstd, key)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatal("the decoded object differs from the input")
				}
				one := encode(t, plain, Zstd, key, 256<<10)
				if d := out.Len() - len(one); d > len(one)/100+1024 {
					t.Errorf("split object %d bytes, one encoder's %d", out.Len(), len(one))
				}
				t.Logf("%d bytes in, %d out (one encoder: %d)", len(plain), out.Len(), len(one))
			})
		}
	}
}

// TestEncodeSplitChecksum: the joined frame carries the checksum of the
// whole content, which the decoder checks: a changed checksum is refused.
func TestEncodeSplitChecksum(t *testing.T) {
	plain := pseudoWALBytes(6, 4<<20)
	var out bytes.Buffer
	if _, err := EncodeSplit(&out, bytes.NewReader(plain), int64(len(plain)), nil, LevelDefault, nil); err != nil {
		t.Fatal(err)
	}
	object := out.Bytes()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	if got, err := dec.DecodeAll(object, nil); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("klauspost's decoder: %v", err)
	}
	object[len(object)-1] ^= 0x01
	if _, err := decode(object, Zstd, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a changed frame checksum gave %v, want ErrCorrupt", err)
	}
}

// TestEncodeSplitShortSource: a source shorter than the size given fails
// and writes no complete object.
func TestEncodeSplitShortSource(t *testing.T) {
	plain := pseudoWALBytes(7, 2<<20)
	for _, short := range []int{len(plain) - 1, len(plain) / 2, len(plain)/2 - 1} {
		t.Run(fmt.Sprint(short), func(t *testing.T) {
			var out bytes.Buffer
			_, err := EncodeSplit(&out, bytes.NewReader(plain[:short]), int64(len(plain)), testKey(2), LevelDefault, nil)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
			}
			if _, err := decode(out.Bytes(), Zstd, testKey(2)); err == nil {
				t.Fatal("a failed EncodeSplit left an object that decodes")
			}
		})
	}
	if _, err := EncodeSplit(io.Discard, bytes.NewReader(plain), SplitMin-1, nil, LevelDefault, nil); err == nil {
		t.Fatal("EncodeSplit took less than SplitMin bytes")
	}
}

// TestEncodeSplitSinkError: a failing sink fails the whole encode, also
// while the second half waits for the first.
func TestEncodeSplitSinkError(t *testing.T) {
	random := make([]byte, 2*splitHold+3<<20)
	rand.Read(random)
	boom := errors.New("disk full")
	for _, n := range []int{1, 2, 60, 130} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			_, err := EncodeSplit(&onceFailingWriter{n: n, err: boom}, bytes.NewReader(random), int64(len(random)), nil, LevelDefault, nil)
			if !errors.Is(err, boom) {
				t.Fatalf("got %v, want %v", err, boom)
			}
		})
	}
}
