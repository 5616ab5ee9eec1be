package catalogdb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// writeGate is an HTTP proxy in front of the replica's S3 server. While
// closed it holds every PUT (reads pass); it records when each PUT of a
// key started and whether two PUTs of one key were in flight at once.
type writeGate struct {
	proxy *httputil.ReverseProxy
	URL   string

	mu       sync.Mutex
	once     sync.Once
	opened   chan struct{}
	inflight map[string]int
	starts   map[string][]time.Time
	overlaps []string
}

func newWriteGate(t *testing.T, target string) *writeGate {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &writeGate{opened: make(chan struct{}), inflight: map[string]int{}, starts: map[string][]time.Time{}}
	g.proxy = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // signed by the client (SigV4)
	}}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.open() // a test that failed first lets the held writes go
		srv.Close()
	})
	g.URL = srv.URL
	return g
}

func (g *writeGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		g.proxy.ServeHTTP(w, r)
		return
	}
	key := r.URL.Path
	// The body is read first (test objects are small): a writer that
	// dies is then seen at once, as the end of its request.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.mu.Lock()
	if g.inflight[key] > 0 {
		g.overlaps = append(g.overlaps, key)
	}
	g.inflight[key]++
	g.starts[key] = append(g.starts[key], time.Now())
	opened := g.opened
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inflight[key]--
		g.mu.Unlock()
	}()
	select {
	case <-opened:
	case <-r.Context().Done(): // the writer died
		return
	}
	g.proxy.ServeHTTP(w, r)
}

func (g *writeGate) open() { g.once.Do(func() { close(g.opened) }) }

func (g *writeGate) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.inflight {
		n += c
	}
	return n
}

// gatewayProcess is a `walgate serve` process.
type gatewayProcess struct {
	cmd  *exec.Cmd
	URL  string
	Data string
	log  string
	done chan struct{}
}

