package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

// heldSlot starts a gateway whose store takes one write at a time, with
// limits, and a push of n bytes through a link throttled to 128 KiB/s
// that holds that slot once this returns; its outcome arrives on done.
func heldSlot(t *testing.T, limits gateway.Limits, log io.Writer, n int) (g *gatewaytest.Gateway, token string, done <-chan error) {
	t.Helper()
	data := t.TempDir()
	store := filepath.Join(data, "store")
	g = gatewaytest.Start(t, gatewaytest.Options{Log: log, Config: gateway.Config{Data: data,
		Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: store, MaxWrites: 1}}, Limits: limits}})
	token = g.Token(cluster, "push", "fetch")
	p, err := backendtest.NewProxy(strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.SetRate(128 << 10)
	slow := newClient(t, "http://"+p.Addr(), token, map[string]string{"WALGATE_COMPRESSION": "none"})
	path := writeFile(t, t.TempDir(), seg1, randBytes(t, n))
	ch := make(chan error, 1)
	go func() {
		_, err := slow.PushWAL(context.Background(), path)
		ch <- err
	}()
	// The slow push holds the slot once the store has its temporary file.
	deadline := time.Now().Add(20 * time.Second)
	for len(gatewaytest.ListFiles(t, store)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow push never reached the store")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g, token, ch
}

// walPut is a plain HTTP push of body as WAL file name, uncompressed and
// unencrypted.
func walPut(ctx context.Context, g *gatewaytest.Gateway, token, name string, body []byte) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, g.URL+protocol.WALPath(cluster, name), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:])
	for k, v := range map[string]string{protocol.HeaderContentSHA256: sum, protocol.HeaderCompression: "none",
		protocol.HeaderEncryption: protocol.EncryptionNone, protocol.HeaderContentID: "sha256:" + sum, protocol.HeaderPlainSize: fmt.Sprint(len(body))} {
		req.Header.Set(k, v)
	}
	return req
}

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
	log := &lockedBuffer{}
	g, token, slowDone := heldSlot(t, gateway.Limits{WriteSlotWait: 500 * time.Millisecond}, log, 768<<10)
	dir := t.TempDir()

	// A second push, straight to the gateway: refused after the slot wait.
	body := randBytes(t, 64<<10)
	req := walPut(ctx, g, token, seg2, body)
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

// A push held for a write slot before 100 Continue for longer than the
// gateway's header timeout, which also bounds the first 8 KiB of a body
// of known length, still gets that time to send them once the slot is
// free: it is stored, not refused with 408. (walgate-client asks for 100
// Continue with backup parts, sent chunked; curl does with any body of
// more than 1 MiB.)
func TestSlotWaitLongerThanHeaderTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g, token, slowDone := heldSlot(t, gateway.Limits{HeaderTimeout: time.Second, WriteSlotWait: 30 * time.Second}, nil, 384<<10)
	req := walPut(ctx, g, token, seg2, randBytes(t, 64<<10))
	req.Header.Set("Expect", "100-continue")
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	began := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push held for a slot past the header timeout: HTTP %d, want 201", resp.StatusCode)
	}
	if took := time.Since(began); took < 1500*time.Millisecond {
		t.Fatalf("stored after %v: it did not wait past the 1s header timeout", took)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow push: %v", err)
	}
}
