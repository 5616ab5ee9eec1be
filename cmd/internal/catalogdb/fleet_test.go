package catalogdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/layout"
)

// fleetConfig is a gateway config on the PostgreSQL catalog dsn and one fs
// store at storeDir, shared by every gateway of the test.
func fleetConfig(dsn, storeDir string) gateway.Config {
	return gateway.Config{
		Catalog:  config.CatalogConfig{Type: config.CatalogPostgres, Postgres: config.PostgresCatalog{DSN: dsn}},
		Backends: []config.BackendConfig{{Name: "shared", Type: "fs", Path: storeDir}},
	}
}

// pushWAL PUTs body as WAL name of cluster "db" (uncompressed, plain) and
// returns the HTTP status.
func pushWAL(t *testing.T, url, token, name string, body []byte) int {
	t.Helper()
	return pushWALFrom(t, url, token, name, body, bytes.NewReader(body))
}

// pushWALFrom is pushWAL whose request body comes from r (which yields
// body's bytes, at its own pace).
func pushWALFrom(t *testing.T, url, token, name string, body []byte, r io.Reader) int {
	t.Helper()
	sum := sha256.Sum256(body)
	req, err := http.NewRequest(http.MethodPut, url+protocol.WALPath("db", name), r)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(protocol.HeaderContentSHA256, hex.EncodeToString(sum[:]))
	req.Header.Set(protocol.HeaderCompression, "none")
	req.Header.Set(protocol.HeaderEncryption, protocol.EncryptionNone)
	req.Header.Set(protocol.HeaderContentID, "sha256:"+hex.EncodeToString(sum[:]))
	req.Header.Set(protocol.HeaderPlainSize, strconv.Itoa(len(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Logf("push %s to %s: %d %s", name, url, resp.StatusCode, msg)
	}
	return resp.StatusCode
}

// Two gateways on one catalog and one store, pushing the same names with
// different content at the same moment: for every name exactly one push
// is stored (201), the other is refused (409), and the store holds the
// winner's bytes under the final key.
func TestFleetSameNameRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	dsn := srv.NewDatabase(t, "")
	storeDir := t.TempDir()
	g1 := gatewaytest.Start(t, gatewaytest.Options{Config: fleetConfig(dsn, storeDir)})
	g2 := gatewaytest.Start(t, gatewaytest.Options{Config: fleetConfig(dsn, storeDir)})
	token := g1.Token("db", "push", "fetch") // one catalog: g2 knows it too
	gws := []*gatewaytest.Gateway{g1, g2}
	for round := range 12 {
		name := fmt.Sprintf("0000000100000000000000%02X", round+1)
		bodies := make([][]byte, 2)
		for i := range bodies {
			bodies[i] = make([]byte, 1<<20)
			for j := range bodies[i] {
				bodies[i][j] = byte(rand.Uint32())
			}
		}
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { codes[i] = pushWAL(t, gws[i].URL, token, name, bodies[i]) })
		}
		wg.Wait()
		winner := -1
		switch {
		case codes[0] == http.StatusCreated && codes[1] == http.StatusConflict:
			winner = 0
		case codes[1] == http.StatusCreated && codes[0] == http.StatusConflict:
			winner = 1
		default:
			t.Fatalf("%s: answers %v, want one 201 and one 409", name, codes)
		}
		rec, err := g2.Server.Catalog().WAL("db", name)
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(bodies[winner])
		if rec.SHA256 != hex.EncodeToString(want[:]) {
			t.Fatalf("%s: the catalog records the loser's hash", name)
		}
		stored, err := os.ReadFile(filepath.Join(storeDir, filepath.FromSlash(layout.WALKey("db", name, "none"))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored, bodies[winner]) {
			t.Fatalf("%s: the store holds the loser's bytes under the final key", name)
		}
	}
	// Either gateway answers for what the other stored, and each one's
	// WAL summary (health, status, metrics) follows the other's pushes
	// within seconds.
	rec, err := g1.Server.Catalog().WAL("db", "000000010000000000000001")
	if err != nil || rec.Size != 1<<20 {
		t.Fatalf("%+v %v", rec, err)
	}
	for _, g := range gws {
		files := 0
		for deadline := time.Now().Add(5 * time.Second); files != 12; time.Sleep(100 * time.Millisecond) {
			st, err := g.Server.FleetStatus(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range st {
				if c.Cluster == "db" {
					files = c.WALFiles
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway %s counts %d WAL files of 12 after 5 s", g.URL, files)
			}
		}
	}
}

// A gateway whose catalog becomes unreachable answers 503, acknowledges
// nothing and is not ready; once the database is back it recovers without
// a restart. A
// gateway cannot start without its catalog, and says why.
func TestFleetCatalogUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	proxy := NewProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.Cluster.Port))
	dsn := srv.NewDatabase(t, proxy.Addr)
	storeDir := t.TempDir()

	proxy.Cut()
	cfg := fleetConfig(dsn, storeDir)
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	if _, err := gateway.Open(cfg, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Fatal("a gateway started without its catalog")
	} else if msg := err.Error(); !strings.Contains(msg, "catalog") || strings.Contains(msg, Password) {
		t.Fatalf("start without the catalog: %v", err)
	}
	proxy.Restore()

	g := gatewaytest.Start(t, gatewaytest.Options{Config: fleetConfig(dsn, storeDir)})
	token := g.Token("db", "push", "fetch")
	body := bytes.Repeat([]byte("w"), 1<<20)
	if code := pushWAL(t, g.URL, token, "000000010000000000000001", body); code != http.StatusCreated {
		t.Fatalf("push with the catalog up: %d", code)
	}
	proxy.Cut()
	for i, name := range []string{"000000010000000000000002", "000000010000000000000003"} {
		if code := pushWAL(t, g.URL, token, name, body); code != http.StatusServiceUnavailable {
			t.Fatalf("push %d with the catalog down: %d, want 503", i, code)
		}
	}
	// /readyz says why: the catalog, without its password.
	if r := g.Server.Readiness(); r.Ready || !strings.Contains(strings.Join(r.Reasons, "; "), "catalog") ||
		strings.Contains(strings.Join(r.Reasons, "; "), Password) {
		t.Fatalf("readiness with the catalog down: %+v", r)
	}
	proxy.Restore()
	for deadline := time.Now().Add(15 * time.Second); !g.Server.Readiness().Ready; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 15 s after the catalog came back: %+v", g.Server.Readiness())
		}
	}
	// Cut while a push's body is on its way: the commit cannot happen, so
	// nothing is acknowledged.
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() { done <- pushWALFrom(t, g.URL, token, "000000010000000000000004", body, pr) }()
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the gateway holds the claim and is writing
	proxy.Cut()
	if _, err := pw.Write(body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-done; code != http.StatusServiceUnavailable {
		t.Fatalf("push cut mid-body: %d, want 503", code)
	}
	proxy.Restore()
	if code := pushWAL(t, g.URL, token, "000000010000000000000002", body); code != http.StatusCreated {
		t.Fatalf("push after the catalog came back: %d", code)
	}
	if err := g.Server.Catalog().Check(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"000000010000000000000003", "000000010000000000000004"} {
		if _, err := g.Server.Catalog().WAL("db", name); err == nil {
			t.Fatalf("%s, refused with 503, is in the catalog", name)
		}
	}
	// The push cut mid-body left its claim; a retry takes the name once
	// the claim is released or has expired, and stores it.
	if code := pushWAL(t, g.URL, token, "000000010000000000000004", body); code != http.StatusCreated {
		t.Fatalf("retry of the push cut mid-body: %d", code)
	}
}

