package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// withHeader inserts header lines into a raw request, before its
// Connection line.
func withHeader(req []byte, lines ...string) []byte {
	add := strings.Join(lines, "\r\n") + "\r\n"
	return bytes.Replace(req, []byte("Connection: close\r\n"), []byte(add+"Connection: close\r\n"), 1)
}

// TestEdgeFraming: a request whose length a proxy in front could read
// differently is refused with 400 before its body is read: two
// Content-Length headers that disagree, or Content-Length together with
// Transfer-Encoding. Nothing is stored. Two equal ones are one length.
func TestEdgeFraming(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	body := randBytes(t, 4096)
	put := func(extra ...string) reply {
		t.Helper()
		conn := dial(t, e.addr)
		req := withHeader(rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(body), len(body)), extra...)
		if _, err := conn.Write(append(req, body...)); err != nil {
			t.Fatal(err)
		}
		return readReply(t, conn, http.MethodPut)
	}
	r := put("Content-Length: 10")
	expect(t, "PUT with Content-Length 4096 and 10", r, 400, protocol.CodeBadRequest)
	if !strings.Contains(r.msg, "Content-Length") {
		t.Errorf("message does not name the header: %s", r.msg)
	}
	e.assertNothing(t, seg1)
	expect(t, "PUT with Content-Length and Transfer-Encoding", put("Transfer-Encoding: chunked"), 400, protocol.CodeBadRequest)
	e.assertNothing(t, seg1)
	if r := put("Content-Length: 4096"); r.status != 201 {
		t.Fatalf("PUT with two equal Content-Length headers: HTTP %d %s %s", r.status, r.code, r.msg)
	}
}

// TestEdgeEarlyRefusal: a declared length above the route's limit gets
// 413 as soon as the headers are in, while the client has sent no body;
// a client that waits for 100 Continue gets the final answer (413, 401,
// 403) instead of 100, and 100 only when the request may go on.
func TestEdgeEarlyRefusal(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{MaxWALBytes: limit, MaxBackupObjectBytes: 4 << 20}}})
	big := randBytes(t, limit+1)
	// headersOnly sends a request's headers and reads the first answer
	// within 3 s (the header timeout is 30 s): the body never comes.
	headersOnly := func(what string, req []byte) reply {
		t.Helper()
		conn := dial(t, e.addr)
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		return readReplyFrom(t, bufio.NewReader(conn), http.MethodPut)
	}
	walPut := func(token string, body []byte, declared int) []byte {
		return rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), token, walHeaders(body), declared)
	}

	r := headersOnly("WAL PUT declaring limit+1", walPut(e.pushFetch, big, len(big)))
	expect(t, "WAL PUT declaring limit+1, no body sent", r, 413, protocol.CodeTooLarge)
	if !strings.Contains(r.msg, "max_wal_bytes") {
		t.Errorf("413 does not name the limit: %s", r.msg)
	}
	filePath := protocol.BackupFilePath(cluster, "base_000000010000000000000002", "tar_partitions/part_1.tar")
	r = headersOnly("backup file PUT declaring 5 MiB", rawRequest(http.MethodPut, filePath, e.pushFetch, nil, 5<<20))
	expect(t, "backup object declaring 5 MiB", r, 413, protocol.CodeTooLarge)
	r = headersOnly("drill report declaring 10 MiB", rawRequest(http.MethodPost, protocol.DrillsPath(cluster), e.fetch, nil, 10<<20))
	expect(t, "drill report declaring 10 MiB", r, 413, protocol.CodeTooLarge)

	cont := "Expect: 100-continue"
	r = headersOnly("Expect with an oversized body", withHeader(walPut(e.pushFetch, big, len(big)), cont))
	expect(t, "Expect: 100-continue, declaring limit+1", r, 413, protocol.CodeTooLarge)
	body := randBytes(t, 4096)
	r = headersOnly("Expect without a token", withHeader(walPut("", body, len(body)), cont))
	expect(t, "Expect: 100-continue without a token", r, 401, protocol.CodeUnauthorized)
	r = headersOnly("Expect with another cluster's token", withHeader(walPut(e.other, body, len(body)), cont))
	expect(t, "Expect: 100-continue, another cluster's token", r, 403, protocol.CodeForbidden)
	r = headersOnly("Expect with a fetch token", withHeader(walPut(e.fetch, body, len(body)), cont))
	expect(t, "Expect: 100-continue, fetch-only token", r, 403, protocol.CodeForbidden)
	e.assertNothing(t, seg1)

	// A request that may go on gets 100, then its answer.
	conn := dial(t, e.addr)
	if _, err := conn.Write(withHeader(walPut(e.pushFetch, body, len(body)), cont)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r := readReplyFrom(t, br, http.MethodPut); r.status != 100 {
		t.Fatalf("Expect: 100-continue with a push token: HTTP %d %s, want 100 Continue", r.status, r.code)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPut})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT after 100 Continue: HTTP %d", resp.StatusCode)
	}
}

// TestEdgeEarlyRefusalClosesKeepAlive: a keep-alive request refused on its
// headers while its body is on the way gets an answer that says
// Connection: close, so that the client does not send its next request
// on a connection the gateway closes once it has drained the body (the
// client would see a reset instead of an answer).
func TestEdgeEarlyRefusalClosesKeepAlive(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{MaxWALBytes: limit}}})
	big := randBytes(t, limit+1)
	req := rawRequest(http.MethodPut, protocol.WALPath(cluster, seg1), e.pushFetch, walHeaders(big), len(big))
	if !bytes.Contains(req, []byte("Connection: close\r\n")) {
		t.Fatal("rawRequest no longer asks for Connection: close; the test needs a keep-alive request")
	}
	req = bytes.Replace(req, []byte("Connection: close\r\n"), nil, 1)
	conn := dial(t, e.addr)
	if _, err := conn.Write(append(req, big...)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPut})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("keep-alive PUT declaring limit+1: HTTP %d, want 413", resp.StatusCode)
	}
	if !resp.Close {
		t.Fatalf("the refusal does not say Connection: close (headers %v): a client would reuse a connection the gateway closes", resp.Header)
	}
	// The gateway closes the connection once the body is read.
	if n, err := br.ReadByte(); err == nil {
		t.Fatalf("the connection stays open after the refusal (read %q)", n)
	}
	e.assertNothing(t, seg1)
}
