package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// TestInvalidNames sends hostile and malformed names on PUT and GET, raw
// on the wire: each is refused with a 4xx error and nothing is stored.
func TestInvalidNames(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	body := []byte("not a real WAL segment")
	cases := []struct {
		path string
		code protocol.Code
	}{
		// A literal "../" is resolved by the server before routing: the
		// path then names no route at all.
		{"/v1/clusters/main/wal/../" + seg1, protocol.CodeRouteNotFound},
		{"/v1/clusters/main/wal/../../../catalog.db", protocol.CodeRouteNotFound},
		{"/v1/clusters/main/wal/" + seg1 + "/..", protocol.CodeRouteNotFound},
		{"/v1/clusters/main/wal/..%2F" + seg1, protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/..%2Fwal%2F" + seg1, protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/..%2f..%2f..%2fcatalog.db", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/%2E%2E", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/..", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/" + seg1 + "%2F..", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/" + seg1 + "%00", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/" + seg1[:23], protocol.CodeInvalidName},                // too short
		{"/v1/clusters/main/wal/" + seg1 + "0", protocol.CodeInvalidName},               // too long
		{"/v1/clusters/main/wal/" + strings.Repeat("0", 300), protocol.CodeInvalidName}, // far too long
		{"/v1/clusters/main/wal/00000001000000000000000G", protocol.CodeInvalidName},    // not hex
		{"/v1/clusters/main/wal/00000001000000000000000a", protocol.CodeInvalidName},    // lower-case hex
		{"/v1/clusters/main/wal/0000000a.history", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/000000000000000000000001", protocol.CodeInvalidName}, // timeline 0
		{"/v1/clusters/main/wal/" + seg1 + ".zst", protocol.CodeInvalidName},
		{"/v1/clusters/main/wal/", protocol.CodeRouteNotFound}, // empty name
		{"/v1/clusters/main/wal", protocol.CodeRouteNotFound},
		{"/v1/clusters/..%2Fmain/wal/" + seg1, protocol.CodeInvalidName}, // traversing cluster
		{"/v1/clusters/Main/wal/" + seg1, protocol.CodeInvalidName},
	}
	for _, c := range cases {
		for _, method := range []string{http.MethodPut, http.MethodGet} {
			var r reply
			if method == http.MethodPut {
				r = e.send(t, method, c.path, e.pushFetch, walHeaders(body), body)
			} else {
				r = e.send(t, method, c.path, e.pushFetch, nil, nil)
			}
			want := c.code.Status()
			if r.status != want || r.code != c.code {
				t.Errorf("%s %s: HTTP %d %q (%s), want %d %q", method, c.path, r.status, r.code, r.msg, want, c.code)
			}
		}
	}
	waitStore(t, e.storeDir())
	// The gateway itself is unharmed and still serves a valid push.
	if r := e.put(t, seg1, e.pushFetch, body); r.status != 201 {
		t.Fatalf("valid PUT after the hostile ones: HTTP %d %s %s", r.status, r.code, r.msg)
	}
	waitStore(t, e.storeDir(), "main/wal_005/"+seg1)
}

// TestAuth covers every way a token can be wrong, on PUT and GET.
func TestAuth(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	stored := randBytes(t, 1000)
	if r := e.put(t, seg1, e.push, stored); r.status != 201 {
		t.Fatalf("push-only token pushing: HTTP %d %s %s", r.status, r.code, r.msg)
	}
	if r := e.get(t, seg1, e.fetch); r.status != 200 || !bytes.Equal(r.body, stored) {
		t.Fatalf("fetch-only token fetching: HTTP %d %s %s", r.status, r.code, r.msg)
	}
	revoked := e.g.Token(cluster, "push", "fetch")
	a, err := admin.Dial(e.g.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(protocol.TokenID(revoked)); err != nil {
		t.Fatal(err)
	}
	unknown, err := protocol.NewToken(cluster)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		token  string
		header string // raw Authorization header instead of a bearer token
		code   protocol.Code
	}{
		{"no token", "", "", protocol.CodeUnauthorized},
		{"basic auth", "", "Basic dXNlcjpwYXNz", protocol.CodeUnauthorized},
		{"empty bearer", "", "Bearer ", protocol.CodeUnauthorized},
		{"unknown token", unknown, "", protocol.CodeUnauthorized},
		{"revoked token", revoked, "", protocol.CodeUnauthorized},
		{"garbage token", strings.Repeat("x", 300), "", protocol.CodeUnauthorized},
		{"token of another cluster", e.other, "", protocol.CodeForbidden},
	}
	body := randBytes(t, 1000)
	for _, c := range cases {
		h := walHeaders(body)
		if c.header != "" {
			h["Authorization"] = c.header
		}
		r := e.send(t, http.MethodPut, protocol.WALPath(cluster, seg2), c.token, h, body)
		expect(t, "PUT with "+c.name, r, c.code.Status(), c.code)
		h = map[string]string{}
		if c.header != "" {
			h["Authorization"] = c.header
		}
		r = e.send(t, http.MethodGet, protocol.WALPath(cluster, seg1), c.token, h, nil)
		expect(t, "GET with "+c.name, r, c.code.Status(), c.code)
		if bytes.Contains(r.body, stored[:16]) {
			t.Fatalf("GET with %s leaked object bytes", c.name)
		}
	}
	// The documented bound (docs/operations.md): a token of 256 bytes is
	// looked up (and not found); one of 257 is refused as too long.
	for n, want := range map[int]string{256: "unknown or revoked token", 257: "token too long"} {
		r := e.get(t, seg1, strings.Repeat("x", n))
		expect(t, fmt.Sprintf("GET with a token of %d bytes", n), r, 401, protocol.CodeUnauthorized)
		if !strings.Contains(r.msg, want) {
			t.Errorf("GET with a token of %d bytes: %q, want %q", n, r.msg, want)
		}
	}
	// Scopes.
	expect(t, "PUT with a fetch-only token", e.put(t, seg2, e.fetch, body), 403, protocol.CodeForbidden)
	r := e.get(t, seg1, e.push)
	expect(t, "GET with a push-only token", r, 403, protocol.CodeForbidden)
	if !strings.Contains(r.msg, "fetch") {
		t.Errorf("403 message does not name the missing scope: %s", r.msg)
	}
	// The other cluster's token works for its own cluster only.
	r = e.send(t, http.MethodPut, protocol.WALPath("other", seg2), e.other, walHeaders(body), body)
	if r.status != 201 {
		t.Fatalf("PUT with the other cluster's own token: HTTP %d %s", r.status, r.code)
	}
	// Nothing of the refused pushes reached the store.
	waitStore(t, e.storeDir(), "main/wal_005/"+seg1, "other/wal_005/"+seg2)
	expect(t, "GET of a refused push", e.get(t, seg2, e.pushFetch), 404, protocol.CodeNotFound)
}

// TestTruncatedBody declares N bytes, sends fewer and ends the request.
func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	body := randBytes(t, 200<<10)
	for _, halfClose := range []bool{true, false} {
		for _, sent := range []int{0, 1, 64 << 10, len(body) - 1} {
			conn := dial(t, e.addr)
			req := rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(body), len(body))
			if _, err := conn.Write(append(req, body[:sent]...)); err != nil {
				t.Fatal(err)
			}
			if halfClose {
				// The gateway sees EOF and can still answer.
				if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				// Up to 8 KiB of body are read by the HTTP server before the
				// handler runs; a body ending there is refused as malformed.
				r := readReply(t, conn, http.MethodPut)
				if r.status != 400 || (r.code != protocol.CodeLengthMismatch && r.code != protocol.CodeBadRequest) {
					t.Fatalf("%d of %d bytes: HTTP %d %q (%s), want 400 length_mismatch", sent, len(body), r.status, r.code, r.msg)
				}
			} else {
				conn.Close()
			}
			e.assertNothing(t, seg1)
		}
	}
}

