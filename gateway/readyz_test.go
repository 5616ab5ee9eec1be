package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// probe GETs path on the gateway without a token.
func (e *env) probe(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(e.g.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func wantReady(t *testing.T, e *env, what string, ready bool, mention ...string) {
	t.Helper()
	status, body := e.probe(t, "/readyz")
	var r gateway.Readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s: /readyz body %q: %v", what, body, err)
	}
	want := http.StatusOK
	if !ready {
		want = http.StatusServiceUnavailable
	}
	if status != want || r.Ready != ready || (ready && len(r.Reasons) > 0) || (!ready && len(r.Reasons) == 0) {
		t.Fatalf("%s: /readyz %d %s, want %d", what, status, body, want)
	}
	for _, m := range mention {
		if !strings.Contains(body, m) {
			t.Fatalf("%s: /readyz %s does not mention %q", what, body, m)
		}
	}
}

// TestReadyz: /readyz answers 503 with a reason while a backend the ack
// policy needs is failing, and 200 again once a write to it succeeded;
// /healthz stays 200 throughout; neither needs a token. With a count
// policy, a failed backend that stand-ins cover keeps the gateway ready.
func TestReadyz(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "primary", "")
	if status, body := f.probe(t, "/healthz"); status != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", status, body)
	}
	wantReady(t, f.env, "fresh gateway", true)
	expect(t, "push", f.push(t, 1), 201, "")

	// A replica failing does not touch the ack policy "primary".
	f.faults["b"].SetDown(true)
	f.push(t, 2)
	f.faults["b"].SetDown(false)
	wantReady(t, f.env, "replica down", true)

	f.faults["a"].SetDown(true)
	if r := f.push(t, 3); r.status < 500 {
		t.Fatalf("push with the primary down: %d", r.status)
	}
	wantReady(t, f.env, "primary down", false, "group all", "a (write failed")
	if status, _ := f.probe(t, "/healthz"); status != 200 {
		t.Fatalf("/healthz with the primary down: %d", status)
	}
	f.faults["a"].SetDown(false)
	// Recovery comes from a write that succeeds (or after the failure
	// ages out): the push path is not gated, so it is the probe.
	expect(t, "push after the primary is back", f.push(t, 4), 201, "")
	wantReady(t, f.env, "primary back", true)

	g := startFanout(t, "2", "")
	g.faults["a"].SetDown(true)
	expect(t, "push with a stand-in", g.push(t, 1), 201, "")
	wantReady(t, g.env, "count policy, one of three down", true)
	g.faults["b"].SetDown(true)
	if r := g.push(t, 2); r.status < 500 {
		t.Fatalf("push with two of three down and ack 2: %d", r.status)
	}
	wantReady(t, g.env, "count policy, two of three down", false, "needs 2")
}

// TestReadyzCatalog: a catalog that does not answer makes /readyz 503
// with the catalog named, and a push is not acknowledged.
func TestReadyzCatalog(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{Log: testLog()})
	wantReady(t, e, "fresh gateway", true)
	if err := e.g.Server.Catalog().Close(); err != nil {
		t.Fatal(err)
	}
	wantReady(t, e, "catalog closed", false, "catalog: ")
	if r := e.put(t, seg1, e.pushFetch, []byte("x")); r.status < 500 {
		t.Fatalf("push with the catalog closed: HTTP %d, want 5xx", r.status)
	}
}
