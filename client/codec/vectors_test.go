package codec

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// vectorsDir is where the stock WAL-G archives live: testdata/walg at the
// project root (copied from stock WAL-G archives; see its README.md).
const vectorsDir = "../../testdata/walg"

// walgVariants are the vector folders; every one must be present.
var walgVariants = []string{"lz4-plain", "zstd-libsodium", "brotli-libsodium", "lzma-plain", "lz4-libsodium-rawkey"}

type walgVector struct {
	Variant           string `json:"variant"`
	CompressionMethod string `json:"compression_method"`
	Encryption        *struct {
		Key             string `json:"WALG_LIBSODIUM_KEY"`
		Transform       string `json:"WALG_LIBSODIUM_KEY_TRANSFORM"`
		EffectiveKeyHex string `json:"effective_key_hex"`
	} `json:"encryption"`
	WALObjects []struct {
		Object        string `json:"object"`
		Name          string `json:"name"`
		ObjectSize    int64  `json:"object_size"`
		ObjectSHA256  string `json:"object_sha256"`
		DecodedSize   int64  `json:"decoded_size"`
		DecodedSHA256 string `json:"decoded_sha256"`
	} `json:"wal_objects"`
	Plain []struct {
		File    string `json:"file"`
		Segment string `json:"segment"`
		Object  string `json:"object"`
	} `json:"plain"`

	dir string
}

func loadVector(t testing.TB, variant string) *walgVector {
	t.Helper()
	dir := filepath.Join(vectorsDir, variant)
	raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatalf("WAL-G test vectors missing (expected at %s): %v", vectorsDir, err)
	}
	var v walgVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s/expected.json: %v", variant, err)
	}
	if len(v.WALObjects) == 0 {
		t.Fatalf("%s/expected.json lists no WAL objects", variant)
	}
	v.dir = dir
	return &v
}

// key returns the vector's key, parsed from the WAL-G settings.
func (v *walgVector) key(t testing.TB) *Key {
	t.Helper()
	if v.Encryption == nil {
		return nil
	}
	key, err := ParseKey(v.Encryption.Key, v.Encryption.Transform)
	if err != nil {
		t.Fatalf("%s: ParseKey: %v", v.Variant, err)
	}
	if got := hex.EncodeToString(key[:]); got != v.Encryption.EffectiveKeyHex {
		t.Fatalf("%s: effective key %s, want %s", v.Variant, got, v.Encryption.EffectiveKeyHex)
	}
	return key
}

