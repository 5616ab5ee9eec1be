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
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
)

// Client talks protocol v1 for one cluster to one gateway, or to the first
// of a list of gateways of one fleet that answers.
type Client struct {
	cfg  Config
	http *http.Client
	// preferred is the index in cfg.URLs of the gateway tried first: the
	// last one that answered.
	preferred atomic.Int32
	// statePath, when set, is the file that remembers the preferred
	// gateway between runs (see UseGatewayState).
	statePath string
	// sleep waits between retries; tests shorten it.
	sleep func(context.Context, time.Duration) error
	// certRequested: a gateway asked for a client certificate and none
	// is configured.
	certRequested atomic.Bool
	// bootIDPath replaces BootIDPath (prefetch records); tests set it.
	bootIDPath string
	// loadRoots, when set, puts the trusted roots (the system's and
	// WALGATE_CA_FILE's) into the TLS configuration; rootsOnce runs it
	// before the first https request.
	loadRoots func()
	rootsOnce sync.Once
}

// New builds a client from cfg. It does no network I/O.
func New(cfg Config) (*Client, error) {
	if len(cfg.URLs) == 0 && cfg.URL != nil {
		cfg.URLs = []*url.URL{cfg.URL}
	}
	if len(cfg.URLs) == 0 {
		return nil, cfgErr("no gateway URL configured: set WALGATE_URL")
	}
	cfg.URL = cfg.URLs[0]
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	c := &Client{cfg: cfg, sleep: sleepCtx}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, cfgErr("WALGATE_CA_FILE: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, cfgErr("WALGATE_CA_FILE %s holds no PEM certificate", cfg.CAFile)
		}
		// The system's roots join the file's before the first https
		// request, not here: reading them costs tens of milliseconds of
		// CPU, and a wal-fetch served from the prefetch directory sends
		// no request at all.
		c.loadRoots = func() {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(pem)
			tc.RootCAs = pool
		}
	}
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
			return newIdleConn(conn, idle), nil
		},
		TLSClientConfig: tc,
		// No ResponseHeaderTimeout: its clock starts when the last byte
		// of a body is handed to the kernel, which on a slow link may
		// still hold megabytes of it. idleConn waits for the answer as
		// long as the body is still leaving, and WALGATE_TIMEOUT after.
		TLSHandshakeTimeout: cfg.Timeout,
		// A backup part waits this long for 100 Continue (the gateway
		// answers within limits.write_slot_wait), then is sent anyway.
		ExpectContinueTimeout: cfg.Timeout,
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
	// streamed: body returns the same one-pass stream each time, so the
	// request moves to another gateway only while none of it was read.
	streamed bool
}

// do sends req, retrying transient failures, and returns a response with
// a 2xx status. Any other outcome is an *Error.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, retryDelay(attempt, lastErr)); err != nil {
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