// The janitor runs on one gateway of a fleet at a time; when its gateway
// stops without a word (its lease is never released), another takes the
// duty over once the lease expires.
func TestFleetDutyTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	dsn := srv.NewDatabase(t, "")
	storeDir := t.TempDir()
	cfg := fleetConfig(dsn, storeDir)
	cfg.Limits.BackupSessionTimeout = 2 * time.Second // the janitor runs every 0.5 s, lease 1.5 s
	g1 := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	g2 := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	watcher := open(t, dsn)
	defer watcher.Close()
	pool := watcher.Pool()
	owner := func() string {
		var o string
		err := pool.QueryRow(context.Background(), `SELECT owner FROM walgate.leases WHERE duty = 'janitor' AND until > now()`).Scan(&o)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return o
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("a janitor", func() bool { return owner() != "" })
	first := owner()
	// Both gateways run their tickers; the holder stays the holder.
	time.Sleep(2 * time.Second)
	if owner() != first {
		t.Fatalf("the janitor moved between live gateways: %s, then %s", first, owner())
	}
	// Stop the holder's background work as a kill would: the lease stays
	// in the catalog until it expires.
	holder, other := g1, g2
	if !strings.Contains(first, g1.Server.Instance()) {
		holder, other = g2, g1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := holder.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor("the other gateway to take the janitor over", func() bool {
		o := owner()
		return o != "" && o != first && strings.Contains(o, other.Server.Instance())
	})
}

// PostgreSQL restarts while pushes arrive: pushes answer 201 or 503, every
// 201 is in the catalog and the store afterwards, and the gateway takes
// pushes again without a restart of its own.
func TestFleetCatalogRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	dsn := srv.NewDatabase(t, "")
	storeDir := t.TempDir()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: fleetConfig(dsn, storeDir)})
	token := g.Token("db", "push", "fetch")
	body := bytes.Repeat([]byte("r"), 1<<20)
	var mu sync.Mutex
	stored := map[string]bool{}
	other, refused := 0, 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("%08X%016X", p+1, i+1)
				code := pushWAL(t, g.URL, token, name, body)
				mu.Lock()
				switch code {
				case http.StatusCreated:
					stored[name] = true
				case http.StatusServiceUnavailable:
					refused++
				default:
					other++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if other != 0 {
		t.Fatalf("%d pushes answered neither 201 nor 503", other)
	}
	if len(stored) == 0 || refused == 0 {
		t.Fatalf("%d pushes stored, %d refused: the restart did not fall among the pushes", len(stored), refused)
	}
	for name := range stored {
		rec, err := g.Server.Catalog().WAL("db", name)
		if err != nil {
			t.Fatalf("acknowledged %s is not in the catalog: %v", name, err)
		}
		data, err := os.ReadFile(filepath.Join(storeDir, filepath.FromSlash(rec.Key)))
		if err != nil || !bytes.Equal(data, body) {
			t.Fatalf("acknowledged %s is not in the store: %v", name, err)
		}
	}
	if code := pushWAL(t, g.URL, token, "00000009000000000000000A", body); code != http.StatusCreated {
		t.Fatalf("push after the restart: %d", code)
	}
	if err := g.Server.Catalog().Check(); err != nil {
		t.Fatal(err)
	}
}

