package gateway_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// TestMalformedChunkedUpload: a backup object sent chunked whose chunks
// are malformed, cut short or abandoned is the client's failure: it gets
// 400 where it can still read one, nothing is stored, and the backend is
// not marked as failing (its last error stays empty). A good upload then
// goes through.
func TestMalformedChunkedUpload(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	const name = "base_000000010000000000000002"
	st, _, body := httpDo(t, http.MethodPost, e.g.URL+protocol.BackupPath(cluster, name), e.push, nil, nil)
	if st != http.StatusCreated {
		t.Fatalf("begin: HTTP %d %s", st, body)
	}
	var begin protocol.BeginBackupResult
	if err := json.Unmarshal(body, &begin); err != nil {
		t.Fatal(err)
	}
	up := map[string]string{protocol.HeaderBackupSession: begin.Session, protocol.HeaderCompression: "none",
		protocol.HeaderEncryption: protocol.EncryptionNone, "Transfer-Encoding": "chunked"}
	data := randBytes(t, 100<<10)
	send := func(file string, chunks []byte, hangUp bool) net.Conn {
		t.Helper()
		conn := dial(t, e.addr)
		req := rawRequest(http.MethodPut, protocol.BackupFilePath(cluster, name, file), e.push, up, -1)
		if _, err := conn.Write(append(req, chunks...)); err != nil {
			t.Fatal(err)
		}
		if hangUp {
			conn.Close()
		} else {
			conn.(*net.TCPConn).CloseWrite()
		}
		return conn
	}
	good := fmt.Appendf(nil, "%x\r\n%s\r\n", len(data), data)
	cases := []struct {
		what   string
		chunks []byte
	}{
		{"a chunk size that is not hex", append(append([]byte{}, good...), "zz\r\nabc\r\n0\r\n\r\n"...)},
		{"a chunk without its CRLF", append(fmt.Appendf(nil, "%x\r\n", 10), "0123456789XX5\r\nhello\r\n0\r\n\r\n"...)},
		{"a stream cut inside a chunk", append(fmt.Appendf(nil, "%x\r\n", 1<<20), data...)},
		{"a stream cut before the last chunk", good},
	}
	for i, tc := range cases {
		conn := send(fmt.Sprintf("tar_partitions/part_%03d.tar", i+1), tc.chunks, false)
		r := readReply(t, conn, http.MethodPut)
		if r.status != 400 {
			t.Errorf("%s: HTTP %d %s (%s), want 400", tc.what, r.status, r.code, r.msg)
		}
	}
	conn := send("tar_partitions/part_009.tar", append(fmt.Appendf(nil, "%x\r\n", 1<<20), data...), true)
	conn.Close()
	time.Sleep(200 * time.Millisecond) // the handler sees the hang-up
	waitStore(t, e.storeDir())
	bs, err := e.g.Server.BackendsStatus()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.LastError != "" {
			t.Errorf("backend %s marked failing by a client's malformed upload: %s", b.Name, b.LastError)
		}
	}
	conn = send("tar_partitions/part_010.tar", append(append([]byte{}, good...), "0\r\n\r\n"...), false)
	if r := readReply(t, conn, http.MethodPut); r.status != 201 {
		t.Fatalf("a well-formed chunked upload: HTTP %d %s %s", r.status, r.code, r.msg)
	}
}
