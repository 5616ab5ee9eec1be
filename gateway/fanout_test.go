package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

// fanout is a gateway over three fs backends (a, b, c: a is the primary),
// each behind a fault switch.
type fanout struct {
	*env
	dirs   map[string]string
	faults map[string]*backendtest.Faulty
	names  []string // WAL names pushed and acknowledged
}

func startFanout(t *testing.T, ack string, data string) *fanout {
	return startFanoutWith(t, ack, data, 0)
}

// startFanoutWith is startFanout with max_writes on every backend.
func startFanoutWith(t *testing.T, ack string, data string, maxWrites int) *fanout {
	t.Helper()
	return startFanoutConfig(t, ack, data, maxWrites, nil)
}

// startFanoutConfig is startFanoutWith with a last say on the config.
func startFanoutConfig(t *testing.T, ack string, data string, maxWrites int, edit func(*gateway.Config)) *fanout {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	f := &fanout{dirs: map[string]string{}, faults: map[string]*backendtest.Faulty{}}
	cfg := gateway.Config{Data: data, Replication: config.ReplicationConfig{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond}}
	for _, n := range []string{"a", "b", "c"} {
		f.dirs[n] = filepath.Join(data, "store-"+n)
		cfg.Backends = append(cfg.Backends, config.BackendConfig{Name: n, Type: "fs", Path: f.dirs[n], MaxWrites: maxWrites})
	}
	cfg.Groups = []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"a", "b", "c"}, Ack: ack}}
	if edit != nil {
		edit(&cfg)
	}
	f.env = start(t, gatewaytest.Options{Config: cfg, Log: testLog(), Wrap: func(name string, b backends.Backend) backends.Backend {
		fb := backendtest.NewFaulty(b)
		f.faults[name] = fb
		return fb
	}})
	return f
}

func walName(i int) string { return fmt.Sprintf("00000001%016X", uint64(i)) }

// push pushes WAL i and returns the reply.
func (f *fanout) push(t *testing.T, i int) reply {
	t.Helper()
	name := walName(i)
	body := bytes.Repeat([]byte(name), 2000+i)
	r := f.put(t, name, f.pushFetch, body)
	if r.status == 201 {
		f.names = append(f.names, name)
	}
	return r
}

// settle waits until no backend has copies pending.
func (f *fanout) settle(t *testing.T) {
	t.Helper()
	gatewaytest.WaitReplicated(t, f.g.Server.Stores(), 30*time.Second)
}

// checkEverywhere checks that every acknowledged WAL object is in every
// backend, intact (the catalog's SHA-256), and that the catalog lists all
// three as holders.
func (f *fanout) checkEverywhere(t *testing.T) {
	t.Helper()
	cat := f.g.Server.Catalog()
	for _, name := range f.names {
		obj, err := cat.WAL(cluster, name)
		if err != nil {
			t.Fatalf("%s acknowledged but not in the catalog: %v", name, err)
		}
		for n, dir := range f.dirs {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(obj.Key)))
			if err != nil {
				t.Errorf("%s not in backend %s: %v", name, n, err)
				continue
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != obj.SHA256 {
				t.Errorf("%s in backend %s is damaged", name, n)
			}
		}
		if h := strings.Join(obj.Holders(), ","); h != "a,b,c" && h != "a,c,b" && h != "b,a,c" && h != "b,c,a" && h != "c,a,b" && h != "c,b,a" {
			t.Errorf("%s: catalog holders %q, want all three", name, h)
		}
	}
}