func (v *walgVector) readObject(t testing.TB, object string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(v.dir, filepath.FromSlash(object)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// compressionOf finds the method from the object name, as a reader must.
func compressionOf(t testing.TB, object string) Compression {
	t.Helper()
	ext := strings.TrimPrefix(path.Ext(object), ".")
	c, err := CompressionFromExt(ext)
	if err != nil {
		t.Fatalf("%s: %v", object, err)
	}
	return c
}

// TestWALGVectors decodes every WAL object that stock WAL-G wrote and
// checks the plaintext against what PostgreSQL archived.
func TestWALGVectors(t *testing.T) {
	for _, variant := range walgVariants {
		t.Run(variant, func(t *testing.T) {
			v := loadVector(t, variant)
			key := v.key(t)
			for _, obj := range v.WALObjects {
				object := v.readObject(t, obj.Object)
				if sum := sha256.Sum256(object); hex.EncodeToString(sum[:]) != obj.ObjectSHA256 || int64(len(object)) != obj.ObjectSize {
					t.Fatalf("%s: the stored object is not the one expected.json describes", obj.Object)
				}
				c := compressionOf(t, obj.Object)
				if string(c) != v.CompressionMethod {
					t.Fatalf("%s: extension gives %s, expected.json says %s", obj.Object, c, v.CompressionMethod)
				}
				if key != nil {
					// The WAL-G size formula holds for every encrypted object.
					if err := checkSealedSize(int64(len(object))); err != nil {
						t.Errorf("%s: %v", obj.Object, err)
					}
				}
				r, err := NewReader(bytes.NewReader(object), c, key)
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				n, err := io.Copy(h, r)
				if err != nil {
					t.Fatalf("%s: %v", obj.Object, err)
				}
				r.Close()
				if n != obj.DecodedSize || hex.EncodeToString(h.Sum(nil)) != obj.DecodedSHA256 {
					t.Errorf("%s: decoded %d bytes sha256 %x, want %d bytes %s", obj.Object, n, h.Sum(nil), obj.DecodedSize, obj.DecodedSHA256)
				}
			}
		})
	}
}

// checkSealedSize checks that size is a possible encrypted stream size
// under WAL-G's formula 24 + floor(n/8192)*8209 + n%8192 + 17.
func checkSealedSize(size int64) error {
	body := size - streamHeaderSize
	if body < chunkOverhead || body%sealedChunkSize < chunkOverhead {
		return errors.New("size does not fit the secretstream framing")
	}
	return nil
}

// TestWALGVectorsPlainSegments compares the decoding byte for byte with the
// raw segments PostgreSQL handed to archive_command.
func TestWALGVectorsPlainSegments(t *testing.T) {
	compared := 0
	for _, variant := range walgVariants {
		v := loadVector(t, variant)
		key := v.key(t)
		for _, p := range v.Plain {
			gz, err := os.Open(filepath.Join(v.dir, filepath.FromSlash(p.File)))
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(gz)
			if err != nil {
				t.Fatal(err)
			}
			want, err := io.ReadAll(zr)
			gz.Close()
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewReader(bytes.NewReader(v.readObject(t, p.Object)), compressionOf(t, p.Object), key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatalf("%s %s: %v", variant, p.Object, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s: decoded segment differs from %s", variant, p.Object, p.File)
			}
			compared++
		}
	}
	if compared == 0 {
		t.Fatal("no plain segments found in the vectors")
	}
}

// TestWALGVectorsWrongKey: a wrong key fails authentication and yields no
// plaintext at all.
func TestWALGVectorsWrongKey(t *testing.T) {
	for _, variant := range walgVariants {
		v := loadVector(t, variant)
		key := v.key(t)
		if key == nil {
			continue
		}
		wrong := *key
		wrong[31] ^= 1
		for _, obj := range v.WALObjects {
			r, _ := NewReader(bytes.NewReader(v.readObject(t, obj.Object)), compressionOf(t, obj.Object), &wrong)
			got, err := io.ReadAll(r)
			if !errors.Is(err, ErrAuth) || len(got) != 0 {
				t.Errorf("%s %s with a wrong key: %d bytes, error %v; want 0 bytes and ErrAuth", variant, obj.Object, len(got), err)
			}
		}
	}
}

// TestWALGVectorsStrictEnd: every vector object, cut anywhere or with a byte
// appended, fails with the right error.
func TestWALGVectorsStrictEnd(t *testing.T) {
	for _, variant := range walgVariants {
		v := loadVector(t, variant)
		key := v.key(t)
		obj := v.WALObjects[0]
		object := v.readObject(t, obj.Object)
		c := compressionOf(t, obj.Object)
		cuts := []int{0, 1, len(object) / 2, len(object) - 17, len(object) - 1}
		if key != nil {
			cuts = append(cuts, streamHeaderSize, streamHeaderSize+sealedChunkSize)
		}
		for _, cut := range cuts {
			if cut < 0 || cut >= len(object) {
				continue
			}
			_, err := io.ReadAll(mustReader(t, object[:cut], c, key))
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrAuth) {
				t.Errorf("%s %s cut at %d of %d: error %v, want ErrTruncated or ErrAuth", variant, obj.Object, cut, len(object), err)
			}
		}
		for _, extra := range [][]byte{{0}, []byte("garbage"), bytes.Repeat([]byte{0xA5}, 9000)} {
			_, err := io.ReadAll(mustReader(t, append(bytes.Clone(object), extra...), c, key))
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s %s with %d bytes appended: error %v, want ErrCorrupt", variant, obj.Object, len(extra), err)
			}
		}
	}
}

func mustReader(t testing.TB, object []byte, c Compression, key *Key) io.ReadCloser {
	t.Helper()
	r, err := NewReader(bytes.NewReader(object), c, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
