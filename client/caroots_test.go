package client

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// With WALGATE_CA_FILE, New checks the file but leaves the system's roots
// (tens of milliseconds to read) until the first request, which then
// trusts the file's CA: a wal-fetch served from the prefetch directory
// never reads them.
func TestCAFileRootsReadAtFirstRequest(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	c, err := New(Config{URL: u, Token: "x", Cluster: "main", Timeout: 5 * time.Second, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roots := func() bool { return c.http.Transport.(*http.Transport).TLSClientConfig.RootCAs != nil }
	if roots() {
		t.Fatal("New read the trusted roots before any request")
	}
	c.WhoAmI(context.Background()) // 404: the answer does not matter, the handshake does
	if hits.Load() != 1 || !roots() {
		t.Fatalf("the first request reached the gateway %d times (want 1, over TLS with the CA file's roots); roots read: %v", hits.Load(), roots())
	}

	if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{URL: u, Token: "x", Cluster: "main", Timeout: 5 * time.Second, CAFile: ca}); err == nil || !IsConfigError(err) {
		t.Fatalf("a CA file without a certificate: %v, want a configuration error at once", err)
	}
}
