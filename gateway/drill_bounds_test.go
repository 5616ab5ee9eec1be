package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// TestDrillReportsBounded: a fetch-scoped token posting many large drill
// reports cannot grow the catalog or the cluster's page without bound. A
// report above limits.max_drill_report_bytes gets 413 and is not kept;
// the catalog keeps limits.drill_reports_kept reports per cluster, the
// newest; long fields are cut with a marker; the page stays small.
func TestDrillReportsBounded(t *testing.T) {
	t.Parallel()
	const kept = 10
	e := start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{DrillReportsKept: kept}}})
	post := func(rep protocol.DrillReport) (int, string) {
		t.Helper()
		body, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		st, _, out := httpDo(t, http.MethodPost, e.g.URL+protocol.DrillsPath(cluster), e.fetch, nil, body)
		return st, string(out)
	}
	big := strings.Repeat("é", config.DefaultMaxDrillReportBytes/2) // over the limit in bytes
	if st, msg := post(protocol.DrillReport{Backup: "base_000000010000000000000002", Error: big}); st != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "max_drill_report_bytes") {
		t.Fatalf("a report above the limit: HTTP %d %s, want 413 naming the limit", st, msg)
	}
	// Just under the limit, with every field as large as it may be.
	long := strings.Repeat("x", 60<<10)
	checks := make([]protocol.Check, 100)
	for i := range checks {
		checks[i] = protocol.Check{Name: strings.Repeat("n", 300), Output: strings.Repeat("o", 1<<10)}
	}
	const posts = 25
	for i := range posts {
		st, msg := post(protocol.DrillReport{Backup: long[:300], Host: long[:300], Error: long, Checks: checks, Passed: i%2 == 0,
			Started: time.Now(), Finished: time.Now()})
		if st != http.StatusCreated {
			t.Fatalf("report %d: HTTP %d %s", i, st, msg)
		}
	}
	recs, err := e.g.Server.Catalog().Drills(cluster, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != kept {
		t.Fatalf("the catalog keeps %d reports, want %d", len(recs), kept)
	}
	for _, r := range recs {
		if len(r.Report) > 96<<10 {
			t.Fatalf("a kept report is %d bytes", len(r.Report))
		}
		var rep protocol.DrillReport
		if err := json.Unmarshal(r.Report, &rep); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rep.Error, "[truncated: 61440 bytes in all]") || len(rep.Checks) != 32 || !strings.Contains(rep.Checks[31].Name, "69 more checks dropped") {
			t.Fatalf("fields not cut with a marker: error %d bytes ending %q, %d checks", len(rep.Error), rep.Error[max(0, len(rep.Error)-40):], len(rep.Checks))
		}
	}
	// The newest are the ones kept.
	if last := recs[len(recs)-1]; last.Passed != ((posts-1)%2 == 0) {
		t.Errorf("the newest kept report is not the last posted")
	}
	st, _, list := httpDo(t, http.MethodGet, e.g.URL+protocol.DrillsPath(cluster), e.fetch, nil, nil)
	var reps []protocol.DrillReport
	if st != 200 || json.Unmarshal(list, &reps) != nil || len(reps) != kept {
		t.Fatalf("GET drills: HTTP %d, %d reports", st, len(reps))
	}
	fi, err := os.Stat(e.g.Data + "/catalog.db")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 8<<20 {
		t.Errorf("catalog grew to %d bytes after %d large reports", fi.Size(), posts)
	}
	req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/ui/clusters/"+cluster, nil)
	req.Header.Set("Authorization", "Bearer "+e.g.Token(cluster, "admin"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(page) > 512<<10 {
		t.Fatalf("cluster page: HTTP %d, %d bytes", resp.StatusCode, len(page))
	}
}
