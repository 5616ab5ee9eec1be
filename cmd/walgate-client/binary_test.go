package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/certs"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

const (
	cluster = "main"
	seg1    = "000000010000000000000001"
	seg2    = "000000010000000000000002"
	keyHex  = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyHex2 = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
)

// clientEnv is the environment of a client of g with token.
func clientEnv(url, token string, extra ...string) map[string]string {
	env := map[string]string{"WALGATE_URL": url, "WALGATE_TOKEN": token, "WALGATE_RETRIES": "0"}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

func withKey(env map[string]string, key string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	out["WALGATE_ENCRYPTION_KEY"] = key
	out["WALGATE_ENCRYPTION_KEY_TRANSFORM"] = "hex"
	return out
}

// TestPushFetch: the basic verbs, their exit codes and their output.
func TestPushFetch(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch")), keyHex)
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(t, 3<<20)
	p := writeFile(t, src, seg1, data)

	expectExit(t, "wal-push", walClient(t, env, "wal-push", p), 0)
	expectExit(t, "wal-push again", walClient(t, env, "wal-push", p), 0)
	dest := filepath.Join(dst, "RECOVERYXLOG")
	expectExit(t, "wal-fetch", walClient(t, env, "wal-fetch", seg1, dest), 0)
	if !bytes.Equal(readAll(t, dest), data) {
		t.Fatal("fetched bytes differ")
	}
	os.Remove(dest)
	expectExit(t, "wal-fetch of an unarchived name", walClient(t, env, "wal-fetch", seg2, dest), 74, seg2, "not in the archive")
	dirHolds(t, dst)
	r := walClient(t, env, "check")
	expectExit(t, "check", r, 0)
	if !strings.Contains(r.stdout, "cluster main") || !strings.Contains(r.stdout, "push,fetch") {
		t.Fatalf("check output: %q", r.stdout)
	}
	// Usage errors, with %p and %f printed literally.
	r = walClient(t, env, "wal-push")
	expectExit(t, "wal-push without an argument", r, 2, "(%p)")
	r = walClient(t, env, "wal-fetch", seg1)
	expectExit(t, "wal-fetch with one argument", r, 200, "(%f)", "(%p)")
	if r := walClient(t, env, "frobnicate"); r.code != 2 {
		t.Fatalf("unknown verb: exit %d", r.code)
	}
	if r := walClient(t, env); r.code != 2 {
		t.Fatalf("no verb: exit %d", r.code)
	}
	// A missing source file is a local problem.
	expectExit(t, "wal-push of a missing file", walClient(t, env, "wal-push", filepath.Join(src, seg2)), 6, "cannot read")
	// A destination in a missing directory: nothing is created.
	expectExit(t, "wal-fetch into a missing directory", walClient(t, env, "wal-fetch", seg1, filepath.Join(dst, "no", "x")), 200)
	dirHolds(t, dst)
}

// TestInvalidNames: bad names on push and fetch exit 6, send nothing and
// create nothing.
func TestInvalidNames(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := clientEnv(g.URL, g.Token(cluster, "push", "fetch"))
	src, dst := t.TempDir(), t.TempDir()
	for _, name := range []string{
		seg1[:23], seg1 + "0", "00000001000000000000000G", "00000001000000000000000a",
		"..%2F" + seg1, "%2E%2E", "000000000000000000000001", seg1 + ".zst", "RECOVERYXLOG",
	} {
		p := writeFile(t, src, name, []byte("x"))
		expectExit(t, "wal-push "+name, walClient(t, env, "wal-push", p), 6, "not a WAL file name")
		expectExit(t, "wal-fetch "+name, walClient(t, env, "wal-fetch", name, filepath.Join(dst, "x")), 200, "not a WAL file name")
	}
	for _, name := range []string{"", "..", "../" + seg1, seg1 + "/..", "/" + seg1, "../../catalog.db"} {
		expectExit(t, fmt.Sprintf("wal-fetch %q", name), walClient(t, env, "wal-fetch", name, filepath.Join(dst, "x")), 200, "not a WAL file name")
	}
	expectExit(t, "wal-push of a directory named ..", walClient(t, env, "wal-push", filepath.Join(src, "..")), 6)
	expectExit(t, "wal-push of an empty path", walClient(t, env, "wal-push", ""), 6)
	dirHolds(t, dst)
	waitStore(t, g.Data)
}

// TestAuth: token problems exit 3 (refused by the gateway) or 2 (refused
// by the client's own checks), and nothing is stored or restored.
func TestAuth(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	pf := g.Token(cluster, "push", "fetch")
	src, dst := t.TempDir(), t.TempDir()
	p1 := writeFile(t, src, seg1, randBytes(t, 1<<20))
	expectExit(t, "push", walClient(t, clientEnv(g.URL, pf), "wal-push", p1), 0)
	p2 := writeFile(t, src, seg2, randBytes(t, 6<<20))
	dest := filepath.Join(dst, "x")

	revoked := g.Token(cluster, "push", "fetch")
	r := runBin(t, nil, gatewayBin, "token", "revoke", "--data", g.Data, protocol.TokenID(revoked))
	if r.code != 0 {
		t.Fatalf("walgate token revoke: exit %d: %s", r.code, r.stderr)
	}
	unknown, err := protocol.NewToken(cluster)
	if err != nil {
		t.Fatal(err)
	}
	pushOnly, fetchOnly := g.Token(cluster, "push"), g.Token(cluster, "fetch")

	for _, c := range []struct {
		what       string
		token      string
		push, fetc bool
		msg        string
	}{
		{"unknown token", unknown, false, false, "unknown or revoked token"},
		{"revoked token", revoked, false, false, "unknown or revoked token"},
		{"push-only token", pushOnly, true, false, "lacks the fetch scope"},
		{"fetch-only token", fetchOnly, false, true, "lacks the push scope"},
	} {
		env := clientEnv(g.URL, c.token)
		r := walClient(t, env, "wal-fetch", seg1, dest)
		if c.fetc {
			expectExit(t, c.what+" fetching", r, 0)
			os.Remove(dest)
		} else {
			expectExit(t, c.what+" fetching", r, 200, c.msg)
		}
		r = walClient(t, env, "wal-push", p2)
		if c.push {
			expectExit(t, c.what+" pushing", r, 0)
		} else {
			expectExit(t, c.what+" pushing", r, 3, c.msg)
		}
		dirHolds(t, dst)
	}
	waitStore(t, g.Data, "main/wal_005/"+seg1+".zst", "main/wal_005/"+seg2+".zst")

	// No token, a token of another cluster: the client's own checks.
	expectExit(t, "no token", walClient(t, map[string]string{"WALGATE_URL": g.URL}, "wal-fetch", seg1, dest), 200, "WALGATE_TOKEN")
	other := g.Token("other", "push", "fetch")
	expectExit(t, "token of another cluster", walClient(t, clientEnv(g.URL, other, "WALGATE_CLUSTER", cluster), "wal-fetch", seg1, dest), 200, "WALGATE_CLUSTER", `"other"`)
	// Without WALGATE_CLUSTER the token's own cluster is used: the other
	// cluster's archive, where seg1 is not.
	expectExit(t, "token of another cluster, its own archive", walClient(t, clientEnv(g.URL, other), "wal-fetch", seg1, dest), 74)
	dirHolds(t, dst)
}

// TestConflict: a second push of a name with other bytes exits 5 and the
// stored object stays as it was.
func TestConflict(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := clientEnv(g.URL, g.Token(cluster, "push", "fetch"), "WALGATE_COMPRESSION", "none")
	src := t.TempDir()
	first := randBytes(t, 2<<20)
	p := writeFile(t, src, seg1, first)
	expectExit(t, "first push", walClient(t, env, "wal-push", p), 0)
	obj := filepath.Join(g.Data, "store", cluster, "wal_005", seg1)
	if !bytes.Equal(readAll(t, obj), first) {
		t.Fatal("stored object differs from the pushed file")
	}
	expectExit(t, "same bytes again", walClient(t, env, "wal-push", p), 0)
	second := append([]byte{}, first...)
	second[12345] ^= 0xff
	writeFile(t, src, seg1, second)
	expectExit(t, "different bytes", walClient(t, env, "wal-push", p), 5, seg1, "different content")
	if !bytes.Equal(readAll(t, obj), first) {
		t.Fatal("the stored object changed after a refused push")
	}
	waitStore(t, g.Data, "main/wal_005/"+seg1)
}

// TestConcurrentSamePush: concurrent wal-push of one file all exit 0 and
// one object is stored.
func TestConcurrentSamePush(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch")), keyHex)
	data := randBytes(t, 3<<20)
	p := writeFile(t, t.TempDir(), seg1, data)
	const n = 6
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = walClient(t, env, "wal-push", p)
		}()
	}
	wg.Wait()
	for i, r := range results {
		expectExit(t, fmt.Sprintf("push %d", i), r, 0)
	}
	waitStore(t, g.Data, "main/wal_005/"+seg1+".zst")
	dest := filepath.Join(t.TempDir(), "x")
	expectExit(t, "fetch", walClient(t, env, "wal-fetch", seg1, dest), 0)
	if !bytes.Equal(readAll(t, dest), data) {
		t.Fatal("fetched bytes differ")
	}
}

