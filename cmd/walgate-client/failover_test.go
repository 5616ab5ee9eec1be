package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway/gatewaytest"
)

const (
	seg3 = "000000010000000000000003"
	seg4 = "000000010000000000000004"
	seg9 = "000000010000000000000009"
)

// twoGateways starts two real gateways, each with its own catalog and
// store, that accept the same push+fetch token.
func twoGateways(t *testing.T) (a, b *gatewaytest.Gateway, token string) {
	t.Helper()
	a = gatewaytest.Start(t, gatewaytest.Options{})
	b = gatewaytest.Start(t, gatewaytest.Options{})
	token = a.Token(cluster, "push", "fetch")
	recs, err := a.Server.Catalog().TokenRecords()
	if err != nil {
		t.Fatal(err)
	}
	for hash, rec := range recs {
		if err := b.Server.Catalog().AddToken(hash, rec); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, token
}

// walCopies lists the files of a gateway's store that hold name.
func walCopies(t *testing.T, g *gatewaytest.Gateway, name string) []string {
	t.Helper()
	var out []string
	for _, f := range storeFiles(t, g.Data) {
		if strings.Contains(f, name) {
			out = append(out, f)
		}
	}
	return out
}

// TestFailoverPush: with a gateway list, a push whose upload is cut
// mid-body is sent again from the start to the next gateway and lands
// exactly once, and the next run (a new process) starts with the gateway
// that worked, remembered in pg_wal/walgate/gateway.
func TestFailoverPush(t *testing.T) {
	t.Parallel()
	a, b, token := twoGateways(t)
	pa := startProxy(t, strings.TrimPrefix(a.URL, "http://"), 64<<10, 0)
	env := clientEnv("http://"+pa.addr()+", "+b.URL, token, "WALGATE_LOOKAHEAD", "0")
	walDir := filepath.Join(t.TempDir(), "pg_wal")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}

	// 1 MiB of random bytes does not fit in the 64 KiB the proxy lets
	// through to the first gateway.
	big := randBytes(t, 1<<20)
	expectExit(t, "wal-push cut on the first gateway", walClient(t, env, "wal-push", writeFile(t, walDir, seg1, big)), 0)
	if pa.cuts.Load() == 0 {
		t.Fatal("the upload to the first gateway was never cut")
	}
	if got := walCopies(t, a, seg1); len(got) != 0 {
		t.Fatalf("the gateway whose upload was cut holds %q", got)
	}
	if got := walCopies(t, b, seg1); len(got) != 1 {
		t.Fatalf("the second gateway holds %q, want one object", got)
	}
	state := filepath.Join(walDir, "walgate", "gateway")
	if got := strings.TrimSpace(string(readAll(t, state))); got != b.URL {
		t.Fatalf("state file names %q, want %q", got, b.URL)
	}

	// A small segment would pass the proxy; the remembered gateway is
	// tried first all the same.
	expectExit(t, "wal-push after failover", walClient(t, env, "wal-push", writeFile(t, walDir, seg2, []byte("small"))), 0)
	if len(walCopies(t, a, seg2)) != 0 || len(walCopies(t, b, seg2)) != 1 {
		t.Fatalf("%s: first gateway %q, second %q; want it on the remembered second only", seg2, walCopies(t, a, seg2), walCopies(t, b, seg2))
	}
	// Without the state file the list's order applies again.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	expectExit(t, "wal-push without state", walClient(t, env, "wal-push", writeFile(t, walDir, seg3, []byte("small"))), 0)
	if len(walCopies(t, a, seg3)) != 1 || len(walCopies(t, b, seg3)) != 0 {
		t.Fatalf("%s: first gateway %q, second %q; want it on the first only", seg3, walCopies(t, a, seg3), walCopies(t, b, seg3))
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("the first gateway answered and the state file was written anyway: %v", err)
	}

	// Every gateway down: no acknowledgement, exit 1, nothing stored.
	pa.ln.Close()
	envDown := clientEnv("http://"+pa.addr()+",http://"+freeAddr(t), token, "WALGATE_LOOKAHEAD", "0")
	expectExit(t, "wal-push with every gateway down", walClient(t, envDown, "wal-push", writeFile(t, walDir, seg4, []byte("x"))), 1, "no gateway of 2 answered")
	if len(walCopies(t, a, seg4))+len(walCopies(t, b, seg4)) != 0 {
		t.Fatal("a push no gateway acknowledged was stored")
	}
}

