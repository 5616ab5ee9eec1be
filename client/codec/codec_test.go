package codec

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
)

var allCompressions = []Compression{Zstd, LZ4, Brotli, None}

func testKey(b byte) *Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return &k
}

// encode writes plain through NewWriter, with writes of chunk bytes at a
// time (all at once when chunk is 0).
func encode(t testing.TB, plain []byte, c Compression, key *Key, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, c, key)
	if err != nil {
		t.Fatal(err)
	}
	if chunk == 0 {
		chunk = len(plain) + 1
	}
	for rest := plain; len(rest) > 0; {
		n := min(chunk, len(rest))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write: %d, %v", m, err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func decode(object []byte, c Compression, key *Key) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(object), c, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func keyName(key *Key) string {
	if key == nil {
		return "plain"
	}
	return "key"
}

var roundTripSizes = []int{0, 1, 8191, 8192, 8193, 3 * 8192, 16 << 20}

func TestRoundTrip(t *testing.T) {
	big := pseudoWALBytes(1, 16<<20)
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(7)} {
			for _, size := range roundTripSizes {
				t.Run(fmt.Sprintf("%s/%s/%d", c, keyName(key), size), func(t *testing.T) {
					plain := big[:size]
					for _, chunk := range []int{0, 1000} {
						if chunk != 0 && size > 1<<20 {
							continue
						}
						object := encode(t, plain, c, key, chunk)
						got, err := decode(object, c, key)
						if err != nil {
							t.Fatalf("write chunk %d: decode: %v", chunk, err)
						}
						if !bytes.Equal(got, plain) {
							t.Fatalf("write chunk %d: round trip changed the data (%d bytes in, %d out)", chunk, len(plain), len(got))
						}
					}
				})
			}
		}
	}
}

// TestEncryptedSize checks WAL-G's size formula on our writer.
func TestEncryptedSize(t *testing.T) {
	key := testKey(3)
	for _, n := range []int{0, 1, 16, 8191, 8192, 8193, 2*8192 - 1, 3 * 8192, 100000} {
		plain := pseudoWALBytes(2, n)
		for _, chunk := range []int{0, 1, 8191, 8193} {
			var out bytes.Buffer
			w, err := NewEncryptWriter(&out, key)
			if err != nil {
				t.Fatal(err)
			}
			for rest := plain; len(rest) > 0; {
				m := min(max(chunk, 1), len(rest))
				if chunk == 0 {
					m = len(rest)
				}
				w.Write(rest[:m])
				rest = rest[m:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			want := 24 + (n/8192)*8209 + n%8192 + 17
			if out.Len() != want {
				t.Fatalf("%d bytes written %d at a time: %d bytes out, want %d", n, chunk, out.Len(), want)
			}
			got, err := io.ReadAll(NewDecryptReader(bytes.NewReader(out.Bytes()), key))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%d bytes: decrypt: %v", n, err)
			}
		}
	}
}

// TestEncryptedFraming checks the wire layout chunk by chunk: header, full
// chunks tagged MESSAGE, a last chunk tagged FINAL.
func TestEncryptedFraming(t *testing.T) {
	key := testKey(9)
	plain := pseudoWALBytes(3, 2*8192+100)
	var out bytes.Buffer
	w, _ := NewEncryptWriter(&out, key)
	w.Write(plain)
	w.Close()
	object := out.Bytes()
	var header [streamHeaderSize]byte
	copy(header[:], object)
	s := newStreamState(key, &header)
	body := object[streamHeaderSize:]
	var tags []byte
	var got []byte
	for len(body) > 0 {
		n := min(len(body), sealedChunkSize)
		buf := make([]byte, n)
		res := s.pull(buf, body[:n])
		if !res.ok {
			t.Fatalf("chunk %d does not open", len(tags))
		}
		tags = append(tags, res.tag)
		got = append(got, res.plain...)
		body = body[n:]
	}
	if !bytes.Equal(tags, []byte{tagMessage, tagMessage, tagFinal}) || !bytes.Equal(got, plain) {
		t.Fatalf("tags %v, want [0 0 3]", tags)
	}
	// Two writers never share a header.
	var again bytes.Buffer
	w, _ = NewEncryptWriter(&again, key)
	w.Write(plain)
	w.Close()
	if bytes.Equal(again.Bytes()[:24], object[:24]) {
		t.Fatal("two streams got the same random header")
	}
}

func TestWriterDoesNotCloseDestination(t *testing.T) {
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(1)} {
			dst := &closeRecorder{}
			w, err := NewWriter(dst, c, key)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("segment"))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if dst.closed {
				t.Errorf("%s/%s: Close closed the destination", c, keyName(key))
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Errorf("%s/%s: Write after Close succeeded", c, keyName(key))
			}
		}
	}
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWriterReportsDestinationError(t *testing.T) {
	broken := errors.New("disk full")
	for _, c := range allCompressions {
		for _, key := range []*Key{nil, testKey(1)} {
			w, err := NewWriter(failingWriter{broken}, c, key)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := w.Write(pseudoWALBytes(4, 5<<20))
			cerr := w.Close()
			if !errors.Is(werr, broken) && !errors.Is(cerr, broken) {
				t.Errorf("%s/%s: write error lost: Write %v, Close %v", c, keyName(key), werr, cerr)
			}
		}
	}
}

