package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// TestCheckEnvironment: an unknown WALGATE_* name, or a WALG_* name one or
// two typing errors away from one the client reads, is refused with the
// closest known name; WAL-G's other variables are ignored.
func TestCheckEnvironment(t *testing.T) {
	refused := []struct{ env, want string }{
		{"WALGATE_ENCRYPTON_KEY=abc", "WALGATE_ENCRYPTION_KEY"},
		{"WALGATE_ENCRYPTION_KEY_TRANSFROM=hex", "WALGATE_ENCRYPTION_KEY_TRANSFORM"},
		{"WALGATE_ULR=x", "WALGATE_URL"},
		{"WALGATE_ENCRYPTION_OLD_KEY=x", "WALGATE_ENCRYPTION_OLD_KEYS"},
		{"WALG_LIBSODIUM_KEYY=x", "WALG_LIBSODIUM_KEY"},
		{"WALG_LIBSODIUM_KEY_TRANSFROM=x", "WALG_LIBSODIUM_KEY_TRANSFORM"},
		{"WALG_COMPRESION_METHOD=zstd", "WALG_COMPRESSION_METHOD"},
	}
	for _, r := range refused {
		err := client.CheckEnvironment([]string{"PATH=/bin", "WALGATE_URL=http://127.0.0.1:1", r.env})
		if err == nil || !client.IsConfigError(err) {
			t.Errorf("%s: %v, want a configuration error", r.env, err)
			continue
		}
		name, _, _ := strings.Cut(r.env, "=")
		if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "did you mean "+r.want+"?") {
			t.Errorf("%s: %q does not name it and suggest %s", r.env, err, r.want)
		}
		if strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: the message quotes the value: %q", r.env, err)
		}
	}
	accepted := []string{
		"WALGATE_URL=x", "WALGATE_TOKEN_FILE=x", "WALGATE_ENCRYPTION_KEY=x", "WALGATE_ENCRYPTION_KEY_FILE=x",
		"WALGATE_ENCRYPTION_OLD_KEYS=x", "WALGATE_ALLOW_PLAINTEXT_READ=true", "WALGATE_CLIENT_KEY=x",
		"WALGATE_CPUPROFILE=/tmp/cpu",
		"WALG_LIBSODIUM_KEY=x", "WALG_LIBSODIUM_KEY_PATH=x", "WALG_UPLOAD_CONCURRENCY=4", "WALG_DOWNLOAD_CONCURRENCY=4",
		// WAL-G's own, of no use to walgate: ignored.
		"WALG_S3_PREFIX=s3://bucket/x", "WALG_UPLOAD_DISK_CONCURRENCY=4", "WALG_PREFETCH_DIR=/tmp", "WALG_GS_PREFIX=gs://x",
		"WALG_USE_WAL_DELTA=true", "WALG_S3_STORAGE_CLASS=STANDARD", "AWS_REGION=eu-west-1", "PGHOST=/tmp",
		// walgate's test tooling.
		"WALGATE_TOOLS=/var/cache", "WALGATE_PGTEST_MARK=x", "WALGATE_TEST_LOG=1",
	}
	if err := client.CheckEnvironment(accepted); err != nil {
		t.Fatalf("known and WAL-G-only variables refused: %v", err)
	}
}

// TestOldKeysConfig: WALGATE_ENCRYPTION_OLD_KEYS takes the main key's
// transform, needs a main key, and names the bad key by position without
// quoting it.
func TestOldKeysConfig(t *testing.T) {
	base := map[string]string{"WALGATE_URL": "http://127.0.0.1:1", "WALGATE_TOKEN": "wgt1.main." + strings.Repeat("A", 43)}
	load := func(extra map[string]string) (client.Config, error) {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return client.LoadConfig(func(k string) string { return env[k] })
	}
	cfg, err := load(map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex",
		"WALGATE_ENCRYPTION_OLD_KEYS": keyHex2 + ", " + strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := codec.ParseKey(keyHex2, "hex")
	if len(cfg.OldKeys) != 2 || *cfg.OldKeys[0] != *k2 {
		t.Fatalf("old keys: %d, first matches: %v", len(cfg.OldKeys), len(cfg.OldKeys) > 0 && *cfg.OldKeys[0] == *k2)
	}
	if _, err := load(map[string]string{"WALGATE_ENCRYPTION_OLD_KEYS": keyHex2}); err == nil || !strings.Contains(err.Error(), "WALGATE_ENCRYPTION_KEY") {
		t.Fatalf("old keys without a current key: %v", err)
	}
	_, err = load(map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex",
		"WALGATE_ENCRYPTION_OLD_KEYS": keyHex2 + ",0123"})
	if err == nil || !strings.Contains(err.Error(), "key 2") || strings.Contains(err.Error(), keyHex2) {
		t.Fatalf("a bad second old key: %v", err)
	}
	if _, err := load(map[string]string{"WALGATE_ALLOW_PLAINTEXT_READ": "yes please"}); err == nil {
		t.Fatal("WALGATE_ALLOW_PLAINTEXT_READ=yes please accepted")
	}
}