// TestFailoverFetchCodes: wal-fetch through a list moves on from a
// gateway that is down or whose stream breaks off, and keeps its exit-code
// contract: 74 only on a definite 404, 200 when no gateway answers (1 on a
// standby), and never 74 after a gateway began to serve the file.
func TestFailoverFetchCodes(t *testing.T) {
	t.Parallel()
	a, b, token := twoGateways(t)
	src := t.TempDir()
	data := randBytes(t, 1<<20)
	p1 := writeFile(t, src, seg1, data)
	for _, g := range []*gatewaytest.Gateway{a, b} {
		expectExit(t, "wal-push to "+g.URL, walClient(t, clientEnv(g.URL, token, "WALGATE_LOOKAHEAD", "0"), "wal-push", p1), 0)
	}
	expectExit(t, "wal-push to the first gateway only", walClient(t, clientEnv(a.URL, token, "WALGATE_LOOKAHEAD", "0"), "wal-push", writeFile(t, src, seg4, data)), 0)

	pa := startProxy(t, strings.TrimPrefix(a.URL, "http://"), 0, 128<<10)
	dataDir := t.TempDir()
	walDir := filepath.Join(dataDir, "pg_wal")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join("pg_wal", "RECOVERYXLOG")
	fetch := func(urls string, name string) result {
		t.Helper()
		env := clientEnv(urls, token, "WALGATE_PREFETCH", "0")
		return runBinIn(t, dataDir, env, clientBin, "wal-fetch", name, dest)
	}
	list := "http://" + pa.addr() + "," + b.URL

	// The first gateway's stream breaks off; the second serves it whole.
	expectExit(t, "wal-fetch with the first stream cut", fetch(list, seg1), 0)
	if pa.cuts.Load() == 0 {
		t.Fatal("the download from the first gateway was never cut")
	}
	if !bytes.Equal(readAll(t, filepath.Join(dataDir, dest)), data) {
		t.Fatal("fetched bytes differ")
	}
	os.Remove(filepath.Join(dataDir, dest))

	// One gateway down, the other answers 404: the end of the archive.
	down := "http://" + freeAddr(t)
	expectExit(t, "wal-fetch: one down, the other 404", fetch(down+","+b.URL, seg9), 74, "not in the archive")
	// Every gateway down: recovery stops rather than end early.
	expectExit(t, "wal-fetch: all down", fetch(down+",http://"+freeAddr(t), seg9), exitStopRecovery, "no gateway of 2 answered")

	// The first gateway began to serve seg4 and broke off; the second,
	// with a catalog of its own, says 404. That is not the end of the
	// archive.
	os.Remove(filepath.Join(walDir, "walgate", "gateway"))
	expectExit(t, "wal-fetch: served, then 404 elsewhere", fetch(list, seg4), exitStopRecovery, "not treating it as the end of the archive")
	dirHolds(t, walDir, "walgate")

	// On a standby an unreachable fleet is soft.
	writeFile(t, dataDir, "standby.signal", nil)
	expectExit(t, "wal-fetch on a standby: all down", fetch(down+",http://"+freeAddr(t), seg9), 1)
	expectExit(t, "wal-fetch on a standby: one down, the other 404", fetch(down+","+b.URL, seg9), 74)
}

// TestCheckList: check reports every gateway of the list, succeeds while
// one works (with a warning), fails when none does, and a bad entry is a
// configuration error that names it.
func TestCheckList(t *testing.T) {
	t.Parallel()
	_, b, token := twoGateways(t)
	down := "http://" + freeAddr(t)
	r := walClient(t, clientEnv(down+","+b.URL, token), "check")
	expectExit(t, "check with one gateway down", r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], down+": FAILED (reachable no") ||
		!strings.Contains(lines[1], b.URL+" (version ") || !strings.Contains(lines[1], "OK") || !strings.Contains(lines[2], "WARNING: 1 of 2") {
		t.Fatalf("check output:\n%s", r.stdout)
	}
	r = walClient(t, clientEnv(down+",http://"+freeAddr(t), token), "check")
	expectExit(t, "check with every gateway down", r, 1, "none of the 2 gateways")
	if strings.Count(r.stdout, "FAILED") != 2 {
		t.Fatalf("check output:\n%s", r.stdout)
	}
	// A token the second gateway does not know: reachable, token refused.
	other := gatewaytest.Start(t, gatewaytest.Options{})
	r = walClient(t, clientEnv(b.URL+","+other.URL, token), "check")
	expectExit(t, "check with a token one gateway refuses", r, 0)
	if !strings.Contains(r.stdout, other.URL+": FAILED (reachable yes, TLS off (http), token REFUSED)") {
		t.Fatalf("check output:\n%s", r.stdout)
	}
	r = walClient(t, clientEnv(b.URL+",ftp://x", token), "check")
	expectExit(t, "check with a bad entry", r, 2, "WALGATE_URL entry 2", "ftp://x")
	r = walClient(t, clientEnv(b.URL+",,"+down, token), "check")
	expectExit(t, "check with an empty entry", r, 2, "WALGATE_URL entry 2 is empty")
}