// startGatewayProcess runs bin serve with a config on the catalog dsn,
// the fs store primary and the S3 replica behind gate, and waits for
// /healthz.
func startGatewayProcess(t *testing.T, bin, dsn, primary string, sw *emulators.SeaweedFS, gate *writeGate) *gatewayProcess {
	t.Helper()
	port, err := emulators.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g := &gatewayProcess{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Data: filepath.Join(dir, "data"), log: filepath.Join(dir, "gateway.log"), done: make(chan struct{})}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
data: %s
catalog:
  type: postgres
  postgres:
    dsn: %s
backends:
  - name: primary
    type: fs
    path: %s
  - name: replica
    type: s3
    s3:
      bucket: replica
      region: %s
      endpoint: %s
      path_style: true
      access_key_id: %s
      secret_access_key: %s
      timeout: 2m
groups:
  - name: all
    clusters: ["*"]
    backends: [primary, replica]
    ack: primary
limits:
  backup_session_timeout: 2s
replication:
  concurrency: 2
  claim_lease: 3s
  retry_min: 200ms
  retry_max: 1s
log:
  level: debug
`, port, g.Data, dsn, primary, sw.Region, gate.URL, sw.AccessKey, sw.SecretKey)
	cfgPath := filepath.Join(dir, "walgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(g.log)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	g.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	g.cmd.Stdout, g.cmd.Stderr = lf, lf
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.done) }() //nolint:errcheck // killed on purpose
	t.Cleanup(g.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case <-g.done:
			t.Fatalf("gateway exited at start; log:\n%s", g.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not up after 30s; log:\n%s", g.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (g *gatewayProcess) kill() {
	g.cmd.Process.Kill() //nolint:errcheck // it may be gone
	<-g.done
}

func (g *gatewayProcess) logText() string {
	b, _ := os.ReadFile(g.log)
	return string(b)
}

// owns is the SQL condition that the owner column col names g (an
// instance name is host/pid/random).
func (g *gatewayProcess) owns(col string) string {
	return fmt.Sprintf("%s LIKE '%%/%d/%%'", col, g.cmd.Process.Pid)
}

// waitFor polls cond every 100 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Two real gateways on one PostgreSQL catalog, one fs primary and an S3
// replica whose writes are held, so that replication copies pile up
// under claims. Both claim disjoint copies and renew their claims past
// the lease; the one that also holds the janitor lease is killed with
// SIGKILL; the survivor takes the duty and the dead gateway's copies over
// once their claims end (not before), and the replica ends with every
// object, byte-identical. No key is ever written twice at once.
func TestFleetKillTakesOverReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, SeaweedFS and two gateway processes")
	}
	// The binary, SeaweedFS and PostgreSQL come up side by side.
	bin := filepath.Join(t.TempDir(), "walgate")
	var built, swErr error
	var buildOut []byte
	var sw *emulators.SeaweedFS
	var wg sync.WaitGroup
	wg.Go(func() {
		buildOut, built = exec.Command("go", "build", "-o", bin, "github.com/walgate/walgate/cmd/walgate").CombinedOutput()
	})
	wg.Go(func() { sw, swErr = emulators.StartSeaweedFS() })
	srv := NewServer(t)
	dsn := srv.NewDatabase(t, "")
	wg.Wait()
	if sw != nil {
		t.Cleanup(func() { sw.Stop() })
	}
	if built != nil || swErr != nil {
		t.Fatalf("go build cmd/walgate: %v %s; SeaweedFS: %v", built, buildOut, swErr)
	}
	ctx := context.Background()
	if err := sw.NewBucket(ctx, "replica"); err != nil {
		t.Fatal(err)
	}
	gate := newWriteGate(t, sw.Endpoint)
	primary := t.TempDir()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	count := func(query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}

	a := startGatewayProcess(t, bin, dsn, primary, sw, gate)
	waitFor(t, 15*time.Second, "the first gateway holds the janitor lease", func() bool {
		return count(`SELECT count(*) FROM walgate.leases WHERE duty = 'janitor' AND `+a.owns("owner")) == 1
	})
	b := startGatewayProcess(t, bin, dsn, primary, sw, gate)
	adm, err := admin.Dial(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := adm.AddToken("db", []index.Scope{index.ScopePush, index.ScopeFetch}, "test")
	if err != nil {
		t.Fatal(err)
	}

	// Pushes through both gateways; each wakes its own replicator, which
	// claims what is queued and waits on the held writes.
	bodies := map[string][]byte{}
	push := func(g *gatewayProcess, from, n int) {
		for i := from; i < from+n; i++ {
			name := fmt.Sprintf("0000000100000000000000%02X", i)
			body := make([]byte, 32<<10+rand.IntN(32<<10))
			for j := range body {
				body[j] = byte(rand.Uint32())
			}
			bodies[name] = body
			if code := pushWAL(t, g.URL, token, name, body); code != http.StatusCreated {
				t.Fatalf("push %s through %s: %d", name, g.URL, code)
			}
		}
	}
	push(a, 1, 6)
	waitFor(t, 10*time.Second, "the first gateway claims copies", func() bool {
		return count(`SELECT count(*) FROM walgate.replication WHERE `+a.owns("claimed_by")) > 0
	})
	push(b, 7, 6)
	waitFor(t, 10*time.Second, "the second gateway claims copies", func() bool {
		return count(`SELECT count(*) FROM walgate.replication WHERE `+b.owns("claimed_by")) > 0
	})
	push(a, 13, 4)
	push(b, 17, 4)
	if n := count(`SELECT count(*) FROM walgate.replication`); n != len(bodies) {
		t.Fatalf("%d copies queued, want %d", n, len(bodies))
	}

	// Past a whole lease (3s) the claims are still their holders': they
	// were renewed, and neither gateway took the other's.
	claimsOf := func(g *gatewayProcess) map[string]time.Time {
		rows, err := db.Query(ctx, `SELECT key, claimed_until FROM walgate.replication WHERE claimed_until > clock_timestamp() AND `+g.owns("claimed_by"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Time{}
		for rows.Next() {
			var k string
			var until time.Time
			if err := rows.Scan(&k, &until); err != nil {
				t.Fatal(err)
			}
			out[k] = until
		}
		return out
	}
	before := claimsOf(a)
	time.Sleep(4 * time.Second)
	gate.mu.Lock()
	overlaps := gate.overlaps
	gate.mu.Unlock()
	if len(overlaps) > 0 {
		t.Fatalf("keys written twice at once while both gateways were alive: %v", overlaps)
	}
	held := claimsOf(a)
	if len(before) == 0 {
		t.Fatal("the first gateway's claims were taken while it was alive")
	}
	for k := range before {
		if _, ok := held[k]; !ok {
			t.Fatalf("the first gateway's claim on %s was not renewed past its lease (claims now %v)", k, held)
		}
	}
	if len(claimsOf(b)) == 0 || gate.held() == 0 {
		t.Fatalf("the second gateway holds no claims, or no write is held (%d)", gate.held())
	}

	a.kill()
	killed := time.Now()
	held = claimsOf(a) // as the dead gateway left them
	var until time.Time
	for _, u := range held {
		if u.After(until) {
			until = u
		}
	}
	if len(held) == 0 {
		t.Fatal("the killed gateway held no claims")
	}
	gate.open()

	waitFor(t, 30*time.Second, "replication catches up", func() bool {
		return count(`SELECT count(*) FROM walgate.replication`) == 0
	})
	waitFor(t, 10*time.Second, "the survivor takes the janitor lease over", func() bool {
		return count(`SELECT count(*) FROM walgate.leases WHERE duty = 'janitor' AND `+b.owns("owner")) == 1
	})
	t.Logf("killed at %s; its claims ended %s; caught up %s later", killed.Format(time.StampMilli), until.Format(time.StampMilli), time.Since(killed).Round(time.Millisecond))

	gate.mu.Lock()
	overlaps = gate.overlaps
	var early []string
	for k := range held {
		// The dead gateway's own PUT started before the kill; the
		// survivor's only after the claim ended.
		for _, s := range gate.starts["/replica/"+k] {
			if s.After(killed) && s.Before(until) {
				early = append(early, fmt.Sprintf("%s at %s", k, s.Format(time.StampMilli)))
			}
		}
	}
	gate.mu.Unlock()
	if len(overlaps) > 0 {
		t.Errorf("keys written twice at once: %v", overlaps)
	}
	if len(early) > 0 {
		t.Errorf("the dead gateway's copies were taken over before its claims ended (%s): %v", until.Format(time.StampMilli), early)
	}

	cat, err := pgcatalog.Open(ctx, dsn, pgcatalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	cl := sw.Client()
	for name, body := range bodies {
		o, err := cat.WAL("db", name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(o.Holders(), ","), "replica") {
			t.Errorf("%s: holders %v, want the replica too", name, o.Holders())
		}
		out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("replica"), Key: aws.String(o.Key)})
		if err != nil {
			t.Fatalf("%s on the replica: %v", name, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s on the replica: %d bytes (%v), want the %d pushed", name, len(got), err, len(body))
		}
	}
	if t.Failed() {
		t.Logf("survivor's log:\n%s", b.logText())
	}
}
