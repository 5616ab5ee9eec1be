package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// http:// to a TLS port: the server closes the connection on the first
// plain byte; the client says to use https:// rather than "EOF".
func TestPlainHTTPToTLSPort(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS() // for its certificate
	cfg := srv.TLS.Clone()
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn.(*tls.Conn).Handshake() // fails on plain HTTP, succeeds on the probe
				conn.Close()
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	c, err := New(Config{URL: u, Token: "x", Cluster: "main", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.WhoAmI(context.Background())
	if err == nil || !strings.Contains(err.Error(), "speaks TLS: use https://") || !errors.Is(err, ErrRejected) {
		t.Fatalf("got %v", err)
	}
	// A port nobody listens on is still "cannot reach".
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	u2, _ := url.Parse("http://" + addr)
	c2, _ := New(Config{URL: u2, Token: "x", Cluster: "main", Timeout: 2 * time.Second})
	defer c2.Close()
	if _, err = c2.WhoAmI(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("closed port: %v", err)
	}
}