type failingWriter struct{ err error }

// onceFailingWriter fails its n-th Write (from 1) and accepts every other.
type onceFailingWriter struct {
	n, calls int
	err      error
}

func (f *onceFailingWriter) Write(p []byte) (int, error) {
	f.calls++
	if f.calls == f.n {
		return 0, f.err
	}
	return len(p), nil
}

// TestEncryptWriterReportsOneFailedWrite: a destination that fails one
// write (the header's, a chunk's, the FINAL chunk's) and accepts the rest
// has lost part of the stream: the writer must say so, now or at Close,
// and keep saying so.
func TestEncryptWriterReportsOneFailedWrite(t *testing.T) {
	broken := errors.New("connection reset")
	plain := pseudoWALBytes(5, 3*plainChunkSize+100) // header, 3 chunks, FINAL
	for n := 1; n <= 5; n++ {
		dst := &onceFailingWriter{n: n, err: broken}
		w, err := NewEncryptWriter(dst, testKey(2))
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(plain)
		cerr := w.Close()
		if !errors.Is(werr, broken) && !errors.Is(cerr, broken) {
			t.Errorf("write %d of the stream failed: Write %v, Close %v", n, werr, cerr)
		}
	}
}

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestLZMAIsReadOnly(t *testing.T) {
	if _, err := NewWriter(io.Discard, LZMA, nil); err == nil {
		t.Fatal("NewWriter accepted lzma")
	}
	if _, err := NewWriter(io.Discard, Compression("gzip"), nil); err == nil {
		t.Fatal("NewWriter accepted an unknown method")
	}
	if _, err := NewReader(bytes.NewReader(nil), Compression("gzip"), nil); err == nil {
		t.Fatal("NewReader accepted an unknown method")
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range allCompressions {
		got, err := ParseCompression(string(c))
		if err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %q, %v", c, got, err)
		}
		back, err := CompressionFromExt(c.Ext())
		if err != nil || back != c {
			t.Errorf("CompressionFromExt(%q) = %q, %v", c.Ext(), back, err)
		}
	}
	for _, bad := range []string{"", "lzma", "gzip", "ZSTD", "zst", " lz4"} {
		if _, err := ParseCompression(bad); err == nil {
			t.Errorf("ParseCompression(%q) accepted", bad)
		}
	}
	want := map[Compression]string{Zstd: "zst", LZ4: "lz4", Brotli: "br", LZMA: "lzma", None: ""}
	for c, ext := range want {
		if c.Ext() != ext {
			t.Errorf("%s.Ext() = %q, want %q", c, c.Ext(), ext)
		}
	}
	if c, err := CompressionFromExt("lzma"); err != nil || c != LZMA {
		t.Errorf("CompressionFromExt(lzma) = %q, %v", c, err)
	}
	for _, bad := range []string{"gz", "lzo", ".zst", "zstd", "json"} {
		if _, err := CompressionFromExt(bad); err == nil {
			t.Errorf("CompressionFromExt(%q) accepted", bad)
		}
	}
}