// TestIntegrity: tampered ciphertext, a wrong key and a missing key exit 4
// and leave nothing at the destination.
func TestIntegrity(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	base := clientEnv(g.URL, g.Token(cluster, "push", "fetch"))
	env := withKey(base, keyHex)
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(t, 2<<20)
	for _, name := range []string{seg1, seg2} {
		expectExit(t, "push "+name, walClient(t, env, "wal-push", writeFile(t, src, name, data)), 0)
	}
	dest := filepath.Join(dst, "RECOVERYXLOG")

	expectExit(t, "wrong key", walClient(t, withKey(base, keyHex2), "wal-fetch", seg1, dest), 200, "wrong key")
	dirHolds(t, dst)
	expectExit(t, "no key", walClient(t, base, "wal-fetch", seg1, dest), 200, "WALGATE_ENCRYPTION_KEY")
	dirHolds(t, dst)

	obj := filepath.Join(g.Data, "store", cluster, "wal_005", seg2+".zst")
	stored := readAll(t, obj)
	for _, at := range []int{0, 30, len(stored) / 2, len(stored) - 1} {
		bad := append([]byte{}, stored...)
		bad[at] ^= 0x01
		if err := os.WriteFile(obj, bad, 0o640); err != nil {
			t.Fatal(err)
		}
		expectExit(t, fmt.Sprintf("byte %d of %d flipped", at, len(stored)), walClient(t, env, "wal-fetch", seg2, dest), 200, "integrity failure")
		dirHolds(t, dst)
	}
	// wal-verify names the segment whose every copy failed its checks.
	r := walClient(t, env, "wal-verify", "--no-db")
	if r.code != 8 || !strings.Contains(r.stdout, "damaged: every stored copy of "+seg2+" fails its checks") || strings.Contains(r.stdout, "copy of "+seg1) {
		t.Fatalf("wal-verify after the damage: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The untouched object still restores.
	expectExit(t, "fetch of the intact object", walClient(t, env, "wal-fetch", seg1, dest), 0)
	if !bytes.Equal(readAll(t, dest), data) {
		t.Fatal("fetched bytes differ")
	}
}

// TestGatewayDown: nothing listening exits 1 quickly, says so, and
// creates nothing.
func TestGatewayDown(t *testing.T) {
	t.Parallel()
	url := "http://" + freeAddr(t)
	tok := "wgt1.main." + strings.Repeat("A", 43)
	dst := t.TempDir()
	p := writeFile(t, t.TempDir(), seg1, randBytes(t, 1000))
	for _, retries := range []string{"0", "1"} {
		env := clientEnv(url, tok, "WALGATE_RETRIES", retries)
		r := walClient(t, env, "wal-fetch", seg1, filepath.Join(dst, "x"))
		expectExit(t, "fetch, retries "+retries, r, 200, "cannot reach the gateway")
		if r.took > 5*time.Second {
			t.Fatalf("fetch against a closed port took %v", r.took)
		}
		r = walClient(t, env, "wal-push", p)
		expectExit(t, "push, retries "+retries, r, 1, "cannot reach the gateway")
		if r.took > 5*time.Second {
			t.Fatalf("push against a closed port took %v", r.took)
		}
		expectExit(t, "check", walClient(t, env, "check"), 1, "cannot reach the gateway")
	}
	// PostgreSQL runs restore_command in the data directory: with
	// standby.signal there, an unreachable gateway is a soft failure (the
	// standby retries by itself); with recovery.signal it stops recovery.
	pgdata := t.TempDir()
	writeFile(t, pgdata, "recovery.signal", nil)
	env := clientEnv(url, tok)
	expectExit(t, "fetch in archive recovery", runBinIn(t, pgdata, env, clientBin, "wal-fetch", seg1, filepath.Join(dst, "x")), 200, seg1, "cannot reach the gateway", "recovery stops")
	writeFile(t, pgdata, "standby.signal", nil)
	expectExit(t, "fetch on a standby", runBinIn(t, pgdata, env, clientBin, "wal-fetch", seg1, filepath.Join(dst, "x")), 1, seg1, "cannot reach the gateway", "standby retries")
	// A standby still stops on what waiting cannot cure.
	bad := clientEnv(url, "not a token")
	expectExit(t, "fetch on a standby, bad token", runBinIn(t, pgdata, bad, clientBin, "wal-fetch", seg1, filepath.Join(dst, "x")), 200, "WALGATE_TOKEN")
	dirHolds(t, dst)
}

// TestFetchCut: a gateway that dies while sending an object (a proxy cuts
// the connection after some bytes): non-zero exit, nothing at dest.
func TestFetchCut(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := clientEnv(g.URL, g.Token(cluster, "push", "fetch"))
	data := randBytes(t, 4<<20)
	expectExit(t, "push", walClient(t, env, "wal-push", writeFile(t, t.TempDir(), seg1, data)), 0)
	target := strings.TrimPrefix(g.URL, "http://")
	dst := t.TempDir()
	for _, after := range []int64{1, 100, 600, 64 << 10, 2 << 20, 4<<20 - 10} {
		px := startProxy(t, target, 0, after)
		cenv := clientEnv("http://"+px.addr(), env["WALGATE_TOKEN"], "WALGATE_RETRIES", "1")
		r := walClient(t, cenv, "wal-fetch", seg1, filepath.Join(dst, "RECOVERYXLOG"))
		expectExit(t, fmt.Sprintf("cut after %d bytes", after), r, 200)
		if px.cuts.Load() < 2 {
			t.Fatalf("cut after %d bytes: the proxy cut %d connections, want one per attempt", after, px.cuts.Load())
		}
		dirHolds(t, dst)
	}
	// Through an uncut proxy it works: the proxy itself is sound.
	px := startProxy(t, target, 0, 0)
	expectExit(t, "uncut proxy", walClient(t, clientEnv("http://"+px.addr(), env["WALGATE_TOKEN"]), "wal-fetch", seg1, filepath.Join(dst, "x")), 0)
	if !bytes.Equal(readAll(t, filepath.Join(dst, "x")), data) {
		t.Fatal("fetched bytes differ")
	}
}

// TestPushCut: the connection breaks while the body is uploaded: non-zero
// exit, and the gateway stores nothing.
func TestPushCut(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	p := writeFile(t, t.TempDir(), seg1, randBytes(t, 6<<20))
	target := strings.TrimPrefix(g.URL, "http://")
	for _, after := range []int64{10, 500, 16 << 10, 1 << 20, 6<<20 - 10} {
		px := startProxy(t, target, after, 0)
		env := clientEnv("http://"+px.addr(), tok, "WALGATE_COMPRESSION", "none", "WALGATE_RETRIES", "1")
		r := walClient(t, env, "wal-push", p)
		expectExit(t, fmt.Sprintf("cut after %d bytes", after), r, 1)
		if px.cuts.Load() < 2 {
			t.Fatalf("cut after %d bytes: the proxy cut %d connections, want one per attempt", after, px.cuts.Load())
		}
		waitStore(t, g.Data)
		dst := t.TempDir()
		expectExit(t, "fetch after the cut push", walClient(t, clientEnv(g.URL, tok), "wal-fetch", seg1, filepath.Join(dst, "x")), 74)
		dirHolds(t, dst)
	}
	px := startProxy(t, target, 0, 0)
	expectExit(t, "uncut proxy", walClient(t, clientEnv("http://"+px.addr(), tok, "WALGATE_COMPRESSION", "none"), "wal-push", p), 0)
	waitStore(t, g.Data, "main/wal_005/"+seg1)
}

// TestTLS: a private CA must be named; then push and fetch work. With
// client certificates required, a client without one is refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	pki, err := certs.InitTrialPKI(t.TempDir(), []string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(t, 1<<20)
	src := t.TempDir()
	p1 := writeFile(t, src, seg1, data)
	p2 := writeFile(t, src, seg2, data)

	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{TLS: gateway.TLSConfig{Cert: pki.ServerCert, Key: pki.ServerKey}}})
	if !strings.HasPrefix(g.URL, "https://") {
		t.Fatalf("gateway URL %s", g.URL)
	}
	tok := g.Token(cluster, "push", "fetch")
	dst := t.TempDir()
	env := clientEnv(g.URL, tok)
	expectExit(t, "push without WALGATE_CA_FILE", walClient(t, env, "wal-push", p1), 3, "WALGATE_CA_FILE")
	expectExit(t, "fetch without WALGATE_CA_FILE", walClient(t, env, "wal-fetch", seg1, filepath.Join(dst, "x")), 200, "WALGATE_CA_FILE")
	expectExit(t, "check without WALGATE_CA_FILE", walClient(t, env, "check"), 3, "WALGATE_CA_FILE")
	waitStore(t, g.Data)
	// The wrong CA: the client's own certificate is no CA.
	expectExit(t, "push with the wrong CA", walClient(t, clientEnv(g.URL, tok, "WALGATE_CA_FILE", pki.ClientCert), "wal-push", p1), 3)
	expectExit(t, "unreadable WALGATE_CA_FILE", walClient(t, clientEnv(g.URL, tok, "WALGATE_CA_FILE", filepath.Join(dst, "none.crt")), "wal-push", p1), 2, "WALGATE_CA_FILE")
	// https:// in the URL for a plain gateway, plain http:// for a TLS one.
	plain := gatewaytest.Start(t, gatewaytest.Options{})
	// (Whether the plain gateway answers the TLS hello at once, as a
	// malformed request, or waits for more header bytes depends on the
	// hello's random bytes; so the timeout is short and both outcomes
	// count.)
	r := walClient(t, clientEnv(strings.Replace(plain.URL, "http://", "https://", 1), plain.Token(cluster, "push"), "WALGATE_TIMEOUT", "2s"), "wal-push", p1)
	if r.code != 6 && r.code != 1 {
		t.Fatalf("https:// to a plain gateway: exit %d: %s", r.code, r.stderr)
	}
	if r.code == 6 && !strings.Contains(r.stderr, "plain HTTP") {
		t.Fatalf("https:// to a plain gateway: %s", r.stderr)
	}
	r = walClient(t, clientEnv(strings.Replace(g.URL, "https://", "http://", 1), tok, "WALGATE_TIMEOUT", "2s"), "wal-push", p1)
	if r.code == 0 || r.code == 2 {
		t.Fatalf("http:// to a TLS gateway: exit %d: %s", r.code, r.stderr)
	}
	waitStore(t, plain.Data)
	waitStore(t, g.Data)

	env = clientEnv(g.URL, tok, "WALGATE_CA_FILE", pki.CACert)
	expectExit(t, "push with WALGATE_CA_FILE", walClient(t, env, "wal-push", p1), 0)
	expectExit(t, "fetch with WALGATE_CA_FILE", walClient(t, env, "wal-fetch", seg1, filepath.Join(dst, "x")), 0)
	if !bytes.Equal(readAll(t, filepath.Join(dst, "x")), data) {
		t.Fatal("fetched bytes differ")
	}
	os.Remove(filepath.Join(dst, "x"))
	u, _ := url.Parse(g.URL)
	expectExit(t, "localhost", walClient(t, clientEnv("https://localhost:"+u.Port(), tok, "WALGATE_CA_FILE", pki.CACert), "check"), 0)
	// The host name must match the certificate: a gateway whose
	// certificate names localhost only, reached as 127.0.0.1.
	pki2, err := certs.InitTrialPKI(t.TempDir(), []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{TLS: gateway.TLSConfig{Cert: pki2.ServerCert, Key: pki2.ServerKey}}})
	expectExit(t, "host not in the certificate", walClient(t, clientEnv(h.URL, h.Token(cluster, "push"), "WALGATE_CA_FILE", pki2.CACert), "wal-push", p1), 3, "does not name that host")
	waitStore(t, h.Data)

	// Mutual TLS.
	m := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{TLS: gateway.TLSConfig{Cert: pki.ServerCert, Key: pki.ServerKey, ClientCA: pki.CACert}}})
	mtok := m.Token(cluster, "push", "fetch")
	noCert := clientEnv(m.URL, mtok, "WALGATE_CA_FILE", pki.CACert)
	for i := range 3 { // the refusal of a missing certificate may come after the handshake: repeat
		expectExit(t, fmt.Sprintf("mTLS push without a client certificate (%d)", i), walClient(t, noCert, "wal-push", p2), 3, "WALGATE_CLIENT_CERT")
		expectExit(t, fmt.Sprintf("mTLS fetch without a client certificate (%d)", i), walClient(t, noCert, "wal-fetch", seg2, filepath.Join(dst, "x")), 200, "WALGATE_CLIENT_CERT")
	}
	waitStore(t, m.Data)
	dirHolds(t, dst)
	withCert := clientEnv(m.URL, mtok, "WALGATE_CA_FILE", pki.CACert, "WALGATE_CLIENT_CERT", pki.ClientCert, "WALGATE_CLIENT_KEY", pki.ClientKey)
	expectExit(t, "mTLS push with a client certificate", walClient(t, withCert, "wal-push", p2), 0)
	expectExit(t, "mTLS fetch with a client certificate", walClient(t, withCert, "wal-fetch", seg2, filepath.Join(dst, "x")), 0)
	if !bytes.Equal(readAll(t, filepath.Join(dst, "x")), data) {
		t.Fatal("fetched bytes differ")
	}
	// A certificate the gateway's CA did not sign: another trial PKI's.
	foreign := clientEnv(m.URL, mtok, "WALGATE_CA_FILE", pki.CACert, "WALGATE_CLIENT_CERT", pki2.ClientCert, "WALGATE_CLIENT_KEY", pki2.ClientKey)
	expectExit(t, "mTLS with a foreign client certificate", walClient(t, foreign, "check"), 3)
	expectExit(t, "client certificate without its key", walClient(t, clientEnv(m.URL, mtok, "WALGATE_CA_FILE", pki.CACert, "WALGATE_CLIENT_CERT", pki.ClientCert), "check"), 2, "WALGATE_CLIENT_KEY")
}

