package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
)

// A tar partition's encrypted stream, made of the format's 8 KiB chunks,
// reaches the gateway in larger pieces: the HTTP request gets a transfer
// chunk per piece the transport copies (32 KiB in net/http), not one per
// encryption chunk.
func TestUploadTarSendsWholeBuffers(t *testing.T) {
	var mu sync.Mutex
	var reads, total int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<20)
		h := sha256.New()
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			mu.Lock()
			if n > 0 {
				reads++
				total += n
			}
			mu.Unlock()
			if err != nil {
				break
			}
		}
		json.NewEncoder(w).Encode(protocol.BackupFile{Size: int64(total), SHA256: hex.EncodeToString(h.Sum(nil))})
	}))
	t.Cleanup(srv.Close)
	key, err := codec.ParseKey("0123456789abcdef0123456789abcdef", "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URL: u, Token: "x", Cluster: "main", Timeout: 5 * time.Second, Compression: codec.Zstd, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	up := &BackupUpload{c: c, Name: "base_000000010000000000000002", files: map[string]protocol.BackupFile{}}
	// Incompressible data, so the stream is about as long as the input.
	const size = 4 << 20
	_, stored, err := c.uploadTar(context.Background(), up, "part_1.tar.zst", codec.Zstd, protocol.EncryptionLibsodium, nil,
		func(w io.Writer) (basebackup.TarResult, error) {
			_, err := io.Copy(w, io.LimitReader(newNoise(), size))
			return basebackup.TarResult{}, err
		})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if total < size || int64(total) != stored {
		t.Fatalf("the gateway received %d bytes, the upload reports %d stored, for %d bytes of input", total, stored, size)
	}
	if max := total / (16 << 10); reads > max {
		t.Errorf("%d reads of the request body for %d bytes, want at most %d (one per 16 KiB or more)", reads, total, max)
	}
}

// noise is a cheap incompressible stream (xorshift).
type noise struct{ s uint64 }

func newNoise() *noise { return &noise{s: 88172645463325252} }

func (n *noise) Read(p []byte) (int, error) {
	for i := range p {
		n.s ^= n.s << 13
		n.s ^= n.s >> 7
		n.s ^= n.s << 17
		p[i] = byte(n.s)
	}
	return len(p), nil
}
