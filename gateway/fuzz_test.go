package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// fuzzRoutes are the request targets the fuzzer fills with its cluster
// and name; the last one takes the name as the whole target.
var fuzzRoutes = []string{
	"/v1/clusters/%s/wal/%s",
	"/v1/clusters/%s/backups/%s",
	"/v1/clusters/%s/backups/base_000000010000000000000002/files/%s",
	"/v1/clusters/%s/backups/%s/commit",
	"/v1/clusters/%s/drills",
	"/v1/clusters/%s/health",
	"/v1/clusters/%s/delete",
	"/ui/clusters/%s",
	"/ui/login",
	"%.0s%s",
}

// FuzzHTTPEdge drives the gateway's HTTP layer (a real gateway on a real
// listener with an fs store) with arbitrary methods, targets, names,
// headers and bodies, raw on the wire. The gateway must answer every
// request without a 5xx, stay up, and never store an object under a
// name that fails validation.
func FuzzHTTPEdge(f *testing.F) {
	e := start(f, gatewaytest.Options{})
	tokens := []string{"", e.pushFetch, e.fetch, e.g.Token(cluster, "admin"), "not-a-token"}
	f.Add("PUT", uint8(0), cluster, seg1, "", "", []byte("body"), uint8(1), true)
	f.Add("GET", uint8(0), cluster, "../../etc/passwd", "", "", []byte{}, uint8(1), false)
	f.Add("PUT", uint8(2), cluster, "tar_partitions/part_001.tar", "Transfer-Encoding", "chunked", []byte("zz\r\n"), uint8(1), false)
	f.Add("POST", uint8(4), cluster, "", "Content-Type", "application/json", []byte(`{"passed":true,"error":"x"}`), uint8(2), false)
	f.Add("POST", uint8(8), "", "", "Origin", "http://evil.example", []byte("token=x"), uint8(0), false)
	f.Add("PUT", uint8(0), cluster, seg1, "Expect", "100-continue", []byte("abc"), uint8(2), true)
	f.Add("PUT", uint8(0), cluster, seg1, "Content-Length", "1", []byte("abc"), uint8(1), true)
	f.Add("DELETE", uint8(1), "Main", "base_000000010000000000000002", "X", "y", []byte(nil), uint8(3), false)
	f.Fuzz(func(t *testing.T, method string, route uint8, cl, name, hkey, hval string, body []byte, tok uint8, withWAL bool) {
		target := fmt.Sprintf(fuzzRoutes[int(route)%len(fuzzRoutes)], cl, name)
		var req bytes.Buffer
		fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: walgate\r\n", method, target)
		if tk := tokens[int(tok)%len(tokens)]; tk != "" {
			fmt.Fprintf(&req, "Authorization: Bearer %s\r\n", tk)
		}
		if withWAL {
			for k, v := range walHeaders(body) {
				fmt.Fprintf(&req, "%s: %s\r\n", k, v)
			}
		}
		if hkey != "" {
			fmt.Fprintf(&req, "%s: %s\r\n", hkey, hval)
		}
		fmt.Fprintf(&req, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
		req.Write(body)

		conn, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("the gateway is gone: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(req.Bytes()); err != nil {
			return // refused before everything was sent: fine
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("HTTP %d for %q", resp.StatusCode, req.Bytes()[:min(req.Len(), 600)])
			}
		}
		for _, key := range storeFiles(t, e.storeDir()) {
			if err := validStoredKey(key); err != nil {
				t.Fatalf("stored %s: %v (request %q)", key, err, req.Bytes()[:min(req.Len(), 600)])
			}
		}
	})
}

// validStoredKey checks a key in the fs store against the grammars a
// name from the wire must pass (temp files of writes under way aside).
func validStoredKey(key string) error {
	if strings.HasPrefix(path.Base(key), ".walgate-tmp-") {
		return nil
	}
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return fmt.Errorf("not <cluster>/<area>/<name>")
	}
	if err := protocol.ValidateCluster(parts[0]); err != nil {
		return err
	}
	switch parts[1] {
	case "wal_005":
		name := parts[2]
		if i := strings.LastIndexByte(name, '.'); i > 0 && !strings.HasSuffix(name, ".history") && !strings.HasSuffix(name, ".backup") && !strings.HasSuffix(name, ".partial") {
			name = name[:i]
		}
		_, err := protocol.ValidateWALName(name)
		return err
	case "basebackups_005":
		if b, ok := strings.CutSuffix(parts[2], "_backup_stop_sentinel.json"); ok {
			return protocol.ValidateBackupName(b)
		}
		b, file, ok := strings.Cut(parts[2], "/")
		if !ok {
			return fmt.Errorf("no backup object name")
		}
		if err := protocol.ValidateBackupName(b); err != nil {
			return err
		}
		return protocol.ValidateBackupFile(file)
	}
	return fmt.Errorf("unknown area %s", parts[1])
}
