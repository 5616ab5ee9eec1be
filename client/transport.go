package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
)

// Client talks protocol v1 to one gateway for one cluster.
type Client struct {
	cfg  Config
	http *http.Client
	// sleep waits between retries; tests shorten it.
	sleep func(context.Context, time.Duration) error
	// certRequested: a gateway asked for a client certificate and none
	// is configured.
	certRequested atomic.Bool
}

// New builds a client from cfg. It does no network I/O.
func New(cfg Config) (*Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, cfgErr("WALGATE_CA_FILE: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cfgErr("WALGATE_CA_FILE %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	c := &Client{cfg: cfg, sleep: sleepCtx}
	if cfg.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, cfgErr("WALGATE_CLIENT_CERT/WALGATE_CLIENT_KEY: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	} else {
		// Note that the gateway asked for a client certificate: with TLS
		// 1.3 its refusal comes after the handshake, as a broken
		// connection, which transportError then explains.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c.certRequested.Store(true)
			return &tls.Certificate{}, nil
		}
	}
	idle := cfg.Timeout
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &idleConn{Conn: conn, idle: idle}, nil
		},
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// idleConn fails a read or write that makes no progress for idle: a
// gateway that dies or stalls mid-stream is detected, however long the
// transfer.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// request is one protocol call, re-creatable for retries.
type request struct {
	op     string
	method string
	path   string
	header map[string]string
	body   func() (io.Reader, int64, error) // nil: no body
}

// do sends req, retrying transient failures, and returns a response with
// a 2xx status. Any other outcome is an *Error.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, time.Duration(attempt)*500*time.Millisecond); err != nil {
				return nil, lastErr
			}
		}
		resp, err := c.once(ctx, req)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, lastErr
}

func (c *Client) once(ctx context.Context, req request) (*http.Response, error) {
	var body io.Reader
	var length int64
	if req.body != nil {
		var err error
		if body, length, err = req.body(); err != nil {
			return nil, &Error{Kind: ErrRejected, Op: req.op, Message: "preparing the request body failed", Err: err}
		}
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.cfg.URL.String()+req.path, body)
	if err != nil {
		return nil, &Error{Kind: ErrRejected, Op: req.op, Message: "building the request failed", Err: err}
	}
	if req.body != nil {
		hr.ContentLength = length
		if length == 0 {
			hr.Body = http.NoBody
		}
	}
	hr.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	hr.Header.Set("User-Agent", "walgate-client/"+Version)
	for k, v := range req.header {
		hr.Header.Set(k, v)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(req.op, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb protocol.ErrorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, &Error{Kind: kindOfCode("", resp.StatusCode), Op: req.op, Status: resp.StatusCode,
			Message: fmt.Sprintf("unexpected HTTP %d from %s (is WALGATE_URL a walgate gateway?): %s", resp.StatusCode, c.cfg.URL.Host, msg)}
	}
	return nil, &Error{Kind: kindOfCode(eb.Error.Code, resp.StatusCode), Op: req.op, Status: resp.StatusCode,
		Code: eb.Error.Code, Message: eb.Error.Message}
}

// transportError explains a failure to reach the gateway.
func (c *Client) transportError(op string, err error) error {
	host := c.cfg.URL.Host
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	switch {
	// Before the general case: a name mismatch also comes wrapped in a
	// CertificateVerificationError, and WALGATE_CA_FILE would not fix it.
	case errors.As(err, &hostErr):
		return &Error{Kind: ErrAuth, Op: op, Message: fmt.Sprintf("the certificate of %s does not name that host; use the host name the certificate was made for", host), Err: err}
	case errors.As(err, &unknownCA) || errors.As(err, &certErr):
		return &Error{Kind: ErrAuth, Op: op, Message: fmt.Sprintf("the certificate of %s is not trusted; if the gateway uses a private CA, set WALGATE_CA_FILE to its PEM file", host), Err: err}
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("%s speaks plain HTTP; use http:// in WALGATE_URL or configure TLS on the gateway", host), Err: err}
	case strings.Contains(err.Error(), "tls: ") || strings.Contains(err.Error(), "certificate"):
		return &Error{Kind: ErrAuth, Op: op, Message: fmt.Sprintf("TLS with %s failed; check WALGATE_CA_FILE and, for mutual TLS, WALGATE_CLIENT_CERT/WALGATE_CLIENT_KEY", host), Err: err}
	case c.cfg.URL.Scheme == "http" && !(errors.As(err, &opErr) && opErr.Op == "dial") && speaksTLS(host, c.cfg.Timeout):
		return &Error{Kind: ErrRejected, Op: op, Message: fmt.Sprintf("the gateway at %s speaks TLS: use https:// in WALGATE_URL", host), Err: err}
	case c.certRequested.Load() && !(errors.As(err, &opErr) && opErr.Op == "dial"):
		return &Error{Kind: ErrAuth, Op: op, Message: fmt.Sprintf("%s asks for a client certificate (mutual TLS) and none is configured: set WALGATE_CLIENT_CERT and WALGATE_CLIENT_KEY", host), Err: err}
	}
	return &Error{Kind: ErrUnavailable, Op: op, Message: fmt.Sprintf("cannot reach the gateway at %s; check that walgate is running and WALGATE_URL is right", host), Err: err}
}

// WhoAmI asks the gateway what it knows of the token: a cheap check of
// URL, TLS and token.
func (c *Client) WhoAmI(ctx context.Context) (protocol.WhoAmI, error) {
	var w protocol.WhoAmI
	resp, err := c.do(ctx, request{op: "check", method: http.MethodGet, path: protocol.WhoAmIPath})
	if err != nil {
		return w, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&w); err != nil {
		return w, &Error{Kind: ErrRejected, Op: "check", Message: "the gateway's answer is not valid JSON", Err: err}
	}
	return w, nil
}

// Version is the client's version string, set by the build.
var Version = "dev"

// speaksTLS reports whether the server at host answers a TLS handshake: a
// plain-HTTP request to a TLS port only sees the connection closed. The
// handshake proves the protocol only; nothing is sent over it.
func speaksTLS(host string, timeout time.Duration) bool {
	if timeout <= 0 || timeout > 5*time.Second {
		timeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", host, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // #nosec G402: protocol probe, no data
	if err == nil {
		conn.Close()
		return true
	}
	var alert tls.AlertError
	return errors.As(err, &alert)
}
