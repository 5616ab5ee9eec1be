package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	le "encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/backends/s3"
	"github.com/walgate/walgate/cmd/internal/catalogdb"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/protocol"
	gwstores "github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

// fleetProc is one `walgate serve` process of a fleet, on a fixed address
// so that it can be killed and started again under the same URL.
type fleetProc struct {
	addr, url, data, log string
	cmd                  *exec.Cmd
	done                 chan error
}

// fleetEnv is a fleet of real gateway processes: one PostgreSQL catalog,
// a SeaweedFS S3 primary, a shared fs directory as the replica.
type fleetEnv struct {
	bin, conf string
	cfg       gateway.Config // conf, loaded
	dsn       string
	gws       []*fleetProc
}

// startFleet writes the fleet's one configuration and starts n gateways
// on it, each with its own data directory and address.
func startFleet(t *testing.T, n int) *fleetEnv {
	t.Helper()
	const bucket = "walgate-fleet"
	var (
		cat *catalogdb.Server
		sw  *emulators.SeaweedFS
		err error
		wg  sync.WaitGroup
	)
	wg.Go(func() { sw, err = emulators.StartSeaweedFS() })
	cat = catalogdb.NewServer(t)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Stop() })
	if err := sw.NewBucket(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &fleetEnv{bin: walgateBin(t), conf: filepath.Join(dir, "fleet.yaml"), dsn: cat.NewDatabase(t, "")}
	bcs := []config.BackendConfig{
		{Name: "s3", Type: "s3", S3: &s3.Config{Bucket: bucket, Prefix: "archive", Endpoint: sw.Endpoint, PathStyle: true,
			Region: sw.Region, AccessKeyID: sw.AccessKey, SecretAccessKey: sw.SecretKey}},
		{Name: "replica", Type: "fs", Path: filepath.Join(dir, "replica")},
	}
	// The janitor runs every second under a 3 s lease, so that its
	// takeover after a kill falls inside the test.
	yaml := backendsYAML(filepath.Join(dir, "unused-data"), bcs) + `groups:
  - {name: all, clusters: ["*"], backends: [s3, replica], ack: primary}
replication: {retry_min: 100ms, retry_max: 1s}
limits: {backup_session_timeout: 4s}
catalog:
  type: postgres
  postgres: {dsn: "` + e.dsn + `"}
`
	if err := os.WriteFile(e.conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = config.Load(e.conf); err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	for i := range n {
		port, err := pgtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		g := &fleetProc{addr: addr, url: "http://" + addr, data: filepath.Join(dir, fmt.Sprintf("gw%d", i)), log: filepath.Join(dir, fmt.Sprintf("gw%d.log", i))}
		e.gws = append(e.gws, g)
		t.Cleanup(func() {
			g.stop()
			if t.Failed() {
				t.Logf("gateway %d log (tail):\n%s", i, lastLines(readFileString(g.log), 30))
			}
		})
	}
	for _, g := range e.gws {
		e.start(t, g)
	}
	return e
}

func readFileString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// start runs `walgate serve` for g and waits until it is ready (/readyz:
// the catalog answers and the ack store is writable).
func (e *fleetEnv) start(t *testing.T, g *fleetProc) {
	t.Helper()
	lf, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	g.cmd = exec.Command(e.bin, "serve", "--config", e.conf, "--data", g.data, "--listen", g.addr)
	g.cmd.Env = []string{}
	g.cmd.Stdout, g.cmd.Stderr = lf, lf
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.done = make(chan error, 1)
	go func() { g.done <- g.cmd.Wait() }()
	hc := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-g.done:
			g.done <- err
			t.Fatalf("gateway %s exited at start: %v\n%s", g.url, err, lastLines(readFileString(g.log), 20))
		default:
		}
		if resp, err := hc.Get(g.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s not ready after 60 s\n%s", g.url, lastLines(readFileString(g.log), 20))
		}
	}
}

// kill is kill -9: no shutdown, no lease or claim released.
func (g *fleetProc) kill() {
	g.cmd.Process.Signal(syscall.SIGKILL)
	err := <-g.done
	g.done <- err
}

// stop ends a running gateway with SIGTERM (SIGKILL after 20 s).
func (g *fleetProc) stop() {
	if g.cmd == nil {
		return
	}
	select {
	case err := <-g.done:
		g.done <- err
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		g.done <- err
	case <-time.After(20 * time.Second):
		g.kill()
	}
}