func TestContentID(t *testing.T) {
	segment := pseudoWALBytes(5, 100000)
	plain := NewContentID(nil)
	plain.Write(segment)
	sum := sha256.Sum256(segment)
	if plain.Scheme() != "sha256" || plain.String() != fmt.Sprintf("sha256:%x", sum) {
		t.Fatalf("plain content ID %s", plain)
	}
	keyed := NewContentID(testKey(1))
	keyed.Write(segment)
	other := NewContentID(testKey(2))
	other.Write(segment)
	id := keyed.String()
	if keyed.Scheme() != "hmac-sha256" || len(id) != len("hmac-sha256:")+64 || id[:12] != "hmac-sha256:" {
		t.Fatalf("keyed content ID %s", id)
	}
	if id == other.String() || id[12:] == plain.String()[7:] {
		t.Fatal("content IDs under different keys (or none) agree")
	}
	// Known answer, so that the derivation never changes unnoticed:
	// HMAC-SHA256(HMAC-SHA256(key, "walgate content-id v1"), "").
	empty := NewContentID(testKey(1)).String()
	if empty != contentIDKnownAnswer {
		t.Fatalf("content ID of nothing under testKey(1) = %s, want %s", empty, contentIDKnownAnswer)
	}
	// Incremental writes give the same ID.
	again := NewContentID(testKey(1))
	for i := 0; i < len(segment); i += 333 {
		again.Write(segment[i:min(i+333, len(segment))])
	}
	if again.String() != id {
		t.Fatal("content ID depends on write sizes")
	}
}

// TestSegmentWriter: NewSegmentWriter writes NewWriter's format with
// zstd's window at 256 KiB (window descriptor 0x40), objects that decode
// to the input and are no larger than NewWriter's beyond a few bytes;
// other methods are NewWriter's exactly.
func TestSegmentWriter(t *testing.T) {
	for _, size := range roundTripSizes {
		plain := pseudoWALBytes(11, size)
		for _, key := range []*Key{nil, testKey(12)} {
			var out bytes.Buffer
			w, err := NewSegmentWriter(&out, Zstd, key, LevelDefault)
			if err != nil {
				t.Fatal(err)
			}
			for rest := plain; len(rest) > 0; rest = rest[min(len(rest), 256<<10):] {
				if _, err := w.Write(rest[:min(len(rest), 256<<10)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := decode(out.Bytes(), Zstd, key)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%d bytes, %s: decode %v, equal %v", size, keyName(key), err, bytes.Equal(got, plain))
			}
			one := encode(t, plain, Zstd, key, 256<<10)
			if out.Len() > len(one)+len(one)/200+16 {
				t.Errorf("%d bytes, %s: segment writer %d bytes, NewWriter %d", size, keyName(key), out.Len(), len(one))
			}
			if key == nil && size >= 1<<20 {
				if fhd, wd := out.Bytes()[4], out.Bytes()[5]; fhd&0x20 != 0 || wd != 0x40 {
					t.Errorf("%d bytes: frame header %#02x, window descriptor %#02x, want a 256 KiB window (0x40)", size, fhd, wd)
				}
			}
		}
	}
	plain := pseudoWALBytes(13, 1<<20)
	for _, c := range []Compression{LZ4, Brotli, None} {
		var out bytes.Buffer
		w, err := NewSegmentWriter(&out, c, nil, LevelDefault)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		if !bytes.Equal(out.Bytes(), encode(t, plain, c, nil, 0)) {
			t.Errorf("%s: NewSegmentWriter's object differs from NewWriter's", c)
		}
	}
}
