package client_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// shareTokens makes b accept every token a knows.
func shareTokens(t *testing.T, a, b *gatewaytest.Gateway) {
	t.Helper()
	recs, err := a.Server.Catalog().TokenRecords()
	if err != nil {
		t.Fatal(err)
	}
	for hash, rec := range recs {
		if err := b.Server.Catalog().AddToken(hash, rec); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailoverRules: a 5xx moves a push to the next gateway; a definite
// 4xx answer (409 conflict, 404 not found) does not, even when the next
// gateway would have accepted the request.
func TestFailoverRules(t *testing.T) {
	t.Parallel()
	var fault *backendtest.Faulty
	a := gatewaytest.Start(t, gatewaytest.Options{Wrap: func(_ string, b backends.Backend) backends.Backend {
		fault = backendtest.NewFaulty(b)
		return fault
	}})
	b := gatewaytest.Start(t, gatewaytest.Options{})
	token := a.Token(cluster, "push", "fetch")
	shareTokens(t, a, b)
	c := newClient(t, a.URL+","+b.URL, token, nil)
	ctx := context.Background()
	src := t.TempDir()

	// The first gateway's store fails: it answers 503, the second stores.
	fault.SetDown(true)
	if _, err := c.PushWAL(ctx, writeFile(t, src, seg1, []byte("first"))); err != nil {
		t.Fatalf("push with the first gateway answering 503: %v", err)
	}
	if got := storeFiles(t, a); len(got) != 0 {
		t.Fatalf("the failing gateway's store holds %q", got)
	}
	assertStore(t, b, "main/wal_005/"+seg1+".zst")
	fault.SetDown(false)

	// The client now prefers the second gateway; a fresh one starts with
	// the first. It holds seg2; a different seg2 is a conflict there, and
	// the second gateway, which does not hold seg2, is not asked.
	c2 := newClient(t, a.URL+","+b.URL, token, nil)
	if _, err := c2.PushWAL(ctx, writeFile(t, src, seg2, []byte("original"))); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	_, err := c2.PushWAL(ctx, writeFile(t, other, seg2, []byte("different")))
	wantKind(t, "conflicting push", err, client.ErrConflict)
	assertStore(t, b, "main/wal_005/"+seg1+".zst")

	// 404 from the preferred gateway is the answer, though the other
	// gateway holds the file.
	err = c.FetchWAL(ctx, seg2, filepath.Join(t.TempDir(), "x"))
	wantKind(t, "fetch of a name the preferred gateway lacks", err, client.ErrNotFound)
}

// TestURLListConfig: every entry of a WALGATE_URL list is checked, and an
// error names the entry.
func TestURLListConfig(t *testing.T) {
	t.Parallel()
	tok := "wgt1.main." + strings.Repeat("A", 43)
	for _, c := range []struct{ urls, want string }{
		{"http://127.0.0.1:1,http://192.0.2.1:7480", "WALGATE_URL entry 2: refusing plain http://"},
		{"http://127.0.0.1:1,http://127.0.0.1:1/", "WALGATE_URL entry 2 \"http://127.0.0.1:1/\" is listed twice"},
		{"http://127.0.0.1:1,", "WALGATE_URL entry 2 is empty"},
		{"https://a.example,https://u:p@b.example", "WALGATE_URL entry 2"},
		{"https://a.example,b.example:7480", "WALGATE_URL entry 2 \"b.example:7480\" is not an http(s) URL"},
	} {
		env := map[string]string{"WALGATE_URL": c.urls, "WALGATE_TOKEN": tok}
		_, err := client.LoadConfig(func(k string) string { return env[k] })
		if !client.IsConfigError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a configuration error with %q", c.urls, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("%q: the message shows the credentials: %v", c.urls, err)
		}
	}
	env := map[string]string{"WALGATE_URL": " https://a.example:7480/ , https://b.example:7480", "WALGATE_TOKEN": tok}
	cfg, err := client.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.URLs) != 2 || cfg.URL != cfg.URLs[0] || cfg.URLs[0].String() != "https://a.example:7480" || cfg.URLs[1].String() != "https://b.example:7480" {
		t.Fatalf("URLs = %v, URL = %v", cfg.URLs, cfg.URL)
	}
}

// TestFailoverTimeout: a gateway that accepts connections and never
// answers is left after WALGATE_TIMEOUT for the next one.
func TestFailoverTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn) // read nothing, answer nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	b := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, "http://"+ln.Addr().String()+","+b.URL, b.Token(cluster, "push", "fetch"), map[string]string{"WALGATE_TIMEOUT": "1s"})
	began := time.Now()
	if _, err := c.PushWAL(context.Background(), writeFile(t, t.TempDir(), seg1, []byte("x"))); err != nil {
		t.Fatalf("push with a silent first gateway: %v", err)
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Fatalf("the push took %v", d)
	}
	assertStore(t, b, "main/wal_005/"+seg1+".zst")
}