// TestBodyLimits: a declared length above limits.max_wal_bytes is refused
// up front; one at the limit is accepted.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{MaxWALBytes: limit}}})
	big := randBytes(t, limit+1)

	// Declared too large, only the start of the body sent before the
	// client gives up sending: refused at once. (The HTTP server reads up
	// to 8 KiB of body before the handler sees the headers.)
	conn := dial(t, e.addr)
	req := rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(big), len(big))
	if _, err := conn.Write(append(req, big[:16<<10]...)); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r := readReply(t, conn, http.MethodPut)
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("413 took %v", d)
	}
	expect(t, "PUT declaring limit+1 bytes", r, 413, protocol.CodeTooLarge)
	if !strings.Contains(r.msg, "max_wal_bytes") {
		t.Errorf("413 message does not name the limit: %s", r.msg)
	}
	e.assertNothing(t, seg1)

	// Declared too large, body sent: same answer, nothing stored.
	expect(t, "PUT of limit+1 bytes", e.put(t, seg1, e.pushFetch, big), 413, protocol.CodeTooLarge)
	e.assertNothing(t, seg1)

	// Exactly at the limit: stored.
	ok := big[:limit]
	if r := e.put(t, seg1, e.pushFetch, ok); r.status != 201 {
		t.Fatalf("PUT of exactly max_wal_bytes: HTTP %d %s %s", r.status, r.code, r.msg)
	}
	stored, err := os.ReadFile(e.objectPath(seg1))
	if err != nil || !bytes.Equal(stored, ok) {
		t.Fatalf("stored object differs from the body (%d bytes, %v)", len(stored), err)
	}
}

