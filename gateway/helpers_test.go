package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

const (
	cluster = "main"
	seg1    = "000000010000000000000001"
	seg2    = "000000010000000000000002"
)

// env is a running gateway with one token per role.
type env struct {
	g         *gatewaytest.Gateway
	addr      string // host:port
	pushFetch string
	push      string
	fetch     string
	other     string // push,fetch for another cluster
}

func start(t testing.TB, opts gatewaytest.Options) *env {
	t.Helper()
	g := gatewaytest.Start(t, opts)
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		g: g, addr: u.Host,
		pushFetch: g.Token(cluster, "push", "fetch"),
		push:      g.Token(cluster, "push"),
		fetch:     g.Token(cluster, "fetch"),
		other:     g.Token("other", "push", "fetch"),
	}
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// walHeaders are valid PUT headers for body (stored uncompressed and
// unencrypted; the content ID is that of body).
func walHeaders(body []byte) map[string]string {
	return map[string]string{
		protocol.HeaderContentSHA256: sha(body),
		protocol.HeaderCompression:   "none",
		protocol.HeaderEncryption:    protocol.EncryptionNone,
		protocol.HeaderContentID:     "sha256:" + sha(body),
		protocol.HeaderPlainSize:     fmt.Sprint(len(body)),
	}
}

// rawRequest writes an HTTP/1.1 request by hand: the path goes on the
// wire exactly as given, with no client-side cleaning or escaping.
func rawRequest(method, path, token string, headers map[string]string, contentLength int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: walgate\r\n", method, path)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.Bytes()
}

type reply struct {
	status int
	code   protocol.Code
	msg    string
	body   []byte
}

func readReply(t *testing.T, conn net.Conn, method string) reply {
	t.Helper()
	return readReplyFrom(t, bufio.NewReader(conn), method)
}

// readReplyFrom reads one response (an interim 100 too) from br.
func readReplyFrom(t *testing.T, br *bufio.Reader, method string) reply {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	r := reply{status: resp.StatusCode, body: body}
	var eb protocol.ErrorBody
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(body, &eb); err != nil {
			t.Fatalf("HTTP %d with a body that is not a walgate error: %q", resp.StatusCode, body)
		}
		r.code, r.msg = eb.Error.Code, eb.Error.Message
		if r.msg == "" {
			t.Errorf("HTTP %d %s without a message", r.status, r.code)
		}
	}
	return r
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn
}

// send sends a complete request and reads the answer.
func (e *env) send(t *testing.T, method, path, token string, headers map[string]string, body []byte) reply {
	t.Helper()
	conn := dial(t, e.addr)
	cl := -1
	if method == http.MethodPut || body != nil {
		cl = len(body)
	}
	if _, err := conn.Write(append(rawRequest(method, path, token, headers, cl), body...)); err != nil {
		t.Fatal(err)
	}
	return readReply(t, conn, method)
}

func (e *env) put(t *testing.T, name, token string, body []byte) reply {
	t.Helper()
	return e.send(t, http.MethodPut, protocol.WALPath(cluster, name), token, walHeaders(body), body)
}

func (e *env) get(t *testing.T, name, token string) reply {
	t.Helper()
	return e.send(t, http.MethodGet, protocol.WALPath(cluster, name), token, nil, nil)
}

func (e *env) storeDir() string { return filepath.Join(e.g.Data, "store") }

// objectPath is where the fs backend keeps name of cluster, stored with
// compression none.
func (e *env) objectPath(name string) string {
	return filepath.Join(e.storeDir(), cluster, "wal_005", name)
}

// storeFiles lists every non-directory entry under the store, temp files
// included, relative to the store.
func storeFiles(t *testing.T, store string) []string {
	return gatewaytest.ListFiles(t, store)
}

// waitStore polls until the store holds exactly want (sorted relative
// paths; nil for nothing): a failed write removes its temp file when the
// handler ends, which may be just after the client saw the connection end.
func waitStore(t *testing.T, store string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := storeFiles(t, store)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store holds %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertNothing checks that name is neither in the catalog (GET answers
// not_found) nor in the store (no file at all, temp files included).
func (e *env) assertNothing(t *testing.T, name string) {
	t.Helper()
	waitStore(t, e.storeDir())
	if r := e.get(t, name, e.pushFetch); r.status != 404 || r.code != protocol.CodeNotFound {
		t.Fatalf("GET %s after a failed push: HTTP %d %s, want 404 not_found", name, r.status, r.code)
	}
}

func expect(t *testing.T, what string, r reply, status int, code protocol.Code) {
	t.Helper()
	if r.status != status || r.code != code {
		t.Fatalf("%s: HTTP %d %q (%s), want %d %q", what, r.status, r.code, r.msg, status, code)
	}
}
