package gateway_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/lifecycle/apply"
)

// The lifecycle page plans at most every 10 minutes: reloading it (it
// refreshes itself every minute) reuses the dry run, so an open dashboard
// does not keep taking the lock scheduled runs and deletions need.
func TestLifecyclePageReusesItsPlan(t *testing.T) {
	e := start(t, gatewaytest.Options{Log: testLog()})
	expect(t, "push", e.put(t, seg1, e.push, randBytes(t, 1000)), 201, "")
	admin := e.g.FleetToken()
	plannedAt := regexp.MustCompile(`planned at ([0-9-]+ [0-9:]+ UTC)`)
	load := func() string {
		req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/ui/lifecycle", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := plannedAt.FindSubmatch(b)
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("/ui/lifecycle: HTTP %d without 'planned at':\n%s", resp.StatusCode, b)
		}
		return string(m[1])
	}
	first := load()
	time.Sleep(1100 * time.Millisecond)
	if second := load(); second != first {
		t.Errorf("the page planned again after a second: %s, then %s", first, second)
	}
	// Meanwhile a real run is not refused as busy.
	if _, err := e.g.Server.Lifecycle(context.Background(), apply.Options{}, time.Now()); err != nil {
		t.Fatalf("a lifecycle run after the page: %v", err)
	}
}