// walgate runs the gateway binary's admin verb on the fleet's config.
func (e *fleetEnv) walgate(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(e.bin, append(args, "--config", e.conf)...)
	cmd.Env = []string{}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("walgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// token makes a push and fetch token for cluster in the shared catalog.
func (e *fleetEnv) token(t *testing.T, cluster string) string {
	t.Helper()
	tok := strings.TrimSpace(e.walgate(t, "token", "add", "--cluster", cluster, "--scope", "push,fetch"))
	if tok == "" {
		t.Fatal("walgate token add printed no token")
	}
	return tok
}

// urlList is WALGATE_URL with the gateways in the given order.
func (e *fleetEnv) urlList(order ...int) string {
	urls := make([]string, len(order))
	for i, g := range order {
		urls[i] = e.gws[g].url
	}
	return strings.Join(urls, ",")
}

// gatewayOf is the index of the gateway whose URL is u.
func (e *fleetEnv) gatewayOf(u string) int {
	for i, g := range e.gws {
		if g.url == u {
			return i
		}
	}
	return -1
}

// leaseHolder is the gateway (index) holding the live lease on duty, -1
// when none does or its holder is none of e.gws's current processes.
func (e *fleetEnv) leaseHolder(t *testing.T, ctx context.Context, conn *pgx.Conn, duty string) int {
	t.Helper()
	var owner string
	err := conn.QueryRow(ctx, `SELECT owner FROM walgate.leases WHERE duty = $1 AND until > now()`, duty).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	// The owner is host/pid/random (gateway.newInstanceID).
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		t.Fatalf("lease owner %q is not host/pid/random", owner)
	}
	for i, g := range e.gws {
		if strconv.Itoa(g.cmd.Process.Pid) == parts[1] {
			return i
		}
	}
	return -1
}

// replicationPending is the replica's pending copies, by `walgate status
// --backends --json` on the shared catalog.
func (e *fleetEnv) replicationPending(t *testing.T, backend string) int {
	t.Helper()
	var bs []gwstores.BackendStatus
	out := e.walgate(t, "status", "--backends", "--json")
	if err := json.Unmarshal([]byte(out), &bs); err != nil {
		t.Fatalf("walgate status --backends --json: %v\n%s", err, out)
	}
	for _, b := range bs {
		if b.Name == backend {
			return b.PendingObjects
		}
	}
	t.Fatalf("walgate status --backends --json lists no backend %s:\n%s", backend, out)
	return 0
}

// waitWALFiles waits up to 10 s until gateway g's `walgate status --json`
// (through its admin socket: its own in-memory summaries) counts want WAL
// files of cluster.
func (e *fleetEnv) waitWALFiles(t *testing.T, g int, cluster string, want int) {
	t.Helper()
	got := -1
	for deadline := time.Now().Add(10 * time.Second); got != want; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway %d's walgate status counts %d WAL files of %s, want %d", g, got, cluster, want)
		}
		cmd := exec.Command(e.bin, "status", "--json", "--data", e.gws[g].data)
		cmd.Env = []string{}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("walgate status --data %s: %v", e.gws[g].data, err)
		}
		var rows []gateway.ClusterStatus
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("walgate status --json: %v\n%s", err, out)
		}
		for _, r := range rows {
			if r.Cluster == cluster {
				got = r.WALFiles
			}
		}
	}
}

