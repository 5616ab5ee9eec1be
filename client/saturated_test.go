package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// A gateway whose one write slot is held by a push over a slow link: a
// second push waits limits.write_slot_wait, then gets 503 naming the
// saturation and max_writes, with Retry-After, and nothing of it is
// stored; the client retries such an answer with backoff and its push
// goes through once the slot is free. A backup part, a stream the client
// sends once, is refused before its body (it waits for 100 Continue), so
// it too is retried and stored, and the backup commits. The slow push is
// not disturbed.
func TestSaturatedWriteSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	store := filepath.Join(data, "store")
	log := &lockedBuffer{}
	g := gatewaytest.Start(t, gatewaytest.Options{Log: log, Config: gateway.Config{Data: data,
		Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: store, MaxWrites: 1}},
		Limits:   gateway.Limits{WriteSlotWait: 500 * time.Millisecond}}})
	token := g.Token(cluster, "push", "fetch")
	p, err := backendtest.NewProxy(strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.SetRate(128 << 10)
	slow := newClient(t, "http://"+p.Addr(), token, map[string]string{"WALGATE_COMPRESSION": "none"})
	dir := t.TempDir()
	slowDone := make(chan error, 1)
	go func() {
		_, err := slow.PushWAL(ctx, writeFile(t, dir, seg1, randBytes(t, 768<<10)))
		slowDone <- err
	}()
	// The slow push holds the slot once the store has its temporary file.
	deadline := time.Now().Add(20 * time.Second)
	for len(gatewaytest.ListFiles(t, store)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow push never reached the store")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A second push, straight to the gateway: refused after the slot wait.
	body := randBytes(t, 64<<10)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, g.URL+protocol.WALPath(cluster, seg2), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:])
	for k, v := range map[string]string{protocol.HeaderContentSHA256: sum, protocol.HeaderCompression: "none",
		protocol.HeaderEncryption: protocol.EncryptionNone, protocol.HeaderContentID: "sha256:" + sum, protocol.HeaderPlainSize: "65536"} {
		req.Header.Set(k, v)
	}
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("second push: %v", err)
	}
	var eb protocol.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Error.Code != protocol.CodeUnavailable {
		t.Fatalf("second push while the slot is held: HTTP %d %q %s, want 503 unavailable", resp.StatusCode, eb.Error.Code, eb.Error.Message)
	}
	if msg := eb.Error.Message; !strings.Contains(msg, "saturated") || !strings.Contains(msg, "max_writes") || !strings.Contains(msg, "limits.write_slot_wait") || !strings.Contains(msg, "nothing was stored") {
		t.Fatalf("the 503 does not say what happened and what to raise: %s", msg)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on a saturated answer")
	}
	if took < 400*time.Millisecond {
		t.Fatalf("refused after %v, before the 500ms slot wait", took)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the slow push ended (%v) before the refusal could be checked against it: the link was not slow enough", err)
	default:
	}

	// The client retries the 503 with backoff until the slot is free:
	// a WAL push and a backup part at once.
	c := newClient(t, g.URL, token, map[string]string{"WALGATE_COMPRESSION": "none", "WALGATE_RETRIES": "20"})
	u, err := c.BeginBackup(ctx, bkName)
	if err != nil {
		t.Fatal(err)
	}
	part := randBytes(t, 256<<10)
	partDone := make(chan error, 1)
	go func() {
		_, err := u.Upload(ctx, "tar_partitions/part_001.tar", "none", "none", bytes.NewReader(part))
		partDone <- err
	}()
	if _, err := c.PushWAL(ctx, writeFile(t, dir, seg2, body)); err != nil {
		t.Fatalf("push retried past a saturated gateway: %v", err)
	}
	if err := <-partDone; err != nil {
		t.Fatalf("backup part sent to a saturated gateway: %v", err)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow push: %v", err)
	}
	upload(t, u, "tar_partitions/pg_control.tar", []byte("control"))
	if _, err := u.Commit(ctx, []byte(sentinel)); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if !regexp.MustCompile(`path=/v1/clusters/main/backups/` + bkName + `/files/tar_partitions/part_001.tar status=503 .*saturated`).MatchString(log.String()) {
		t.Fatalf("the backup part never met the saturated gateway; its log:\n%s", log)
	}
	assertStore(t, g, "main/basebackups_005/"+bkName+"/tar_partitions/part_001.tar",
		"main/basebackups_005/"+bkName+"/tar_partitions/pg_control.tar",
		"main/basebackups_005/"+bkName+"_backup_stop_sentinel.json",
		"main/wal_005/"+seg1, "main/wal_005/"+seg2)
}
