package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const contentIDKnownAnswer = "hmac-sha256:ed32a5a33196707abde77fc9f7439d4c80389bba9c62013ef46efa0160b42282"

// readAllChecked reads a whole object and returns the plaintext and error.
func readAllChecked(object []byte, c Compression, key *Key) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(object), c, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// TestBitFlips flips one bit at many positions of an encrypted object: every
// flip fails authentication.
func TestBitFlips(t *testing.T) {
	key := testKey(11)
	for _, c := range allCompressions {
		plain := pseudoWALBytes(6, 40000)
		object := encode(t, plain, c, key, 0)
		step := max(1, len(object)/100)
		for pos := 0; pos < len(object); pos += step {
			for _, bit := range []byte{0x01, 0x80} {
				bad := bytes.Clone(object)
				bad[pos] ^= bit
				_, err := readAllChecked(bad, c, key)
				if !errors.Is(err, ErrAuth) {
					t.Fatalf("%s: bit 0x%02x flipped at %d of %d: error %v, want ErrAuth", c, bit, pos, len(object), err)
				}
			}
		}
		// And the very last byte, the end of the last MAC.
		bad := bytes.Clone(object)
		bad[len(bad)-1] ^= 1
		if _, err := readAllChecked(bad, c, key); !errors.Is(err, ErrAuth) {
			t.Fatalf("%s: last byte flipped: %v", c, err)
		}
	}
}

// TestBitFlipsReleaseNothingAfterFailure: the plaintext returned before the
// error is exactly the chunks before the damaged one.
func TestBitFlipsReleaseNothingAfterFailure(t *testing.T) {
	key := testKey(12)
	plain := pseudoWALBytes(7, 5*8192+10)
	var out bytes.Buffer
	w, _ := NewEncryptWriter(&out, key)
	w.Write(plain)
	w.Close()
	object := out.Bytes()
	for chunk := range 6 {
		bad := bytes.Clone(object)
		bad[streamHeaderSize+chunk*sealedChunkSize+5] ^= 4
		got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(bad), key))
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("chunk %d damaged: %v", chunk, err)
		}
		if !bytes.Equal(got, plain[:chunk*plainChunkSize]) {
			t.Fatalf("chunk %d damaged: got %d bytes, want the %d bytes before it", chunk, len(got), chunk*plainChunkSize)
		}
	}
}

func TestWrongKey(t *testing.T) {
	for _, c := range allCompressions {
		for _, size := range []int{0, 100, 8192, 100000} {
			object := encode(t, pseudoWALBytes(8, size), c, testKey(1), 0)
			for _, wrong := range []*Key{testKey(2), {}} {
				r, _ := NewReader(bytes.NewReader(object), c, wrong)
				buf := make([]byte, 1<<20)
				n, err := r.Read(buf)
				if n != 0 || !errors.Is(err, ErrAuth) {
					t.Fatalf("%s, %d bytes, wrong key: first Read gave %d bytes, %v; want 0 and ErrAuth", c, size, n, err)
				}
				if n, err := r.Read(buf); n != 0 || !errors.Is(err, ErrAuth) {
					t.Fatalf("%s: the error is not sticky: %d, %v", c, n, err)
				}
			}
		}
	}
}

// TestTruncation cuts encrypted objects at every chunk boundary, around
// them, and inside chunks.
func TestTruncation(t *testing.T) {
	key := testKey(13)
	for _, c := range allCompressions {
		for _, size := range []int{0, 8192, 5*8192 + 77} {
			plain := pseudoWALBytes(9, size)
			object := encode(t, plain, c, key, 0)
			if c == None {
				object = encode(t, plain, c, key, 0)
			}
			var cuts []int
			for b := streamHeaderSize; b < len(object); b += sealedChunkSize {
				cuts = append(cuts, b-1, b, b+1, b+16, b+17, b+sealedChunkSize/2)
			}
			cuts = append(cuts, 0, 1, 23, len(object)-17, len(object)-16, len(object)-1)
			for _, cut := range cuts {
				if cut < 0 || cut >= len(object) {
					continue
				}
				got, err := readAllChecked(object[:cut], c, key)
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrAuth) {
					t.Fatalf("%s, %d bytes, cut at %d of %d: %d bytes and error %v; want ErrTruncated or ErrAuth", c, size, cut, len(object), len(got), err)
				}
				if !bytes.HasPrefix(plain, got) {
					t.Fatalf("%s: cut at %d returned bytes that are not the plaintext", c, cut)
				}
			}
		}
	}
}

