package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// A segment the archive does not hold is reported as such, naming the
// cluster asked: restore_command's failure is then the normal end of
// archive recovery, and the DBA reading the log sees where it looked.
func TestFetchWALNotFoundNamesTheArchive(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token(cluster, "push", "fetch"), nil)
	dst := t.TempDir()
	err := c.FetchWAL(context.Background(), seg1, filepath.Join(dst, "RECOVERYXLOG"))
	ce := wantKind(t, "fetch of an unarchived name", err, client.ErrNotFound)
	if want := seg1 + " is not in the archive of cluster " + cluster; ce.Message != want {
		t.Fatalf("message %q, want %q", ce.Message, want)
	}
	assertDirHolds(t, dst)
}

// A gateway that began to serve a segment proves it is archived: a 404
// from the next attempt (another gateway of a fleet that shares no
// catalog) is then a failure to retry, not the end of the archive, which
// would end recovery early.
func TestFetchWALServedThenNotFound(t *testing.T) {
	t.Parallel()
	good := goodAnswer(t, walLike(t, 1<<20))
	damaged := good
	damaged.body = slices.Clone(good.body)
	damaged.body[len(damaged.body)/2] ^= 1
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"not archived"}}`)
			return
		}
		h := w.Header()
		h.Set(protocol.HeaderContentSHA256, damaged.sha)
		h.Set(protocol.HeaderCompression, string(codec.Zstd))
		h.Set(protocol.HeaderEncryption, protocol.EncryptionNone)
		h.Set("Content-Length", strconv.Itoa(len(damaged.body)))
		w.Write(damaged.body)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "wgt1.main."+strings.Repeat("A", 43), map[string]string{"WALGATE_RETRIES": "2"})
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	err := c.FetchWAL(context.Background(), seg1, dest)
	ce := wantKind(t, "served, then not found", err, client.ErrUnavailable)
	if errors.Is(err, client.ErrNotFound) {
		t.Fatalf("%v: reported as not archived", err)
	}
	if !strings.Contains(ce.Message, "one gateway began to serve this file and another reports it not archived") ||
		!strings.Contains(ce.Message, "not archived") {
		t.Fatalf("message %q", ce.Message)
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("%d requests, want 3 (the damaged copy, then two 404s: each retried like an unavailable gateway)", got)
	}
	assertDirHolds(t, filepath.Dir(dest))
}

// A transfer that breaks off before the announced length is a broken
// transfer, retried and then reported as the gateway being unavailable
// (archive recovery tries again later); a complete answer whose bytes do
// not decode is an integrity failure. Either way nothing appears at %p.
func TestFetchWALBrokenOrUndecodable(t *testing.T) {
	t.Parallel()
	plain := walLike(t, 1<<20)
	good := goodAnswer(t, plain)
	cut := good.body[:len(good.body)/2]
	for _, tc := range []struct {
		what string
		// serve answers one request.
		serve   func(w http.ResponseWriter)
		kind    error
		message string
	}{
		{"cut off", func(w http.ResponseWriter) {
			h := w.Header()
			h.Set(protocol.HeaderContentSHA256, good.sha)
			h.Set(protocol.HeaderCompression, string(codec.Zstd))
			h.Set(protocol.HeaderEncryption, protocol.EncryptionNone)
			h.Set("Content-Length", strconv.Itoa(len(good.body)))
			w.Write(cut)
			w.(http.Flusher).Flush()
			// The handler returns short of Content-Length: the server
			// closes the connection.
		}, client.ErrUnavailable, "the transfer broke after " + strconv.Itoa(len(cut)) + " of " + strconv.Itoa(len(good.body)) + " bytes"},
		{"stored cut short", func(w http.ResponseWriter) {
			// The whole answer arrives, but the object it holds is a
			// zstd frame cut in half (its SHA-256 matches).
			sum := sha256.Sum256(cut)
			h := w.Header()
			h.Set(protocol.HeaderContentSHA256, hex.EncodeToString(sum[:]))
			h.Set(protocol.HeaderCompression, string(codec.Zstd))
			h.Set(protocol.HeaderEncryption, protocol.EncryptionNone)
			h.Set("Content-Length", strconv.Itoa(len(cut)))
			w.Write(cut)
		}, client.ErrIntegrity, "the archived object does not decode"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				tc.serve(w)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, "wgt1.main."+strings.Repeat("A", 43), nil)
			dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
			err := c.FetchWAL(context.Background(), seg1, dest)
			ce := wantKind(t, tc.what, err, tc.kind)
			if ce.Message != tc.message {
				t.Fatalf("%s: message %q, want %q", tc.what, ce.Message, tc.message)
			}
			if got := n.Load(); got != 3 {
				t.Fatalf("%s: %d requests, want 3", tc.what, got)
			}
			assertDirHolds(t, filepath.Dir(dest))
		})
	}
}
