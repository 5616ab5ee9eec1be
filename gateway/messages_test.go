package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// smallDisk mounts a 256 KiB tmpfs for the test: a real filesystem that
// fills up. Mounting needs root, as the PostgreSQL tests do.
func smallDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the full-disk test mounts a small tmpfs and needs root (as the PostgreSQL tests do)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// beginBackup begins backup name of cluster with the push token.
func beginBackup(t *testing.T, e *env, name string) protocol.BeginBackupResult {
	t.Helper()
	st, _, raw := httpDo(t, http.MethodPost, e.g.URL+protocol.BackupPath(cluster, name), e.pushFetch, nil, nil)
	if st != http.StatusCreated {
		t.Fatalf("begin %s: HTTP %d %s", name, st, raw)
	}
	var begin protocol.BeginBackupResult
	if err := json.Unmarshal(raw, &begin); err != nil {
		t.Fatal(err)
	}
	return begin
}

// A store whose disk is full answers as what it is: the push's message
// names the store and says it is full, not that an ack policy was not
// met; nothing is acknowledged, and the same push succeeds once there is
// room.
func TestFullStoreSaysSo(t *testing.T) {
	disk := smallDisk(t)
	cfg := gateway.Config{Backends: []config.BackendConfig{{Name: "tiny", Type: "fs", Path: filepath.Join(disk, "store")}}}
	e := start(t, gatewaytest.Options{Config: cfg})
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, 200<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	body := randBytes(t, 100<<10)
	r := e.put(t, seg1, e.pushFetch, body)
	expect(t, "push to a full store", r, 503, protocol.CodeUnavailable)
	if !strings.Contains(r.msg, "store tiny is full") || !strings.Contains(r.msg, "no space left") || strings.Contains(r.msg, "ack policy") {
		t.Fatalf("push to a full store says %q; want it to name store tiny as full", r.msg)
	}
	if r := e.get(t, seg1, e.pushFetch); r.status != 404 {
		t.Fatalf("GET after the refused push: HTTP %d", r.status)
	}
	os.Remove(filler)
	if r := e.put(t, seg1, e.pushFetch, body); r.status != 201 {
		t.Fatalf("push once there is room: HTTP %d %s", r.status, r.msg)
	}

	// A backup file to the full store says the same.
	if err := os.WriteFile(filler, make([]byte, 120<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "base_000000010000000000000002"
	begin := beginBackup(t, e, name)
	file := "tar_partitions/part_001.tar.zst"
	st, _, raw := httpDo(t, http.MethodPut, e.g.URL+protocol.BackupFilePath(cluster, name, file), e.pushFetch, map[string]string{
		protocol.HeaderBackupSession: begin.Session, protocol.HeaderCompression: protocol.FileCompression(file), protocol.HeaderEncryption: protocol.EncryptionNone,
	}, randBytes(t, 200<<10))
	if st != 503 || !strings.Contains(string(raw), "store tiny is full") {
		t.Fatalf("backup file to a full store: HTTP %d %s", st, raw)
	}
}

// A backup file sent without a length (chunked) that breaks off is
// reported with the bytes that arrived and "length not declared", never
// as "-1 declared bytes".
func TestBrokenChunkedBodyMessage(t *testing.T) {
	e := start(t, gatewaytest.Options{})
	name := "base_000000010000000000000002"
	begin := beginBackup(t, e, name)
	file := "tar_partitions/part_001.tar.zst"
	req := rawRequest(http.MethodPut, protocol.BackupFilePath(cluster, name, file), e.pushFetch, map[string]string{
		protocol.HeaderBackupSession: begin.Session, protocol.HeaderCompression: protocol.FileCompression(file),
		protocol.HeaderEncryption: protocol.EncryptionNone, "Transfer-Encoding": "chunked"}, -1)
	chunk := strings.Repeat("x", 1000)
	req = fmt.Appendf(req, "%x\r\n%s\r\nzz-not-a-chunk-size\r\n", len(chunk), chunk)
	conn := dial(t, e.addr)
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	r := readReply(t, conn, http.MethodPut)
	if r.status < 400 || strings.Contains(r.msg, "-1") || !strings.Contains(r.msg, "length not declared") {
		t.Fatalf("broken chunked body: HTTP %d %s %q; want the bytes received and \"length not declared\"", r.status, r.code, r.msg)
	}
}