// putRaw PUTs body as WAL file name with a push token, as any holder of
// one could, bypassing walgate-client; header overrides the defaults
// (plaintext, no compression, SHA-256 content ID).
func putRaw(t *testing.T, url, token, name string, body, plain []byte, header map[string]string) (int, string) {
	t.Helper()
	sum := sha256.Sum256(body)
	plainSum := sha256.Sum256(plain)
	h := map[string]string{
		protocol.HeaderContentSHA256: hex.EncodeToString(sum[:]),
		protocol.HeaderCompression:   "none",
		protocol.HeaderEncryption:    protocol.EncryptionNone,
		protocol.HeaderContentID:     "sha256:" + hex.EncodeToString(plainSum[:]),
		protocol.HeaderPlainSize:     strconv.Itoa(len(plain)),
		"Authorization":              "Bearer " + token,
	}
	for k, v := range header {
		h[k] = v
	}
	req, err := http.NewRequest(http.MethodPut, url+protocol.WALPath(cluster, name), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg bytes.Buffer
	msg.ReadFrom(resp.Body)
	return resp.StatusCode, msg.String()
}

// TestForgedPlaintextRefused: a plaintext segment PUT with a push token and
// a matching content ID is refused by a client that holds a key (nothing
// is written to the destination), and restored only when the operator
// says the archive may hold plaintext.
func TestForgedPlaintextRefused(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	forged := walLike(t, 1<<20)
	if status, msg := putRaw(t, g.URL, tok, seg1, forged, forged, nil); status != http.StatusCreated {
		t.Fatalf("forged PUT: %d %s", status, msg)
	}
	withKey := map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"}
	c := newClient(t, g.URL, tok, withKey)
	dst := t.TempDir()
	dest := filepath.Join(dst, "RECOVERYXLOG")
	err := c.FetchWAL(context.Background(), seg1, dest)
	ce := wantKind(t, "fetch of a plaintext object with a key", err, client.ErrIntegrity)
	if !strings.Contains(ce.Message, "unencrypted") || !strings.Contains(ce.Message, "WALGATE_ALLOW_PLAINTEXT_READ") {
		t.Fatalf("message does not explain the refusal: %v", err)
	}
	assertDirHolds(t, dst)

	withKey["WALGATE_ALLOW_PLAINTEXT_READ"] = "true"
	allowed := newClient(t, g.URL, tok, withKey)
	if err := allowed.FetchWAL(context.Background(), seg1, dest); err != nil {
		t.Fatalf("with WALGATE_ALLOW_PLAINTEXT_READ=true: %v", err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, forged) {
		t.Fatal("restored bytes differ")
	}
	// A client without a key reads plaintext as ever.
	os.Remove(dest)
	if err := newClient(t, g.URL, tok, nil).FetchWAL(context.Background(), seg1, dest); err != nil {
		t.Fatalf("without a key: %v", err)
	}
}

// TestRequireEncryption: a group with require_encryption refuses
// unencrypted WAL (422, encryption_required, nothing stored) and takes
// encrypted WAL; a group without it takes both.
func TestRequireEncryption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := gateway.Config{Data: dir,
		Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: filepath.Join(dir, "store")}},
		Groups: []config.GroupConfig{
			{Name: "open", Clusters: []string{"open*"}, Backends: []string{"local"}},
			{Name: "sealed", Clusters: []string{"*"}, Backends: []string{"local"}, RequireEncryption: true},
		}}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	tok := g.Token(cluster, "push", "fetch")
	src := t.TempDir()
	data := walLike(t, 256<<10)
	path := writeFile(t, src, seg1, data)

	plain := newClient(t, g.URL, tok, nil)
	_, err := plain.PushWAL(context.Background(), path)
	ce := wantKind(t, "plaintext push to a group requiring encryption", err, client.ErrRejected)
	if ce.Status != 422 || ce.Code != protocol.CodeEncryptionRequired || !strings.Contains(ce.Message, "require_encryption") {
		t.Fatalf("refusal: status %d code %s message %q", ce.Status, ce.Code, ce.Message)
	}
	if files := storeFiles(t, g); len(files) != 0 {
		t.Fatalf("the refused push left %q in the store", files)
	}
	// Raw, too: the header is what the gateway goes by.
	if status, msg := putRaw(t, g.URL, tok, seg2, data, data, nil); status != 422 || !strings.Contains(msg, string(protocol.CodeEncryptionRequired)) {
		t.Fatalf("raw plaintext PUT: %d %s", status, msg)
	}

	sealed := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	if _, err := sealed.PushWAL(context.Background(), path); err != nil {
		t.Fatalf("encrypted push: %v", err)
	}

	// Backups: an unencrypted partition is refused; the metadata JSON,
	// plain by design, and encrypted partitions are taken.
	ctx := context.Background()
	u, err := plain.BeginBackup(ctx, "base_000000010000000000000004")
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Upload(ctx, "tar_partitions/part_001.tar", "none", protocol.EncryptionNone, bytes.NewReader(data))
	ce = wantKind(t, "unencrypted backup partition", err, client.ErrRejected)
	if ce.Status != 422 || ce.Code != protocol.CodeEncryptionRequired {
		t.Fatalf("unencrypted partition: status %d code %s: %v", ce.Status, ce.Code, err)
	}
	if _, err := u.Upload(ctx, "metadata.json", "none", protocol.EncryptionNone, strings.NewReader(`{}`)); err != nil {
		t.Fatalf("metadata.json: %v", err)
	}
	var sealedPart bytes.Buffer
	key, _ := codec.ParseKey(keyHex, "hex")
	w, _ := codec.NewWriter(&sealedPart, codec.None, key)
	w.Write(data)
	w.Close()
	if _, err := u.Upload(ctx, "tar_partitions/part_002.tar", "none", protocol.EncryptionLibsodium, &sealedPart); err != nil {
		t.Fatalf("encrypted partition: %v", err)
	}
	if err := u.Abort(ctx); err != nil {
		t.Fatal(err)
	}

	openTok := g.Token("open1", "push")
	openPlain := newClient(t, g.URL, openTok, nil)
	if _, err := openPlain.PushWAL(context.Background(), path); err != nil {
		t.Fatalf("plaintext push to a group without require_encryption: %v", err)
	}
}

