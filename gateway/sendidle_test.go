package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// TestStalledDownload: a client that stops reading a download is dropped
// after limits.idle_timeout (the gateway does not hold the connection and
// its store reader for ever), while a download read slowly but steadily
// for much longer than that, and the next request on its connection,
// complete.
func TestStalledDownload(t *testing.T) {
	t.Parallel()
	// Keep-alive connections idle for 10 s are closed: the gateway's last
	// write of a body ends seconds before a slow client has read it.
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{IdleTimeout: time.Second, HeaderTimeout: 5 * time.Second}}})
	body := randBytes(t, 16<<20)
	if r := e.put(t, seg1, e.pushFetch, body); r.status != 201 {
		t.Fatalf("push: HTTP %d %s", r.status, r.msg)
	}
	get := func(t *testing.T) (net.Conn, *bufio.Reader, *http.Response) {
		t.Helper()
		conn := dial(t, e.addr)
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		// A small receive buffer: the kernel cannot take the whole body
		// on the client's behalf.
		_ = conn.(*net.TCPConn).SetReadBuffer(32 << 10)
		req := rawRequest(http.MethodGet, protocol.WALPath(cluster, seg1), e.pushFetch, nil, -1)
		req = req[:len(req)-len("Connection: close\r\n\r\n")]
		req = append(req, "\r\n"...)
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReaderSize(conn, 4<<10)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET: %v %v", resp, err)
		}
		return conn, br, resp
	}

	// Stalled: nothing read for 4 idle timeouts, then the rest is cut.
	_, _, resp := get(t)
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n+64<<10 == int64(len(body)) {
		t.Fatal("a download the client stopped reading for 4x limits.idle_timeout was still served whole")
	}

	// Slow but steady: 512 KiB every 300 ms, about 10 s in all.
	if testing.Short() {
		return
	}
	conn, br, resp := get(t)
	got := readSteadily(t, resp.Body, 512<<10, 300*time.Millisecond)
	resp.Body.Close()
	if got != int64(len(body)) {
		t.Fatalf("slow download: %d of %d bytes", got, len(body))
	}
	// The connection serves its next request after a pause longer than
	// the idle timeout that applied to the body's writes.
	time.Sleep(1500 * time.Millisecond)
	req := rawRequest(http.MethodHead, protocol.WALPath(cluster, seg1), e.pushFetch, nil, -1)
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	if r, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead}); err != nil || r.StatusCode != 200 {
		t.Fatalf("next request on the connection: %v %v", r, err)
	}
}

// TestSteadyDownloadLargeSendBuffer: a client reading a download steadily
// at 1 MiB/s with the kernel's default buffers is served whole under a
// limits.idle_timeout of 1 s. Linux wakes a writer blocked on a full
// send buffer only once a third of that buffer has drained, which at
// this rate and with an autotuned buffer of some MiB takes longer than
// the idle timeout: a write blocked for that long is still progress
// while the send queue shrinks.
func TestSteadyDownloadLargeSendBuffer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("reads a download at 1 MiB/s for about 12 s")
	}
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{IdleTimeout: time.Second, HeaderTimeout: 5 * time.Second}}})
	body := randBytes(t, 12<<20)
	if r := e.put(t, seg1, e.pushFetch, body); r.status != 201 {
		t.Fatalf("push: HTTP %d %s", r.status, r.msg)
	}
	conn := dial(t, e.addr)
	_ = conn.SetDeadline(time.Now().Add(90 * time.Second))
	if _, err := conn.Write(rawRequest(http.MethodGet, protocol.WALPath(cluster, seg1), e.pushFetch, nil, -1)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 32<<10), &http.Request{Method: http.MethodGet})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	defer resp.Body.Close()
	got := readSteadily(t, resp.Body, 32<<10, 31*time.Millisecond) // 1 MiB/s
	if got != int64(len(body)) {
		t.Fatalf("steady download at 1 MiB/s: the gateway cut it after %d of %d bytes", got, len(body))
	}
}

// readSteadily reads body to its end, chunk bytes at a time with a pause
// after each, and returns how many bytes it read; an error other than the
// body's end fails the test.
func readSteadily(t *testing.T, body io.Reader, chunk int, pause time.Duration) int64 {
	t.Helper()
	buf := make([]byte, chunk)
	var got int64
	for {
		m, err := io.ReadFull(body, buf)
		got += int64(m)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return got
		}
		if err != nil {
			t.Fatalf("download cut after %d bytes: %v", got, err)
		}
		time.Sleep(pause)
	}
}
