package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/protocol"
)

// ackGateway answers a WAL push with the acknowledgement answer makes from
// the SHA-256, length and content identity of what it received.
func ackGateway(t *testing.T, answer func(sum string, size int64, contentID string) (int, string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		status, body := answer(hex.EncodeToString(h.Sum(nil)), n, r.Header.Get(protocol.HeaderContentID))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func ack(name, status, sum string, size int64, contentID string) string {
	b, _ := json.Marshal(protocol.PutWALResult{Name: name, Status: status, SHA256: sum, Size: size, ContentID: contentID})
	return string(b)
}

// wal-push reports success only when the gateway acknowledges exactly the
// bytes sent (their SHA-256 and length) or an earlier copy with the same
// content: any other acknowledgement fails, so PostgreSQL keeps the
// segment and archives it again.
func TestPushWALChecksTheAcknowledgement(t *testing.T) {
	t.Parallel()
	const name = "000000010000000000000001"
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, walLike(t, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	other := hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for _, tc := range []struct {
		what   string
		answer func(sum string, size int64, cid string) (int, string)
		kind   error // nil: accepted
	}{
		{"stored as sent", func(sum string, size int64, cid string) (int, string) {
			return http.StatusCreated, ack(name, "stored", sum, size, cid)
		}, nil},
		{"exists with the same content", func(sum string, size int64, cid string) (int, string) {
			return http.StatusOK, ack(name, "exists", other, size+5, cid)
		}, nil},
		{"stored with another SHA-256", func(sum string, size int64, cid string) (int, string) {
			return http.StatusCreated, ack(name, "stored", other, size, cid)
		}, client.ErrIntegrity},
		{"stored with another size", func(sum string, size int64, cid string) (int, string) {
			return http.StatusCreated, ack(name, "stored", sum, size-1, cid)
		}, client.ErrIntegrity},
		{"exists with other content", func(sum string, size int64, cid string) (int, string) {
			return http.StatusOK, ack(name, "exists", sum, size, "other")
		}, client.ErrConflict},
		{"unknown status", func(sum string, size int64, cid string) (int, string) {
			return http.StatusCreated, ack(name, "queued", sum, size, cid)
		}, client.ErrUnavailable},
		{"no status", func(sum string, size int64, cid string) (int, string) {
			return http.StatusCreated, ack(name, "", sum, size, cid)
		}, client.ErrUnavailable},
		{"not JSON", func(string, int64, string) (int, string) {
			return http.StatusCreated, "stored"
		}, client.ErrUnavailable},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			srv := ackGateway(t, tc.answer)
			c := newClient(t, srv.URL, "wgt1.main."+string(bytes.Repeat([]byte("A"), 43)), nil)
			res, err := c.PushWAL(context.Background(), path)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("%s: %v", tc.what, err)
				}
				if res.Name != name || res.PlainSize != 1<<20 {
					t.Fatalf("%s: result %+v", tc.what, res)
				}
				return
			}
			wantKind(t, tc.what, err, tc.kind)
		})
	}
}

// A gateway that answers "unavailable" is asked WALGATE_RETRIES more times,
// with a growing wait between attempts (0.5 s, then 1 s), and no file
// appears.
func TestFetchWALRetriesUnavailable(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"no store answers"}}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "wgt1.main."+string(bytes.Repeat([]byte("A"), 43)), map[string]string{"WALGATE_RETRIES": "2"})
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	began := time.Now()
	err := c.FetchWAL(context.Background(), "000000010000000000000001", dest)
	wantKind(t, "fetch from an unavailable gateway", err, client.ErrUnavailable)
	if got := n.Load(); got != 3 {
		t.Fatalf("%d requests with WALGATE_RETRIES=2, want 3", got)
	}
	if d := time.Since(began); d < 1500*time.Millisecond {
		t.Fatalf("three attempts in %v, want waits of 0.5 s and 1 s between them", d)
	}
	assertDirHolds(t, filepath.Dir(dest))
}