// TestKeyRotation: objects record the fingerprint of their key; a client
// rotated to key B with A in WALGATE_ENCRYPTION_OLD_KEYS reads what A
// sealed (by fingerprint, and by trying its keys on an object that names
// none), writes with B only, and accepts a re-push under B of a segment
// archived under A. A client with B alone names the fingerprint it lacks.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	keyA, _ := codec.ParseKey(keyHex, "hex")
	keyB, _ := codec.ParseKey(keyHex2, "hex")
	if keyA.Fingerprint() == keyB.Fingerprint() || len(keyA.Fingerprint()) != 16 || strings.Contains(keyHex, keyA.Fingerprint()) {
		t.Fatalf("fingerprints %s, %s", keyA.Fingerprint(), keyB.Fingerprint())
	}
	a := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	rotated := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex2, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex",
		"WALGATE_ENCRYPTION_OLD_KEYS": keyHex})
	onlyB := newClient(t, g.URL, tok, map[string]string{"WALGATE_ENCRYPTION_KEY": keyHex2, "WALGATE_ENCRYPTION_KEY_TRANSFORM": "hex"})
	src := t.TempDir()
	dataA, dataB, dataOld := walLike(t, 1<<20), walLike(t, 1<<20), walLike(t, 1<<20)
	const seg3 = "000000010000000000000003"
	pathA := writeFile(t, src, seg1, dataA)
	if _, err := a.PushWAL(context.Background(), pathA); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.PushWAL(context.Background(), writeFile(t, src, seg2, dataB)); err != nil {
		t.Fatal(err)
	}
	// An object sealed with A that names no key: WAL-G's, or walgate's
	// from before fingerprints.
	var sealed bytes.Buffer
	w, _ := codec.NewWriter(&sealed, codec.Zstd, keyA)
	w.Write(dataOld)
	w.Close()
	cid := codec.NewContentID(keyA)
	cid.Write(dataOld)
	if status, msg := putRaw(t, g.URL, tok, seg3, sealed.Bytes(), dataOld, map[string]string{protocol.HeaderCompression: "zstd",
		protocol.HeaderEncryption: protocol.EncryptionLibsodium, protocol.HeaderContentID: cid.String()}); status != http.StatusCreated {
		t.Fatalf("PUT without a fingerprint: %d %s", status, msg)
	}

	// The gateway keeps and returns each object's fingerprint.
	for name, want := range map[string]string{seg1: keyA.Fingerprint(), seg2: keyB.Fingerprint(), seg3: ""} {
		req, _ := http.NewRequest(http.MethodGet, g.URL+protocol.WALPath(cluster, name), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get(protocol.HeaderKeyFingerprint); got != want {
			t.Errorf("%s: fingerprint %q, want %q", name, got, want)
		}
	}

	// The gateway counts the objects of each key.
	u, err := rotated.KeyUsage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, k := range u.Keys {
		got[k.Encryption+"/"+k.Fingerprint] = k.WAL
		if k.WAL == 1 && k.FirstWAL != k.LastWAL {
			t.Errorf("%+v: one WAL file, first and last differ", k)
		}
	}
	want := map[string]int{"libsodium/" + keyA.Fingerprint(): 1, "libsodium/" + keyB.Fingerprint(): 1, "libsodium/": 1}
	if len(got) != len(want) || got["libsodium/"+keyA.Fingerprint()] != 1 || got["libsodium/"+keyB.Fingerprint()] != 1 || got["libsodium/"] != 1 {
		t.Fatalf("key usage %v, want %v", got, want)
	}
	if rotated.KeyRole(keyA.Fingerprint()) != "old 1" || rotated.KeyRole(keyB.Fingerprint()) != "current" || onlyB.KeyRole(keyA.Fingerprint()) != "" {
		t.Fatal("key roles")
	}

	dst := t.TempDir()
	for name, want := range map[string][]byte{seg1: dataA, seg2: dataB, seg3: dataOld} {
		dest := filepath.Join(dst, name)
		if err := rotated.FetchWAL(context.Background(), name, dest); err != nil {
			t.Fatalf("rotated client, %s: %v", name, err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, want) {
			t.Fatalf("rotated client, %s: restored bytes differ", name)
		}
	}
	// The same segment again, now under B: the archive holds it already.
	if res, err := rotated.PushWAL(context.Background(), pathA); err != nil || res.Status != "exists" {
		t.Fatalf("re-push after the rotation: %+v, %v", res, err)
	}
	// Different bytes under the same name are still refused.
	if _, err := rotated.PushWAL(context.Background(), writeFile(t, t.TempDir(), seg1, dataB)); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("different bytes after the rotation: %v, want a conflict", err)
	}

	// Without A: the fingerprint says which key is missing; no trial.
	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	err = onlyB.FetchWAL(context.Background(), seg1, dest)
	ce := wantKind(t, "fetch of an A object with B only", err, client.ErrIntegrity)
	if !strings.Contains(ce.Message, keyA.Fingerprint()) || !strings.Contains(ce.Message, "WALGATE_ENCRYPTION_OLD_KEYS") {
		t.Fatalf("message does not name the missing key's fingerprint: %v", err)
	}
	wantKind(t, "fetch of an unnamed A object with B only", onlyB.FetchWAL(context.Background(), seg3, dest), client.ErrIntegrity)
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("a failed fetch left the destination")
	}
}