// TestBodyLongerThanDeclared sends more bytes than Content-Length: nothing
// beyond the declared length is ever stored.
func TestBodyLongerThanDeclared(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	declared := randBytes(t, 100<<10)
	extra := randBytes(t, 50<<10)

	// Hash of the whole longer body: the declared prefix does not match it.
	all := append(append([]byte{}, declared...), extra...)
	conn := dial(t, e.addr)
	req := rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(all), len(declared))
	if _, err := conn.Write(append(req, all...)); err != nil {
		t.Fatal(err)
	}
	expect(t, "hash of the longer body", readReply(t, conn, http.MethodPut), 400, protocol.CodeHashMismatch)
	e.assertNothing(t, seg1)

	// Hash of the declared prefix: exactly the declared bytes are stored.
	conn = dial(t, e.addr)
	req = rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(declared), len(declared))
	if _, err := conn.Write(append(req, all...)); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, conn, http.MethodPut); r.status != 201 {
		t.Fatalf("HTTP %d %s %s", r.status, r.code, r.msg)
	}
	stored, err := os.ReadFile(e.objectPath(seg1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, declared) {
		t.Fatalf("stored %d bytes, want exactly the %d declared", len(stored), len(declared))
	}
	waitStore(t, e.storeDir(), "main/wal_005/"+seg1)
}

// TestHashMismatch: a body whose SHA-256 differs from the header.
func TestHashMismatch(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	for _, n := range []int{0, 1, 300 << 10} {
		body := randBytes(t, n)
		h := walHeaders(body)
		h[protocol.HeaderContentSHA256] = sha(append(body, 'x'))
		r := e.send(t, http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, h, body)
		expect(t, fmt.Sprintf("%d-byte body with a wrong hash", n), r, 400, protocol.CodeHashMismatch)
		e.assertNothing(t, seg1)
	}
	// A malformed hash header is refused before any body is read.
	body := randBytes(t, 10)
	for _, bad := range []string{"", "xyz", sha(body)[:62], strings.ToUpper(sha(body)) + "00"} {
		h := walHeaders(body)
		h[protocol.HeaderContentSHA256] = bad
		r := e.send(t, http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, h, body)
		expect(t, fmt.Sprintf("hash header %q", bad), r, 400, protocol.CodeBadRequest)
	}
	e.assertNothing(t, seg1)
}

