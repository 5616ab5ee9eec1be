package gateway_test

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// With a single store, a damaged copy has no good copy to be repaired
// from: the first read sends it (the client's check fails), every later
// read is answered "damaged" without reading it again; one repair is
// queued however often it is read, tried, reported once (log, metric,
// status) and then left alone instead of retried in a loop.
func TestDamagedEverywhereReportedOnce(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{Log: testLog()})
	body := randBytes(t, 64<<10)
	expect(t, "push", e.put(t, seg1, e.pushFetch, body), 201, "")
	obj, err := e.g.Server.Catalog().WAL(cluster, seg1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.storeDir(), filepath.FromSlash(obj.Key))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	e.get(t, seg1, e.pushFetch) // finds the damage
	for range 5 {
		r := e.get(t, seg1, e.pushFetch)
		if r.status != 502 || r.code != protocol.CodeDamaged {
			t.Fatalf("read of an object damaged everywhere: %d %s %q", r.status, r.code, r.msg)
		}
	}
	// The one repair fails for want of a good copy and is parked.
	deadline := time.Now().Add(10 * time.Second)
	for len(e.g.Server.LostObjects()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the repair without a good copy was never reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for retries, were there any
	st, err := e.g.Server.BackendsStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].PendingObjects != 1 || !strings.Contains(st[0].LastError, "no backend holds a good copy") {
		t.Fatalf("status: %+v, want one parked repair saying why", st)
	}
	q, err := e.g.Server.Catalog().Pending(st[0].Name, 0)
	if err != nil || len(q) != 1 || q[0].Attempts != 1 || q[0].NextAttempt.Before(time.Now().Add(time.Hour)) {
		t.Fatalf("queue: %+v %v, want one repair tried once and parked", q, err)
	}
	rec := httptest.NewRecorder()
	e.g.Server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `walgate_unrepairable_objects_total{backend="`+st[0].Name+`",cluster="main"} 1`) {
		t.Fatalf("metrics lack the unrepairable object:\n%s", grepLines(rec.Body.String(), "unrepairable"))
	}

	// Put back by hand: served again.
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if r := e.get(t, seg1, e.pushFetch); r.status != 200 || !bytes.Equal(r.body, body) {
		t.Fatalf("read after the copy was put back: %d %s", r.status, r.msg)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A copy missing from one store (the catalog lists the store as a holder)
// is read from another and queued for repair like a damaged one.
func TestFanoutMissingCopyRepaired(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "all", "")
	expect(t, "push", f.push(t, 1), 201, "")
	f.settle(t)
	obj, err := f.g.Server.Catalog().WAL(cluster, walName(1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dirs["a"], filepath.FromSlash(obj.Key))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := f.get(t, walName(1), f.pushFetch); r.status != 200 || sha(r.body) != obj.SHA256 {
			t.Fatalf("read with the primary's copy missing: %d %s", r.status, r.msg)
		}
	}
	f.settle(t)
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("the missing copy was not repaired (%v)", err)
	}
	f.checkEverywhere(t)
}