// once sends req to the preferred gateway and, while a gateway cannot be
// reached, times out or answers 5xx, to the next ones of the list in turn,
// each at most once. A definite answer (2xx, or a 4xx such as 404, 409,
// 401/403) ends the round: another gateway of the fleet would give the
// same one. A request whose body cannot be replayed moves on only while
// none of the body was read. The gateway that answered becomes the
// preferred one.
func (c *Client) once(ctx context.Context, req request) (*http.Response, error) {
	n := len(c.cfg.URLs)
	first := int(c.preferred.Load())
	var errs []error
	for i := range n {
		g := (first + i) % n
		var read *countingReader
		r := req
		if req.streamed && req.body != nil {
			r.body = func() (io.Reader, int64, error) {
				body, size, err := req.body()
				read = &countingReader{r: body}
				return read, size, err
			}
		}
		resp, err := c.onceAt(ctx, r, c.cfg.URLs[g])
		if err == nil || !failsOver(err) {
			// An answer, welcome or not: this gateway works.
			c.prefer(g)
		}
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
		if !failsOver(err) || ctx.Err() != nil || (read != nil && read.n > 0) {
			if len(errs) == 1 {
				return nil, err
			}
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, joinGatewayErrors(req.op, errs)
}

// failsOver reports whether err leaves the request to the next gateway:
// no HTTP answer arrived (connection refused or broken, timeout, TLS
// failure) or the answer was a 5xx.
func failsOver(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.network || e.Status >= 500)
}

// joinGatewayErrors makes one error of a round in which several gateways
// failed. Its kind is that of the last error unless an earlier one is more
// than unavailability (an untrusted certificate, say): that one says what
// to fix.
func joinGatewayErrors(op string, errs []error) error {
	var parts []string
	var worst *Error
	for _, err := range errs {
		parts = append(parts, err.Error())
		var e *Error
		if errors.As(err, &e) && (worst == nil || (worst.Kind == ErrUnavailable && e.Kind != ErrUnavailable)) {
			worst = e
		}
	}
	if worst == nil {
		return errs[len(errs)-1]
	}
	return &Error{Kind: worst.Kind, Op: op, Status: worst.Status, Code: worst.Code, network: worst.network,
		Message: fmt.Sprintf("no gateway of %d answered: %s", len(errs), strings.Join(parts, "; "))}
}

// prefer makes gateway g the first one tried, and remembers it in the
// state file when one is in use and g changed.
func (c *Client) prefer(g int) {
	if c.preferred.Swap(int32(g)) != int32(g) && c.statePath != "" {
		saveGatewayState(c.statePath, c.cfg.URLs[g].String())
	}
}

// rotate moves the preference to the gateway after the preferred one,
// the one that served a stream that broke off: the next attempt starts
// there.
func (c *Client) rotate() {
	if n := len(c.cfg.URLs); n > 1 {
		c.prefer((int(c.preferred.Load()) + 1) % n)
	}
}

// onceAt sends req to the gateway at base, once.
func (c *Client) onceAt(ctx context.Context, req request, base *url.URL) (*http.Response, error) {
	var body io.Reader
	var length int64
	if req.body != nil {
		var err error
		if body, length, err = req.body(); err != nil {
			return nil, &Error{Kind: ErrRejected, Op: req.op, Message: "preparing the request body failed", Err: err}
		}
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, base.String()+req.path, body)
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
	if c.loadRoots != nil && base.Scheme == "https" {
		c.rootsOnce.Do(c.loadRoots)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(req.op, base.Host, err)
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
			Message: fmt.Sprintf("unexpected HTTP %d from %s (is WALGATE_URL a walgate gateway?): %s", resp.StatusCode, base.Host, msg)}
	}
	msg := eb.Error.Message
	if len(c.cfg.URLs) > 1 {
		msg = base.Host + ": " + msg
	}
	return nil, &Error{Kind: kindOfCode(eb.Error.Code, resp.StatusCode), Op: req.op, Status: resp.StatusCode,
		Code: eb.Error.Code, Message: msg, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
}

// transportError explains a failure to reach the gateway.
// Every such error fails over to the next gateway of a list.
func (c *Client) transportError(op, host string, err error) error {
	e := c.classifyTransportError(op, host, err).(*Error)
	e.network = true
	return e
}

func (c *Client) classifyTransportError(op, host string, err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	var stall *errNoProgress
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
	case errors.As(err, &stall):
		return &Error{Kind: ErrUnavailable, Op: op, Message: fmt.Sprintf("the connection to %s made no progress for %s (WALGATE_TIMEOUT): the gateway or the network stalled; on a slow or congested link raise WALGATE_TIMEOUT", host, stall.idle)}
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

// GatewayCheck is what one gateway of WALGATE_URL answered to WhoAmI.
type GatewayCheck struct {
	URL       *url.URL
	Reachable bool // an HTTP answer arrived
	TLS       bool // over HTTPS with a verified certificate
	WhoAmI    protocol.WhoAmI
	Err       error // nil: URL, TLS and token work
}

// CheckGateways asks every gateway of the list, once each, what it knows
// of the token.
func (c *Client) CheckGateways(ctx context.Context) []GatewayCheck {
	out := make([]GatewayCheck, len(c.cfg.URLs))
	for i, u := range c.cfg.URLs {
		gc := GatewayCheck{URL: u}
		resp, err := c.onceAt(ctx, request{op: "check " + u.Host, method: http.MethodGet, path: protocol.WhoAmIPath}, u)
		var e *Error
		gc.Reachable = err == nil || (errors.As(err, &e) && !e.network)
		if err == nil {
			gc.TLS = resp.TLS != nil
			err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&gc.WhoAmI)
			resp.Body.Close()
			if err != nil {
				err = &Error{Kind: ErrRejected, Op: "check " + u.Host, Message: "the gateway's answer is not valid JSON", Err: err}
			}
		} else if gc.Reachable {
			gc.TLS = u.Scheme == "https"
		}
		gc.Err = err
		out[i] = gc
	}
	return out
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