// TestChunkedBody: no Content-Length is refused with 411, through net/http
// (which sends an unknown-length body chunked) and by hand.
func TestChunkedBody(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	body := randBytes(t, 10<<10)

	req, err := http.NewRequest(http.MethodPut, e.g.URL+protocol.WALPath(cluster, seg1), struct{ *bytes.Reader }{bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // unknown: chunked
	req.Header.Set("Authorization", "Bearer "+e.pushFetch)
	for k, v := range walHeaders(body) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Fatalf("chunked PUT via net/http: HTTP %d, want 411", resp.StatusCode)
	}
	e.assertNothing(t, seg1)

	conn := dial(t, e.addr)
	raw := rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(body), -1)
	raw = bytes.Replace(raw, []byte("Connection: close\r\n"), []byte("Transfer-Encoding: chunked\r\nConnection: close\r\n"), 1)
	chunked := fmt.Appendf(nil, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	if _, err := conn.Write(append(raw, chunked...)); err != nil {
		t.Fatal(err)
	}
	expect(t, "chunked PUT by hand", readReply(t, conn, http.MethodPut), 411, protocol.CodeLengthRequired)
	e.assertNothing(t, seg1)

	// Neither Content-Length nor Transfer-Encoding: by HTTP/1.1 the body is
	// empty, so a client that meant to send one is caught by the hash.
	conn = dial(t, e.addr)
	if _, err := conn.Write(append(rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(body), -1), body...)); err != nil {
		t.Fatal(err)
	}
	expect(t, "body without Content-Length", readReply(t, conn, http.MethodPut), 400, protocol.CodeHashMismatch)
	e.assertNothing(t, seg1)
}

// TestStalledBody: a body that stops arriving fails with 408 after
// limits.idle_timeout, and nothing is stored. The HTTP server reads the
// first 8 KiB of a body together with the headers, under
// limits.header_timeout; the idle timeout applies from there on.
func TestStalledBody(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{IdleTimeout: time.Second, HeaderTimeout: time.Second}}})
	body := randBytes(t, 300<<10)
	for _, sent := range []int{0, 100, 100 << 10, len(body) - 1} {
		conn := dial(t, e.addr)
		req := rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(body), len(body))
		if _, err := conn.Write(append(req, body[:sent]...)); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		r := readReply(t, conn, http.MethodPut) // the connection stays open: the gateway must give up by itself
		took := time.Since(began)
		expect(t, fmt.Sprintf("stall after %d bytes", sent), r, 408, protocol.CodeTimeout)
		if took < 500*time.Millisecond || took > 10*time.Second {
			t.Errorf("stall after %d bytes answered after %v, want about the 1s idle timeout", sent, took)
		}
		e.assertNothing(t, seg1)
	}
}

// TestRepush: the same content twice is success; different content is a
// conflict and the stored object stays as it was.
func TestRepush(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	first := randBytes(t, 64<<10)
	r := e.put(t, seg1, e.pushFetch, first)
	if r.status != 201 || !strings.Contains(string(r.body), `"stored"`) {
		t.Fatalf("first push: HTTP %d %s", r.status, r.body)
	}
	r = e.put(t, seg1, e.pushFetch, first)
	if r.status != 200 || !strings.Contains(string(r.body), `"exists"`) {
		t.Fatalf("second push of the same bytes: HTTP %d %s", r.status, r.body)
	}
	second := randBytes(t, 64<<10)
	r = e.put(t, seg1, e.pushFetch, second)
	expect(t, "push of different bytes", r, 409, protocol.CodeConflict)
	if !strings.Contains(r.msg, seg1) || !strings.Contains(r.msg, "nothing was overwritten") {
		t.Errorf("409 message does not explain itself: %s", r.msg)
	}
	// A conflicting body that is also damaged is reported as damaged.
	h := walHeaders(second)
	h[protocol.HeaderContentSHA256] = sha(first)
	r = e.send(t, http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, h, second)
	expect(t, "conflicting push with a wrong hash", r, 400, protocol.CodeHashMismatch)

	stored, err := os.ReadFile(e.objectPath(seg1))
	if err != nil || !bytes.Equal(stored, first) {
		t.Fatalf("stored object changed after a refused push (%v)", err)
	}
	if g := e.get(t, seg1, e.pushFetch); g.status != 200 || !bytes.Equal(g.body, first) {
		t.Fatalf("GET after the conflict: HTTP %d, %d bytes", g.status, len(g.body))
	}
	waitStore(t, e.storeDir(), "main/wal_005/"+seg1)
}