func (f *fanout) backendStatus(t *testing.T, name string) stores.BackendStatus {
	t.Helper()
	st, err := f.g.Server.BackendsStatus()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range st {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %s in %+v", name, st)
	return stores.BackendStatus{}
}

// A replica down for a while: pushes are acknowledged (ack primary), its
// copies wait in the queue with the error shown, and catch up once it is
// back.
func TestFanoutReplicaDown(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "primary", "")
	f.faults["c"].SetDown(true)
	for i := 1; i <= 20; i++ {
		expect(t, "push with replica c down", f.push(t, i), 201, "")
	}
	time.Sleep(100 * time.Millisecond)
	st := f.backendStatus(t, "c")
	if st.PendingObjects == 0 || st.PendingBytes == 0 || st.OldestPending.IsZero() || !strings.Contains(st.LastError, "store down") {
		t.Errorf("status of the down replica: %+v", st)
	}
	health, err := f.g.Server.ClusterHealth(cluster, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, b := range health.Backends {
		if b.Name == "c" && b.PendingCount > 0 {
			seen = true
		}
	}
	if !seen {
		t.Errorf("cluster health shows nothing pending on c: %+v", health.Backends)
	}
	// Reads still work, from a.
	if r := f.get(t, f.names[0], f.pushFetch); r.status != 200 {
		t.Fatalf("GET with a replica down: %d %s", r.status, r.msg)
	}
	f.faults["c"].SetDown(false)
	f.settle(t)
	f.checkEverywhere(t)
	if st := f.backendStatus(t, "c"); st.PendingObjects != 0 {
		t.Errorf("after catching up: %+v", st)
	}
}

// The primary failing under ack all: pushes are refused and nothing is
// acknowledged or cataloged; once it is back, pushes land everywhere at
// once.
func TestFanoutAckAllPrimaryDown(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "all", "")
	f.faults["a"].SetDown(true)
	r := f.push(t, 1)
	expect(t, "push under ack all with the primary down", r, 503, protocol.CodeUnavailable)
	if _, err := f.g.Server.Catalog().WAL(cluster, walName(1)); err == nil {
		t.Fatal("a refused push is in the catalog")
	}
	for n, dir := range f.dirs {
		if files := gatewaytest.ListFiles(t, dir); len(files) != 0 {
			t.Errorf("backend %s holds %q after a refused push", n, files)
		}
	}
	f.faults["a"].SetDown(false)
	for i := 1; i <= 5; i++ {
		expect(t, "push under ack all", f.push(t, i), 201, "")
	}
	// Every backend already holds them: nothing was queued.
	for _, n := range []string{"a", "b", "c"} {
		if st := f.backendStatus(t, n); st.PendingObjects != 0 {
			t.Errorf("ack all queued copies for %s: %+v", n, st)
		}
	}
	f.checkEverywhere(t)
}

// A backend dying mid-upload: under ack all the push fails cleanly; under
// a count policy the next backend stands in and the push is acknowledged.
func TestFanoutDiesMidUpload(t *testing.T) {
	t.Parallel()
	t.Run("all", func(t *testing.T) {
		f := startFanout(t, "all", "")
		f.faults["b"].DieMidPut(5000)
		expect(t, "push with b dying mid-upload", f.push(t, 1), 503, protocol.CodeUnavailable)
		for n, dir := range f.dirs {
			if files := gatewaytest.ListFiles(t, dir); len(files) != 0 {
				t.Errorf("backend %s holds %q after a refused push", n, files)
			}
		}
		f.faults["b"].DieMidPut(-1)
		expect(t, "push after b recovered", f.push(t, 2), 201, "")
		f.checkEverywhere(t)
	})
	t.Run("count", func(t *testing.T) {
		f := startFanout(t, "2", "")
		f.faults["b"].DieMidPut(5000)
		for i := 1; i <= 3; i++ {
			expect(t, "push with b dying mid-upload under ack 2", f.push(t, i), 201, "")
		}
		obj, err := f.g.Server.Catalog().WAL(cluster, walName(1))
		if err != nil {
			t.Fatal(err)
		}
		if h := strings.Join(obj.Holders(), ","); h != "a,c" {
			t.Errorf("holders at ack time %q, want a,c (c standing in for b)", h)
		}
		f.faults["b"].DieMidPut(-1)
		f.settle(t)
		f.checkEverywhere(t)
	})
}

// Slow responses and bursts of failures on the replicas: pushes are
// acknowledged, copies are retried with backoff until they all land.
func TestFanoutSlowAndFlaky(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "primary", "")
	f.faults["b"].SetLatency(30 * time.Millisecond)
	f.faults["c"].FailNext(25)
	for i := 1; i <= 10; i++ {
		expect(t, "push with slow and flaky replicas", f.push(t, i), 201, "")
	}
	f.settle(t)
	f.checkEverywhere(t)
	if st := f.backendStatus(t, "c"); !strings.Contains(st.LastError, "503") {
		t.Errorf("c's status does not show the burst: %+v", st)
	}
}