// TestTruncationAtChunkBoundaryIsTruncated: a cut exactly after a chunk is
// reported as truncation, not as a wrong key.
func TestTruncationAtChunkBoundaryIsTruncated(t *testing.T) {
	key := testKey(14)
	plain := pseudoWALBytes(10, 4*8192+5)
	var out bytes.Buffer
	w, _ := NewEncryptWriter(&out, key)
	w.Write(plain)
	w.Close()
	object := out.Bytes()
	for chunks := 0; chunks <= 4; chunks++ {
		cut := streamHeaderSize + chunks*sealedChunkSize
		got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(object[:cut]), key))
		if !errors.Is(err, ErrTruncated) || errors.Is(err, ErrAuth) {
			t.Fatalf("cut after %d chunks: %v, want ErrTruncated alone", chunks, err)
		}
		if len(got) != chunks*plainChunkSize {
			t.Fatalf("cut after %d chunks: %d bytes", chunks, len(got))
		}
	}
	// Inside a full chunk: truncated, and the error says authentication
	// failed too.
	_, err := io.ReadAll(NewDecryptReader(bytes.NewReader(object[:streamHeaderSize+sealedChunkSize+4000]), key))
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, ErrAuth) {
		t.Fatalf("cut inside a chunk: %v", err)
	}
}

// TestCompressedTruncation cuts unencrypted compressed objects at every
// position: only None may read successfully.
func TestCompressedTruncation(t *testing.T) {
	for _, c := range []Compression{Zstd, LZ4, Brotli} {
		for _, size := range []int{0, 1, 1000, 300000} {
			plain := pseudoWALBytes(11, size)
			object := encode(t, plain, c, nil, 0)
			step := max(1, len(object)/300)
			for cut := 0; cut < len(object); cut += step {
				got, err := readAllChecked(object[:cut], c, nil)
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("%s, %d bytes, cut at %d of %d: %d bytes and %v; want ErrTruncated", c, size, cut, len(object), len(got), err)
				}
			}
			for cut := max(0, len(object)-40); cut < len(object); cut++ {
				if _, err := readAllChecked(object[:cut], c, nil); !errors.Is(err, ErrTruncated) {
					t.Fatalf("%s, %d bytes, cut at %d of %d: %v; want ErrTruncated", c, size, cut, len(object), err)
				}
			}
		}
	}
}

var garbage = [][]byte{
	{0}, {1}, {0, 0}, {0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0},
	[]byte("x"), []byte("garbage"), bytes.Repeat([]byte{0xA5}, 17), bytes.Repeat([]byte{0xA5}, 8209),
	bytes.Repeat([]byte{0}, 10000),
	{0x28, 0xb5, 0x2f, 0xfd}, // zstd magic
	{0x04, 0x22, 0x4d, 0x18}, // lz4 magic
}

// wantTrailingRefused checks the error for bytes after the end of an
// object: ErrCorrupt when the end is the compression frame's, ErrAuth when it
// is the encrypted FINAL chunk's (the bytes join that chunk, which then fails
// authentication). Never ErrTruncated, which callers take for a broken
// transfer and retry.
func wantTrailingRefused(t *testing.T, what string, err error, key *Key) {
	t.Helper()
	want := ErrCorrupt
	if key != nil {
		want = ErrAuth
	}
	if !errors.Is(err, want) || errors.Is(err, ErrTruncated) {
		t.Errorf("%s: %v; want %v", what, err, want)
	}
}

// TestTrailingGarbage appends bytes to whole objects: always refused.
func TestTrailingGarbage(t *testing.T) {
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(15)} {
			if c == None && key == nil {
				continue // nothing marks the end of a plain object
			}
			for _, size := range []int{0, 100, 8192, 30000} {
				object := encode(t, pseudoWALBytes(12, size), c, key, 0)
				for _, extra := range garbage {
					_, err := readAllChecked(append(bytes.Clone(object), extra...), c, key)
					wantTrailingRefused(t, fmt.Sprintf("%s/%s, %d bytes, %d bytes (% x...) appended", c, keyName(key), size, len(extra), extra[:min(4, len(extra))]), err, key)
				}
			}
		}
	}
}

