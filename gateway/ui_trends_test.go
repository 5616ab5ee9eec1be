package gateway_test

import (
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// The gateway keeps each cluster's activity per hour in its catalog: WAL
// archived (bytes, files), request errors (not found is not one), and
// nothing for clusters the catalog does not have, whatever paths
// requests name. The cluster page shows it.
func TestTrendsRecordedFromRequests(t *testing.T) {
	e := start(t, gatewaytest.Options{Log: testLog()})
	bodies := [][]byte{randBytes(t, 3000), randBytes(t, 5000)}
	expect(t, "push 1", e.put(t, seg1, e.push, bodies[0]), 201, "")
	expect(t, "push 2", e.put(t, seg2, e.push, bodies[1]), 201, "")
	expect(t, "push 1 again", e.put(t, seg1, e.push, bodies[0]), 200, "")
	expect(t, "different bytes", e.put(t, seg1, e.push, bodies[1]), 409, protocol.CodeConflict)
	expect(t, "fetch a missing one", e.get(t, "000000010000000000000009", e.fetch), 404, protocol.CodeNotFound)
	// Requests naming clusters the catalog does not have.
	for _, c := range []string{"nosuch", "x%2Fy"} {
		r := e.send(t, http.MethodGet, "/v1/clusters/"+c+"/wal/"+seg1, e.fetch, nil, nil)
		if r.status < 400 {
			t.Fatalf("GET for cluster %s: HTTP %d", c, r.status)
		}
	}
	admin := e.g.FleetToken()
	page := func(cluster string) string {
		req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/ui/clusters/"+cluster, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("/ui/clusters/%s: HTTP %d %s", cluster, resp.StatusCode, b)
		}
		return string(b)
	}
	body := page(cluster)
	buckets, err := e.g.Server.Catalog().Trends(cluster, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 1 {
		t.Fatalf("trend buckets of the last hour: %+v, want one", buckets)
	}
	b := buckets[0]
	if b.WALFiles != 2 || b.WALBytes != int64(len(bodies[0])+len(bodies[1])) || b.Errors != 1 || b.Requests != 5 || b.Backups != 0 {
		t.Errorf("this hour: %+v, want 2 WAL files of %d bytes, 5 requests, 1 error (the conflict)", b.TrendCounts, len(bodies[0])+len(bodies[1]))
	}
	if !regexp.MustCompile(`request errors per hour \(peak 1, total 1\)`).MatchString(body) || regexp.MustCompile(`trends-empty`).MatchString(body) {
		t.Errorf("the cluster page does not show the hour's activity:\n%s", grepLines(body, "per hour"))
	}
	for _, c := range []string{"nosuch", "x/y", "x%2Fy"} {
		if got, err := e.g.Server.Catalog().Trends(c, time.Time{}); err != nil || len(got) != 0 {
			t.Errorf("trends kept for %s, which the catalog does not have: %+v %v", c, got, err)
		}
	}
}