// The queue survives a restart: copies queued while a replica was down
// are made by the next gateway process.
func TestFanoutQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	f := startFanout(t, "primary", data)
	f.faults["c"].SetDown(true)
	for i := 1; i <= 5; i++ {
		expect(t, "push", f.push(t, i), 201, "")
	}
	names := f.names
	if err := f.g.Server.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	f2 := startFanout(t, "primary", data)
	f2.names = names
	f2.settle(t)
	f2.checkEverywhere(t)
}

// A damaged copy on the primary: the read that finds it sends bytes whose
// SHA-256 differs from the one in the response header (so the client's
// check fails), the next read comes from a replica, and the damaged copy is
// repaired from a good one.
func TestFanoutDamagedCopy(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "all", "")
	expect(t, "push", f.push(t, 1), 201, "")
	obj, err := f.g.Server.Catalog().WAL(cluster, walName(1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dirs["a"], filepath.FromSlash(obj.Key))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	good := bytes.Clone(data)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	first := f.get(t, walName(1), f.pushFetch)
	if sum := sha256.Sum256(first.body); first.status == 200 && hex.EncodeToString(sum[:]) == obj.SHA256 {
		t.Fatal("the damaged copy passed as intact")
	}
	second := f.get(t, walName(1), f.pushFetch)
	if second.status != 200 || !bytes.Equal(second.body, good) {
		t.Fatalf("the read after a damaged copy: %d, %d bytes, intact %v", second.status, len(second.body), bytes.Equal(second.body, good))
	}
	f.settle(t)
	f.checkEverywhere(t)
}

// A catalog rebuilt from one backend knows only that backend; the copies
// QueueMissingCopies queues make the next gateway check the others and
// fill in what they lack (here: all of c, which lost its data).
func TestFanoutRebuildThenReconcile(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	f := startFanout(t, "all", data)
	for i := 1; i <= 6; i++ {
		expect(t, "push", f.push(t, i), 201, "")
	}
	names := f.names
	cfg := f.g.Server.Config()
	if err := f.g.Server.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.dirs["c"]); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(config.CatalogPath(data)); err != nil {
		t.Fatal(err)
	}
	be, err := all.Open(context.Background(), cfg.Backends[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rebuild.Run(t.Context(), be, "a", config.CatalogPath(data), nil); err != nil {
		t.Fatal(err)
	}
	be.Close()
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n, err := stores.QueueMissingCopies(cat, cfg)
	cat.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*len(names) {
		t.Errorf("queued %d copies, want %d (b and c for each object)", n, 2*len(names))
	}
	f2 := startFanout(t, "all", data)
	f2.names = names
	f2.settle(t)
	f2.checkEverywhere(t)
}

func testLog() io.Writer {
	if os.Getenv("WALGATE_TEST_LOG") != "" {
		return os.Stderr
	}
	return nil
}

// max_writes bounds the uploads to a backend at once, pushes and copies
// together; teed pushes under ack all take their slots in one order, so
// many at once never deadlock.
func TestFanoutMaxWrites(t *testing.T) {
	t.Parallel()
	f := startFanoutWith(t, "all", "", 2)
	for _, fb := range f.faults {
		fb.SetLatency(5 * time.Millisecond)
	}
	var wg sync.WaitGroup
	replies := make([]reply, 24)
	for i := range replies {
		wg.Go(func() { replies[i] = f.put(t, walName(i+1), f.pushFetch, bytes.Repeat([]byte{byte(i)}, 3000)) })
	}
	wg.Wait()
	for i, r := range replies {
		if r.status != 201 {
			t.Fatalf("push %d: %d %s", i, r.status, r.msg)
		}
		f.names = append(f.names, walName(i+1))
	}
	for n, fb := range f.faults {
		if m := fb.MaxPuts.Load(); m > 2 || m < 1 {
			t.Errorf("backend %s ran %d uploads at once, want at most max_writes 2", n, m)
		}
	}
	f.checkEverywhere(t)
}