// A gateway on a PostgreSQL catalog shares its stores with the other
// gateways of the fleet, so its WAL writes are conditional: an object
// under the final name that the catalog does not list may be another
// gateway's push about to commit, and is left as it is (503, the client
// retries) instead of being replaced as a gateway alone would.
func TestFleetWALWriteIsConditional(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	storeDir := t.TempDir()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: fleetConfig(srv.NewDatabase(t, ""), storeDir)})
	token := g.Token("db", "push", "fetch")
	be, ok := g.Server.Stores().Backend("shared")
	if !ok {
		t.Fatalf("no backend named shared: %v", g.Server.Stores().Names())
	}
	const name = "000000010000000000000001"
	key := layout.WALKey("db", name, "none")
	other := bytes.Repeat([]byte("another gateway's push "), 4096)
	otherSum := sha256.Sum256(other)
	if _, err := be.Put(context.Background(), key, bytes.NewReader(other), int64(len(other)),
		backends.PutOptions{Metadata: map[string]string{layout.MetaSHA256: hex.EncodeToString(otherSum[:])}}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("this gateway's push "), 4096)
	if code := pushWAL(t, g.URL, token, name, body); code != http.StatusServiceUnavailable {
		t.Fatalf("push over a young object the catalog does not list: %d, want 503", code)
	}
	if got, err := os.ReadFile(filepath.Join(storeDir, filepath.FromSlash(key))); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("the unlisted object was replaced (%v)", err)
	}
	if _, err := g.Server.Catalog().WAL("db", name); err == nil {
		t.Fatal("a refused push was recorded")
	}
}