// TestConcurrentSamePush: many pushes of one name with the same content
// all succeed and leave exactly one object.
func TestConcurrentSamePush(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	body := randBytes(t, 2<<20)
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, e.g.URL+protocol.WALPath(cluster, seg1), bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.pushFetch)
			for k, v := range walHeaders(body) {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	created := 0
	for i, s := range statuses {
		switch s {
		case 201:
			created++
		case 200:
		default:
			t.Errorf("push %d: HTTP %d", i, s)
		}
	}
	if created != 1 {
		t.Errorf("%d pushes answered 201 stored, want exactly 1 (statuses %v)", created, statuses)
	}
	waitStore(t, e.storeDir(), "main/wal_005/"+seg1)
	stored, err := os.ReadFile(e.objectPath(seg1))
	if err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("stored object differs (%v)", err)
	}
}

// TestValidateRefusesPlainHTTPOffLoopback: the gateway will not serve
// tokens in clear text on a non-loopback address.
func TestValidateRefusesPlainHTTPOffLoopback(t *testing.T) {
	dir := t.TempDir()
	for _, listen := range []string{"0.0.0.0:7480", "[::]:7480", ":7480", "192.0.2.1:7480", "walgate.example:7480"} {
		cfg := gateway.Config{Data: dir, Listen: listen}
		cfg.Defaults()
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
			t.Errorf("listen %s without TLS: Validate = %v, want a refusal of plain HTTP", listen, err)
		}
		if _, err := gateway.Open(gateway.Config{Data: dir, Listen: listen}, nil, nil); err == nil {
			t.Errorf("listen %s without TLS: gateway.Open accepted it", listen)
		}
		cfg.TLS = gateway.TLSConfig{Cert: "server.crt", Key: "server.key"}
		if err := cfg.Validate(); err != nil {
			t.Errorf("listen %s with TLS: Validate = %v", listen, err)
		}
		cfg.TLS = gateway.TLSConfig{}
		cfg.AllowInsecureHTTP = true
		if err := cfg.Validate(); err != nil {
			t.Errorf("listen %s with allow_insecure_http: Validate = %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:7480", "[::1]:7480", "localhost:7480"} {
		cfg := gateway.Config{Data: dir, Listen: listen}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Errorf("listen %s: Validate = %v", listen, err)
		}
	}
	cfg := gateway.Config{Data: dir, Limits: gateway.Limits{IdleTimeout: 500 * time.Millisecond, MaxWALBytes: 1 << 19}}
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "idle_timeout") || !strings.Contains(err.Error(), "max_wal_bytes") {
		t.Errorf("limits below the minimum: Validate = %v", err)
	}
}

