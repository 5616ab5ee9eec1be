package codec

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"
)

// fuzzKeys: 0 is no key; 1 and 2 are the keys of the WAL-G vectors, so
// that the vector seeds decode.
func fuzzKey(t testing.TB, choice uint8) *Key {
	switch choice % 3 {
	case 1:
		k, err := ParseKey("ebb339b459ce6ef0a98626263531f169e34ede0425cd9cd9e8439a0cc520b13d", "hex")
		if err != nil {
			t.Fatal(err)
		}
		return k
	case 2:
		k, err := ParseKey("walgate-vector-raw-passphrase-0123456789", "none")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	return nil
}

var fuzzCompressions = []Compression{Zstd, LZ4, Brotli, None, LZMA}

func compressionIndex(c Compression) uint8 {
	for i, f := range fuzzCompressions {
		if f == c {
			return uint8(i)
		}
	}
	panic(c)
}

// addVectorSeeds adds the WAL-G objects of up to 16 KiB: all backup history
// files, and the segments that compress that far (zstd, brotli, lzma).
// Larger seeds would make the fuzzer spend its time minimizing them.
func addVectorSeeds(f *testing.F, add func(object []byte, c Compression, keyChoice uint8)) {
	keyChoices := map[string]uint8{"zstd-libsodium": 1, "brotli-libsodium": 1, "lz4-libsodium-rawkey": 2}
	for _, variant := range walgVariants {
		v := loadVector(f, variant)
		for _, obj := range v.WALObjects {
			if obj.ObjectSize <= 16<<10 {
				add(v.readObject(f, obj.Object), compressionOf(f, filepath.Base(obj.Object)), keyChoices[variant])
			}
		}
	}
}

// addWriterSeeds adds small objects from our own writer.
func addWriterSeeds(f *testing.F, add func(object []byte, c Compression, keyChoice uint8)) {
	for _, c := range allCompressions {
		for _, keyChoice := range []uint8{0, 1} {
			for _, size := range []int{0, 1, 100, 8192, 9000} {
				add(encode(f, pseudoWALBytes(99, size), c, fuzzKey(f, keyChoice), 0), c, keyChoice)
			}
		}
	}
}

// readAllSmall reads r with small, odd-sized buffers, up to limit bytes,
// checking the io.Reader contract on the way: after an error no more bytes
// come. The limit keeps the fuzzer fast on inputs that decode to whole
// segments (the vector seeds) or to decompression bombs; it returns a nil
// error when reached.
func readAllSmall(t *testing.T, r io.Reader, limit int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 3000)
	for len(out) < limit {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if n2, err2 := r.Read(buf); n2 != 0 || err2 == nil {
				t.Fatalf("Read after error %v returned %d bytes, %v", err, n2, err2)
			}
			return out, err
		}
	}
	return out, nil
}

func checkErrorKind(t *testing.T, err error) {
	if err == nil || err == io.EOF {
		return
	}
	if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error of no kind: %v", err)
	}
}

func FuzzDecrypt(f *testing.F) {
	addVectorSeeds(f, func(object []byte, c Compression, keyChoice uint8) {
		if keyChoice != 0 {
			f.Add(object, keyChoice)
		}
	})
	addWriterSeeds(f, func(object []byte, c Compression, keyChoice uint8) {
		if keyChoice != 0 {
			f.Add(object, keyChoice)
		}
	})
	f.Fuzz(func(t *testing.T, object []byte, keyChoice uint8) {
		key := fuzzKey(t, keyChoice)
		if key == nil {
			key = fuzzKey(t, 1)
		}
		plain, err := readAllSmall(t, NewDecryptReader(bytes.NewReader(object), key), len(object)+1)
		if err == io.EOF {
			// A complete stream has exactly the size WAL-G's writer gives.
			n := len(plain)
			if want := streamHeaderSize + (n/plainChunkSize)*sealedChunkSize + n%plainChunkSize + chunkOverhead; len(object) != want {
				t.Fatalf("accepted a %d-byte stream for %d bytes of plaintext; the framing gives %d", len(object), n, want)
			}
			return
		}
		checkErrorKind(t, err)
		// Before an error, only whole authentic MESSAGE chunks come out.
		if len(plain)%plainChunkSize != 0 {
			t.Fatalf("%d bytes returned before %v: not whole chunks", len(plain), err)
		}
		if errors.Is(err, ErrAuth) && len(plain) > (len(object)-streamHeaderSize)/sealedChunkSize*plainChunkSize {
			t.Fatal("more plaintext than authentic chunks")
		}
	})
}

func FuzzReader(f *testing.F) {
	add := func(object []byte, c Compression, keyChoice uint8) {
		f.Add(object, compressionIndex(c), keyChoice)
	}
	addVectorSeeds(f, add)
	addWriterSeeds(f, add)
	f.Fuzz(func(t *testing.T, object []byte, method uint8, keyChoice uint8) {
		c := fuzzCompressions[int(method)%len(fuzzCompressions)]
		key := fuzzKey(t, keyChoice)
		r, err := NewReader(bytes.NewReader(object), c, key)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = readAllSmall(t, r, 1<<20)
		checkErrorKind(t, err)
		if err == io.EOF && key != nil {
			if checkSealedSize(int64(len(object))) != nil {
				t.Fatalf("accepted an encrypted object of impossible size %d", len(object))
			}
		}
	})
}