// TestTrailingGarbageInsideEncryption: authentic bytes after the end of the
// compressed stream are refused too.
func TestTrailingGarbageInsideEncryption(t *testing.T) {
	key := testKey(22)
	for _, c := range []Compression{Zstd, LZ4, Brotli} {
		compressed := encode(t, pseudoWALBytes(16, 30000), c, nil, 0)
		for _, extra := range garbage {
			var out bytes.Buffer
			w, _ := NewEncryptWriter(&out, key)
			w.Write(compressed)
			w.Write(extra)
			w.Close()
			if _, err := readAllChecked(out.Bytes(), c, key); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: %d authentic bytes after the compressed stream: %v; want ErrCorrupt", c, len(extra), err)
			}
		}
	}
}

// TestTrailingCopy: an object followed by a copy of itself. For zstd and lz4
// that is a valid stream of two frames elsewhere; here an object is one
// frame.
func TestTrailingCopy(t *testing.T) {
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(16)} {
			if c == None && key == nil {
				continue
			}
			object := encode(t, pseudoWALBytes(13, 20000), c, key, 0)
			_, err := readAllChecked(append(bytes.Clone(object), object...), c, key)
			wantTrailingRefused(t, fmt.Sprintf("%s/%s: object twice", c, keyName(key)), err, key)
		}
	}
}

// TestFullSizeFinalChunk: a chunk of 8192 plaintext bytes tagged FINAL is
// refused, as WAL-G's reader refuses it.
func TestFullSizeFinalChunk(t *testing.T) {
	key := testKey(17)
	var header [streamHeaderSize]byte
	header[0] = 42
	s := newStreamState(key, &header)
	object := append([]byte{}, header[:]...)
	sealed := s.push(make([]byte, sealedChunkSize), make([]byte, plainChunkSize), tagFinal)
	object = append(object, sealed...)
	got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(object), key))
	if !errors.Is(err, ErrCorrupt) || len(got) != 0 {
		t.Fatalf("full-size FINAL chunk: %d bytes, %v; want ErrCorrupt", len(got), err)
	}
	if want := "chunk 1 is full-size and tagged FINAL; a FINAL chunk holds at most 8191 bytes"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestAuthErrorNamesTheChunk: the error for a damaged chunk names it and
// its offset in the stream, so that an operator can compare copies.
func TestAuthErrorNamesTheChunk(t *testing.T) {
	key := testKey(25)
	var out bytes.Buffer
	w, _ := NewEncryptWriter(&out, key)
	w.Write(pseudoWALBytes(18, 3*plainChunkSize))
	w.Close()
	object := out.Bytes()
	object[streamHeaderSize+sealedChunkSize+100] ^= 1 // inside chunk 2
	_, err := io.ReadAll(NewDecryptReader(bytes.NewReader(object), key))
	want := fmt.Sprintf("(chunk 2 at offset %d)", streamHeaderSize+sealedChunkSize)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), want) {
		t.Fatalf("damaged chunk 2: %v; want ErrAuth naming %s", err, want)
	}
}