// TestRefusedBodyKeepsConnectionInSync: a PUT refused before its body was
// read (here: a token without the push scope) must not leave the body on
// the connection to be parsed as the next request. The next request on
// the same connection gets its own answer, or the gateway closes the
// connection after the refusal.
func TestRefusedBodyKeepsConnectionInSync(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	stored := randBytes(t, 100)
	if r := e.put(t, seg1, e.pushFetch, stored); r.status != 201 {
		t.Fatalf("HTTP %d", r.status)
	}
	for _, size := range []int{1, 100, 20 << 10, 200 << 10} {
		body := randBytes(t, size)
		// Body bytes that look like a request line, to make a
		// desynchronised parse visible.
		copy(body, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		body = body[:size]
		var req bytes.Buffer
		keepAlive := func(b []byte) []byte { return bytes.Replace(b, []byte("Connection: close\r\n"), nil, 1) }
		req.Write(keepAlive(rawRequest(http.MethodPut, protocol.WALPath(cluster, seg2), e.fetch, walHeaders(body), len(body))))
		req.Write(body)
		req.Write(rawRequest(http.MethodGet, protocol.WALPath(cluster, seg1), e.pushFetch, nil, -1))
		conn := dial(t, e.addr)
		go conn.Write(req.Bytes()) // may block until the gateway reads; the gateway may also close first
		br := bufio.NewReader(conn)
		first, err := http.ReadResponse(br, &http.Request{Method: http.MethodPut})
		if err != nil {
			t.Fatalf("%d-byte body: reading the refusal: %v", size, err)
		}
		io.Copy(io.Discard, first.Body)
		first.Body.Close()
		if first.StatusCode != 403 {
			t.Fatalf("%d-byte body: HTTP %d, want 403", size, first.StatusCode)
		}
		second, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			// Closed after the refusal: fine, if the gateway said so.
			if !first.Close {
				t.Fatalf("%d-byte body: no second answer (%v) but the refusal did not say Connection: close", size, err)
			}
			continue
		}
		got, _ := io.ReadAll(second.Body)
		second.Body.Close()
		if second.StatusCode != 200 || !bytes.Equal(got, stored) {
			t.Fatalf("%d-byte body: the request after the refused PUT got HTTP %d %.80q: the refused body was parsed as a request", size, second.StatusCode, got)
		}
	}
	waitStore(t, e.storeDir(), "main/wal_005/"+seg1)
}

// TestBadHeaders: every malformed metadata header is refused before
// anything is stored.
func TestBadHeaders(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	body := randBytes(t, 20<<10)
	for _, c := range []struct{ header, value string }{
		{protocol.HeaderCompression, ""},
		{protocol.HeaderCompression, "gzip"},
		{protocol.HeaderCompression, "../zst"},
		{protocol.HeaderEncryption, ""},
		{protocol.HeaderEncryption, "aes"},
		{protocol.HeaderContentID, ""},
		{protocol.HeaderContentID, "md5:" + sha(body)},
		{protocol.HeaderContentID, "sha256:" + strings.ToUpper(sha(body))},
		{protocol.HeaderContentID, "sha256:" + sha(body)[:63]},
		{protocol.HeaderPlainSize, ""},
		{protocol.HeaderPlainSize, "-1"},
		{protocol.HeaderPlainSize, "lots"},
	} {
		h := walHeaders(body)
		h[c.header] = c.value
		if c.value == "" {
			delete(h, c.header)
		}
		r := e.send(t, http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, h, body)
		expect(t, fmt.Sprintf("%s: %q", c.header, c.value), r, 400, protocol.CodeBadRequest)
		if !strings.Contains(r.msg, c.header) {
			t.Errorf("%s: %q: the message does not name the header: %s", c.header, c.value, r.msg)
		}
	}
	e.assertNothing(t, seg1)
}

// GET .../health answers any token of the cluster and refuses others.
func TestHealthEndpointAuth(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	if r := e.put(t, seg1, e.push, randBytes(t, 1000)); r.status != 201 {
		t.Fatalf("push: HTTP %d", r.status)
	}
	path := "/v1/clusters/" + cluster + "/health"
	for _, c := range []struct {
		token  string
		status int
	}{{e.fetch, 200}, {e.push, 200}, {e.other, 403}, {"", 401}} {
		r := e.send(t, "GET", path, c.token, nil, nil)
		if r.status != c.status {
			t.Errorf("health with token %.12q: HTTP %d, want %d (%s)", c.token, r.status, c.status, r.msg)
		}
		if c.status == 200 && !strings.Contains(string(r.body), `"last_segment":"`+seg1+`"`) {
			t.Errorf("health body: %s", r.body)
		}
	}
	if r := e.send(t, "GET", "/v1/clusters/BAD..name/health", e.fetch, nil, nil); r.status != 400 {
		t.Errorf("bad cluster name: HTTP %d", r.status)
	}
}