// fleetSegment is a 1 MiB WAL segment of timeline 1 of a PostgreSQL 15
// system: a long page header PostgreSQL would write at its start, the rest
// random with runs that compress.
func fleetSegment(name string, rng *mrand.Rand) []byte {
	const size = 1 << 20
	b := make([]byte, size)
	for i := 0; i < size; i += 8 {
		le.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	for i := 4096; i < size; i += 16384 {
		clear(b[i : i+8192])
	}
	log, _ := strconv.ParseUint(name[8:16], 16, 32)
	seg, _ := strconv.ParseUint(name[16:24], 16, 32)
	le.LittleEndian.PutUint16(b[0:], 0xD110) // XLOG_PAGE_MAGIC of PostgreSQL 15
	le.LittleEndian.PutUint16(b[2:], 0x0002) // XLP_LONG_HEADER
	le.LittleEndian.PutUint32(b[4:], 1)      // timeline
	le.LittleEndian.PutUint64(b[8:], log<<32|seg<<20)
	le.LittleEndian.PutUint64(b[24:], 7450000000000000015)
	le.LittleEndian.PutUint32(b[32:], size)
	le.LittleEndian.PutUint32(b[36:], 8192)
	return b
}

// pushAttempt is one run of `walgate-client wal-push`.
type pushAttempt struct {
	pusher     int
	name       string
	start, end time.Time
	code       int
	output     string
}

// ackedSegment is a segment whose wal-push exited 0.
type ackedSegment struct {
	pusher int
	name   string
	sha    string
	by     int       // the gateway that answered (pg_wal/walgate/gateway, else the list's first)
	at     time.Time // when wal-push exited 0
}

// exitCode of a finished command: its status, or -1 when it did not run.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// TestFleetKill runs a fleet end to end: three `walgate serve`
// processes on one PostgreSQL catalog, a SeaweedFS primary and a shared fs
// replica; eight pushers running the real `walgate-client wal-push` with a
// three-URL list, and a PostgreSQL 15 primary archiving through the list,
// while the gateway holding the janitor lease is killed with SIGKILL and
// started again. Every push that exited 0 is fetched byte-identical
// through each other gateway; pushers fail only inside the kill window and
// succeed on their retry; PostgreSQL's failed_count grows by a bounded
// number of retries; replication catches up; no WAL name holds two
// contents; a restore of the primary through the list matches its tables.
func TestFleetKill(t *testing.T) {
	requirePostgres(t)
	if testing.Short() {
		t.Skip("three gateways, two PostgreSQL clusters and SeaweedFS")
	}
	testStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// Both programs build while the servers start.
	go clientBinary.make()
	go gatewayBinary.make()
	e := startFleet(t, 3)
	clientBin := walgateClient(t)
	pushToken, pgToken := e.token(t, "fleet"), e.token(t, "pg")

	// The gateway to kill: the janitor's.
	catConn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer catConn.Close(context.Background())
	victim := -1
	for deadline := time.Now().Add(20 * time.Second); victim < 0; time.Sleep(200 * time.Millisecond) {
		if victim = e.leaseHolder(t, ctx, catConn, "janitor"); victim < 0 && time.Now().After(deadline) {
			t.Fatal("no gateway took the janitor lease within 20 s")
		}
	}
	// The archiving primary: the list in its environment, starting with
	// the gateway to kill; a base backup before the load.
	pgEnv := []string{"WALGATE_URL=" + e.urlList(victim, (victim+1)%3, (victim+2)%3), "WALGATE_TOKEN=" + pgToken}
	src := pgtest.New(t, pgtest.Options{Env: pgEnv, Conf: []string{"archive_mode = on", "archive_command = '/bin/false'"}})
	srcBin, err := src.InstallExecutable(clientBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.AppendConf("archive_command = " + pgtest.QuoteConf(srcBin+" wal-push %p")); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Exec(ctx, `CREATE TABLE probe (id bigint PRIMARY KEY, label text, pad bytea)`); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(pgtest.SharedDir(t), "base")
	if err := src.BaseBackup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	before, err := src.WaitArchived(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	// The load: eight pushers and the primary's archiver, for loadFor.
	const (
		pushers   = 8
		loadFor   = 24 * time.Second
		killAfter = 8 * time.Second
		downFor   = 4 * time.Second
	)
	orders := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {1, 0, 2}, {2, 1, 0}, {victim, (victim + 1) % 3, (victim + 2) % 3}, {victim, (victim + 2) % 3, (victim + 1) % 3}}
	var (
		mu       sync.Mutex
		attempts []pushAttempt
		acked    []ackedSegment
		wg       sync.WaitGroup
	)
	// A fatal error below waits for the load to end before the test does.
	defer wg.Wait()
	begin := time.Now()
	t.Logf("fleet, primary and base backup ready in %s", begin.Sub(testStart).Round(time.Second))
	stopAt := begin.Add(loadFor)
	for p := range pushers {
		wg.Go(func() {
			dir := filepath.Join(t.TempDir(), "pg_wal")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Error(err)
				return
			}
			urls := e.urlList(orders[p]...)
			env := []string{"WALGATE_URL=" + urls, "WALGATE_TOKEN=" + pushToken, "WALGATE_TMPDIR=" + dir, "HOME=" + dir}
			rng := mrand.New(mrand.NewPCG(uint64(p), 15))
			for i := 1; time.Now().Before(stopAt); i++ {
				name := fmt.Sprintf("00000001%08X%08X", p+1, i)
				body := fleetSegment(name, rng)
				file := filepath.Join(dir, name)
				if err := os.WriteFile(file, body, 0o600); err != nil {
					t.Error(err)
					return
				}
				// Like PostgreSQL's archiver: the same file again after a
				// failure, until it is archived (or the test gives up).
				for {
					cmd := exec.Command(clientBin, "wal-push", file)
					cmd.Env = env
					a := pushAttempt{pusher: p, name: name, start: time.Now()}
					out, err := cmd.CombinedOutput()
					a.end, a.code, a.output = time.Now(), exitCode(err), string(out)
					mu.Lock()
					attempts = append(attempts, a)
					mu.Unlock()
					if a.code == 0 {
						break
					}
					if time.Since(begin) > 3*time.Minute {
						t.Errorf("pusher %d: %s still not archived after 3 minutes", p, name)
						return
					}
					time.Sleep(time.Second)
				}
				by := orders[p][0]
				if st, err := os.ReadFile(filepath.Join(dir, "walgate", "gateway")); err == nil {
					by = e.gatewayOf(strings.TrimSpace(string(st)))
				}
				sum := sha256.Sum256(body)
				mu.Lock()
				acked = append(acked, ackedSegment{pusher: p, name: name, sha: hex.EncodeToString(sum[:]), by: by, at: time.Now()})
				mu.Unlock()
				os.Remove(file)
			}
		})
	}
	// The primary switches segments while rows go in.
	var lastSwitched string
	var switches int
	wg.Go(func() {
		for n := 0; time.Now().Before(stopAt); n++ {
			if err := src.Exec(ctx, `INSERT INTO probe SELECT g, md5(g::text), sha256(int8send(g)) FROM generate_series($1::bigint, $1::bigint + 19999) g`, n*20000); err != nil {
				t.Error(err)
				return
			}
			seg, err := src.SwitchWAL(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			lastSwitched = seg
			switches++
			time.Sleep(300 * time.Millisecond)
		}
	})

	time.Sleep(killAfter)
	killedAt := time.Now()
	e.gws[victim].kill()
	t.Logf("killed gateway %d (pid %d, the janitor's holder) at %s", victim, e.gws[victim].cmd.Process.Pid, killedAt.Sub(begin).Round(time.Millisecond))
	// Another gateway takes the janitor over once the lease (3 s) expires.
	takeover := -1
	for deadline := time.Now().Add(15 * time.Second); takeover < 0 || takeover == victim; time.Sleep(200 * time.Millisecond) {
		takeover = e.leaseHolder(t, ctx, catConn, "janitor")
		if time.Now().After(deadline) {
			t.Fatalf("no live gateway took the janitor lease over within 15 s of the kill (holder %d)", takeover)
		}
	}
	t.Logf("gateway %d holds the janitor lease %s after the kill", takeover, time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(time.Until(killedAt.Add(downFor)))
	e.start(t, e.gws[victim])
	restartedAt := time.Now()
	t.Logf("gateway %d ready again at %s", victim, restartedAt.Sub(begin).Round(time.Millisecond))
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Pushers: a failure only for a push in flight at the kill (two
	// gateways stay up, so a push begun after it moves on at once), and
	// every failed segment is archived by a later attempt (the pushers
	// retry until success).
	failures, inFlight := 0, 0
	var slowest time.Duration
	for _, a := range attempts {
		spans := a.start.Before(killedAt) && a.end.After(killedAt)
		if spans {
			inFlight++
			slowest = max(slowest, a.end.Sub(a.start))
		}
		if a.code == 0 {
			continue
		}
		failures++
		t.Logf("pusher %d: %s exited %d at %s-%s: %s", a.pusher, a.name, a.code, a.start.Sub(begin).Round(time.Millisecond), a.end.Sub(begin).Round(time.Millisecond), lastLines(a.output, 3))
		if !spans {
			t.Errorf("pusher %d: %s failed at %s-%s, not in flight at the kill (%s): with two gateways up a push moves on", a.pusher, a.name,
				a.start.Sub(begin).Round(time.Millisecond), a.end.Sub(begin).Round(time.Millisecond), killedAt.Sub(begin).Round(time.Millisecond))
		}
	}
	t.Logf("%d pushes were in flight at the kill; the slowest took %s", inFlight, slowest.Round(time.Millisecond))
	if inFlight == 0 {
		t.Fatal("no push was in flight at the kill: the kill did not fall among the pushes")
	}
	ackedNames := map[string]ackedSegment{}
	perGateway := make([]int, len(e.gws))
	for _, s := range acked {
		if _, dup := ackedNames[s.name]; dup {
			t.Fatalf("%s acknowledged twice", s.name)
		}
		ackedNames[s.name] = s
		if s.by < 0 {
			t.Fatalf("%s: the client's state names no gateway of the list", s.name)
		}
		perGateway[s.by]++
	}
	t.Logf("%d pushes acknowledged (by gateway: %v) in %d attempts, %d failed; the primary switched %d segments", len(acked), perGateway, len(attempts), failures, switches)
	if len(acked) < pushers*5 {
		t.Fatalf("only %d pushes acknowledged", len(acked))
	}
	for p := range pushers {
		if n := countWhere(acked, func(s ackedSegment) bool { return s.pusher == p && s.at.After(restartedAt) }); n == 0 {
			t.Errorf("pusher %d archived nothing after the restart", p)
		}
	}

	// The primary: everything switched is archived, failed_count bounded.
	after, err := src.WaitArchived(ctx, lastSwitched)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pg_stat_archiver before the load: %v; after: %v", before, after)
	if d := after.FailedCount - before.FailedCount; d > maxArchiveFailuresPerKill {
		t.Errorf("pg_stat_archiver.failed_count grew by %d over one gateway kill, want at most %d; server log:\n%s", d, maxArchiveFailuresPerKill, src.LogTail(40))
	}
	// Its list starts with the killed gateway: the archiver moved on and
	// remembers the gateway that took over.
	st, err := os.ReadFile(filepath.Join(src.DataDir, "pg_wal", "walgate", "gateway"))
	if err != nil {
		t.Errorf("the primary's client recorded no gateway taking over from the killed one: %v", err)
	} else if g := e.gatewayOf(strings.TrimSpace(string(st))); g == victim || g < 0 {
		t.Errorf("the primary's client last used %q, want a gateway other than the killed %d", st, victim)
	} else {
		t.Logf("the primary's archiver moved from gateway %d to gateway %d", victim, g)
	}
	if after.ArchivedCount-before.ArchivedCount < int64(switches) {
		t.Errorf("archived_count grew by %d for %d switched segments", after.ArchivedCount-before.ArchivedCount, switches)
	}

	// Every acknowledged push, byte-identical through each gateway other
	// than the one that answered it.
	fetchDir := t.TempDir()
	work := make(chan [2]int)
	var fwg sync.WaitGroup
	names := make([]string, 0, len(ackedNames))
	for n := range ackedNames {
		names = append(names, n)
	}
	var fetched, fetchErrs int
	for range 4 {
		fwg.Go(func() {
			for w := range work {
				s := ackedNames[names[w[0]]]
				dest := filepath.Join(fetchDir, fmt.Sprintf("%s.%d", s.name, w[1]))
				cmd := exec.Command(clientBin, "wal-fetch", s.name, dest)
				cmd.Env = []string{"WALGATE_URL=" + e.gws[w[1]].url, "WALGATE_TOKEN=" + pushToken, "WALGATE_PREFETCH=0", "HOME=" + fetchDir}
				out, err := cmd.CombinedOutput()
				sha, _ := fileSHA256(dest)
				os.Remove(dest)
				mu.Lock()
				switch {
				case err != nil:
					fetchErrs++
					t.Errorf("wal-fetch %s through gateway %d (acknowledged by %d): %v\n%s", s.name, w[1], s.by, err, out)
				case sha != s.sha:
					fetchErrs++
					t.Errorf("wal-fetch %s through gateway %d: not the bytes pushed", s.name, w[1])
				default:
					fetched++
				}
				mu.Unlock()
			}
		})
	}
	for i := range names {
		for g := range e.gws {
			if g != ackedNames[names[i]].by {
				work <- [2]int{i, g}
			}
		}
	}
	close(work)
	fwg.Wait()
	t.Logf("%d fetches through another gateway, byte-identical (%s)", fetched, time.Since(begin).Round(time.Second))

	// Replication catches up: nothing pending for the replica.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		n := e.replicationPending(t, "replica")
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d copies still pending for the replica 2 minutes after the load", n)
		}
	}
	t.Logf("replication caught up (%s)", time.Since(begin).Round(time.Second))
	// Every gateway's WAL summary (walgate status through its admin socket)
	// counts every acknowledged push, those the others took included.
	for i := range e.gws {
		e.waitWALFiles(t, i, "fleet", len(ackedNames))
	}
	e.checkStores(t, ctx, map[string]map[string]ackedSegment{"fleet": ackedNames, "pg": nil})

	// The primary's WAL, restored through the list from the base backup
	// taken before the load: every table as it was.
	want, err := src.AllTableChecksums(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.WaitArchived(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := src.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	dst := pgtest.NewFromBackup(t, backup, pgtest.Recovery{RestoreCommand: srcBin + " wal-fetch %f %p"},
		pgtest.Options{Env: []string{"WALGATE_URL=" + e.urlList((victim+2)%3, victim, (victim+1)%3), "WALGATE_TOKEN=" + pgToken}})
	wantRestored(t, ctx, dst, want)
	t.Logf("restored the primary through the list (%s): %v", time.Since(begin).Round(time.Second), want)
}

// maxArchiveFailuresPerKill bounds the growth of pg_stat_archiver's
// failed_count over one gateway kill. A call of `wal-push` fails only when
// every gateway of every round fails it. After a kill, the live gateways
// make a resent push wait only for the dead gateway's claim on its name,
// at most 30 s (the claim's lease) after the kill, and a call that waits
// on both live gateways lasts at least twice WALGATE_TIMEOUT (30 s): with
// the defaults no call should fail at all. The bound allows the call cut
// off at the kill and the two retries PostgreSQL makes at once
// (NUM_ARCHIVE_RETRIES is 3) in case the load stretches those waits.
const maxArchiveFailuresPerKill = 3

func countWhere[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkStores compares the catalog with both stores for each cluster:
// every WAL object in the primary is one record of the catalog (one object
// per WAL name), both stores hold it with the catalog's SHA-256, and the
// catalog names both as holders. acked[cluster] (when not nil) must all be
// in the catalog.
func (e *fleetEnv) checkStores(t *testing.T, ctx context.Context, acked map[string]map[string]ackedSegment) {
	t.Helper()
	cfg := e.cfg
	cat, err := gateway.OpenCatalog(ctx, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	bes := map[string]backends.Backend{}
	for _, bc := range cfg.Backends {
		be, err := all.Open(ctx, bc)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		bes[bc.Name] = be
	}
	for cluster, want := range acked {
		records := map[string]index.WALObject{}
		cataloged := map[string]bool{}
		if err := cat.ListWAL(cluster, "", func(o index.WALObject) error {
			records[o.Key] = o
			cataloged[o.Name] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for name := range want {
			if !cataloged[name] {
				t.Errorf("%s/%s was acknowledged and is not in the catalog", cluster, name)
			}
		}
		for bname, be := range bes {
			names := map[string]string{}
			n := 0
			err := be.List(ctx, cluster+"/wal_005/", func(oi backends.ObjectInfo) error {
				n++
				base := path.Base(oi.Key)
				wal := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(base, ".zst"), ".lz4"), ".br")
				if _, err := protocol.ValidateWALName(wal); err != nil {
					t.Errorf("%s: unexpected object %s", bname, oi.Key)
					return nil
				}
				if prev, dup := names[wal]; dup {
					t.Errorf("%s: WAL %s of %s stored twice: %s and %s", bname, wal, cluster, prev, oi.Key)
				}
				names[wal] = oi.Key
				rec, ok := records[oi.Key]
				if !ok {
					t.Errorf("%s: %s is not in the catalog", bname, oi.Key)
					return nil
				}
				if sha := objectSHA256(t, ctx, be, oi.Key); sha != rec.SHA256 {
					t.Errorf("%s: %s holds other bytes than the catalog records", bname, oi.Key)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != len(records) {
				t.Errorf("%s holds %d WAL objects of %s, the catalog %d", bname, n, cluster, len(records))
			}
			t.Logf("%s: %d WAL objects of %s, each as the catalog records it", bname, n, cluster)
		}
		for key, rec := range records {
			if len(rec.Holders()) != len(bes) {
				t.Errorf("%s: holders %v", key, rec.Holders())
			}
		}
	}
	if err := cat.Check(); err != nil {
		t.Errorf("catalog check: %v", err)
	}
}

func objectSHA256(t *testing.T, ctx context.Context, be backends.Backend, key string) string {
	t.Helper()
	rc, err := be.Get(ctx, key, 0, -1)
	if err != nil {
		t.Errorf("%s: %v", key, err)
		return ""
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Errorf("%s: %v", key, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