// TestOtherTags: chunks tagged PUSH or REKEY, or a short MESSAGE chunk at the
// end, are refused.
func TestOtherTags(t *testing.T) {
	key := testKey(18)
	cases := []struct {
		name string
		tags []byte
		size []int
		want error
	}{
		{"short message at end", []byte{tagMessage}, []int{10}, ErrTruncated},
		{"push", []byte{tagPush, tagFinal}, []int{plainChunkSize, 5}, ErrCorrupt},
		{"rekey", []byte{tagRekey, tagFinal}, []int{plainChunkSize, 5}, ErrCorrupt},
		{"final then more", []byte{tagFinal, tagFinal}, []int{5, 5}, ErrAuth},
	}
	for _, tc := range cases {
		var header [streamHeaderSize]byte
		s := newStreamState(key, &header)
		object := append([]byte{}, header[:]...)
		for i, tag := range tc.tags {
			object = append(object, s.push(make([]byte, tc.size[i]+chunkOverhead), make([]byte, tc.size[i]), tag)...)
		}
		_, err := io.ReadAll(NewDecryptReader(bytes.NewReader(object), key))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestRekey checks the state machine past a REKEY tag and a counter wrap,
// which WAL-G streams never use but libsodium defines.
func TestRekey(t *testing.T) {
	key := testKey(19)
	var header [streamHeaderSize]byte
	push := newStreamState(key, &header)
	pull := newStreamState(key, &header)
	push.nonce[0], push.nonce[1], push.nonce[2], push.nonce[3] = 0xfe, 0xff, 0xff, 0xff
	pull.nonce = push.nonce
	for i, tag := range []byte{tagMessage, tagMessage, tagRekey, tagMessage} {
		msg := []byte(fmt.Sprintf("message %d", i))
		sealed := push.push(make([]byte, len(msg)+chunkOverhead), msg, tag)
		res := pull.pull(make([]byte, len(msg)), sealed)
		if !res.ok || res.tag != tag || !bytes.Equal(res.plain, msg) {
			t.Fatalf("message %d does not open", i)
		}
	}
	if push.key != pull.key || push.nonce != pull.nonce {
		t.Fatal("states diverged")
	}
}

func TestEmptyAndShortInputs(t *testing.T) {
	key := testKey(20)
	for _, c := range []Compression{Zstd, LZ4, Brotli, LZMA} {
		if _, err := readAllChecked(nil, c, nil); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: empty object: %v, want ErrTruncated", c, err)
		}
	}
	for _, c := range allCompressions {
		for _, n := range []int{0, 1, 23, 24, 25, 40} {
			if _, err := readAllChecked(make([]byte, n), c, key); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrAuth) {
				t.Errorf("%s: %d zero bytes, encrypted: %v", c, n, err)
			}
		}
	}
	// An encrypted empty payload under a method that needs a frame.
	var out bytes.Buffer
	w, _ := NewEncryptWriter(&out, key)
	w.Close()
	if _, err := readAllChecked(out.Bytes(), Zstd, key); !errors.Is(err, ErrTruncated) {
		t.Errorf("encrypted empty zstd payload: %v, want ErrTruncated", err)
	}
	if got, err := readAllChecked(out.Bytes(), None, key); err != nil || len(got) != 0 {
		t.Errorf("encrypted empty none payload: %d bytes, %v", len(got), err)
	}
}

func TestUndecodableCompressedData(t *testing.T) {
	junk := pseudoWALBytes(14, 5000)
	for _, c := range []Compression{Zstd, LZ4, Brotli, LZMA} {
		_, err := readAllChecked(junk, c, nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: junk: %v, want ErrCorrupt", c, err)
		}
		// Authentic junk: encrypted, so only decompression can object.
		var out bytes.Buffer
		w, _ := NewEncryptWriter(&out, testKey(21))
		w.Write(junk)
		w.Close()
		if _, err := readAllChecked(out.Bytes(), c, testKey(21)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: encrypted junk: %v, want ErrCorrupt", c, err)
		}
	}
}

func TestReaderPassesSourceErrors(t *testing.T) {
	broken := errors.New("connection reset")
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(1)} {
			object := encode(t, pseudoWALBytes(15, 50000), c, key, 0)
			src := io.MultiReader(bytes.NewReader(object[:len(object)/2]), errReader{broken})
			r, _ := NewReader(src, c, key)
			_, err := io.ReadAll(r)
			if !errors.Is(err, broken) {
				t.Errorf("%s/%s: %v, want the source's error", c, keyName(key), err)
			}
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReadAfterClose(t *testing.T) {
	object := encode(t, []byte("x"), Zstd, nil, 0)
	r, _ := NewReader(bytes.NewReader(object), Zstd, nil)
	r.Close()
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}

// TestSourceUnexpectedEOFPassesThrough: a source that fails with
// io.ErrUnexpectedEOF (how an HTTP body cut short ends) is a transport
// error, reported as it is, not taken for the end of the stream.
func TestSourceUnexpectedEOFPassesThrough(t *testing.T) {
	key := testKey(24)
	for _, c := range allCompressions {
		object := encode(t, pseudoWALBytes(17, 300000), c, key, 0)
		for _, cut := range []int{0, 10, streamHeaderSize, streamHeaderSize + 100, streamHeaderSize + sealedChunkSize, len(object) - 1} {
			src := io.MultiReader(bytes.NewReader(object[:cut]), errReader{io.ErrUnexpectedEOF})
			r, _ := NewReader(src, c, key)
			_, err := io.ReadAll(r)
			if err != io.ErrUnexpectedEOF {
				t.Errorf("%s, cut at %d: %v, want io.ErrUnexpectedEOF itself", c, cut, err)
			}
		}
	}
}