// TestInsecureHTTP: plain http:// to a non-loopback address is refused
// before any connection is tried.
func TestInsecureHTTP(t *testing.T) {
	t.Parallel()
	tok := "wgt1.main." + strings.Repeat("A", 43)
	p := writeFile(t, t.TempDir(), seg1, []byte("x"))
	dst := t.TempDir()
	for _, u := range []string{"http://192.0.2.1:7480", "http://[2001:db8::1]:7480", "http://walgate.example:7480"} {
		// A long timeout and many retries: only a refusal before
		// connecting can be quick.
		env := clientEnv(u, tok, "WALGATE_TIMEOUT", "60s", "WALGATE_RETRIES", "20")
		r := walClient(t, env, "wal-push", p)
		expectExit(t, "push to "+u, r, 2, "refusing plain http://", "WALGATE_ALLOW_INSECURE_HTTP")
		if r.took > 3*time.Second {
			t.Fatalf("refusal took %v", r.took)
		}
		r = walClient(t, env, "wal-fetch", seg1, filepath.Join(dst, "x"))
		expectExit(t, "fetch from "+u, r, 200, "refusing plain http://")
	}
	dirHolds(t, dst)
}

// TestConfigErrors: configuration problems exit 2 with a message naming
// what to set.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	p := writeFile(t, t.TempDir(), seg1, []byte("x"))
	dst := t.TempDir()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WALGATE_TOKEN": tok}, "WALGATE_URL is not set"},
		{map[string]string{"WALGATE_URL": g.URL}, "WALGATE_TOKEN is not set"},
		{clientEnv(g.URL, "not-a-token"), "malformed walgate token"},
		{clientEnv(g.URL, tok[:len(tok)-1]), "malformed walgate token"},
		{clientEnv(g.URL, tok, "WALGATE_CLUSTER", "other"), "WALGATE_CLUSTER"},
		{clientEnv(g.URL, tok, "WALGATE_COMPRESSION", "gzip"), "WALGATE_COMPRESSION"},
		{clientEnv(g.URL, tok, "WALG_COMPRESSION_METHOD", "xz"), "WALG_COMPRESSION_METHOD"},
		{clientEnv(g.URL, tok, "WALGATE_ENCRYPTION_KEY", "short raw key"), "at least 25 bytes"},
		{clientEnv(g.URL, tok, "WALG_LIBSODIUM_KEY", "short raw key"), "WALG_LIBSODIUM_KEY"},
		{clientEnv(g.URL, tok, "WALGATE_ENCRYPTION_KEY", "abcd", "WALGATE_ENCRYPTION_KEY_TRANSFORM", "hex"), "WALGATE_ENCRYPTION_KEY"},
		{clientEnv("ftp://127.0.0.1", tok), "WALGATE_URL"},
		{clientEnv(g.URL, tok, "WALGATE_TIMEOUT", "-1s"), "WALGATE_TIMEOUT"},
	} {
		r := walClient(t, c.env, "wal-push", p)
		expectExit(t, fmt.Sprintf("push with %v", c.env), r, 2, c.want)
		if strings.Contains(r.stderr, "short raw key") {
			t.Fatalf("the key shows in the message: %s", r.stderr)
		}
		r = walClient(t, c.env, "wal-fetch", seg1, filepath.Join(dst, "x"))
		expectExit(t, fmt.Sprintf("fetch with %v", c.env), r, 200, c.want)
	}
	dirHolds(t, dst)
	waitStore(t, g.Data)
}
