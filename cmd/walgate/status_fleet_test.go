package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/catalogdb"
	"github.com/walgate/walgate/cmd/internal/jsondoc"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// Two gateways on one PostgreSQL catalog. One loses the catalog, as a
// killed or cut-off gateway leaves its row: within three heartbeats
// walgate status, the other gateway's /metrics and its fleet page show
// it down, and --fail-on warning fails. The other then shuts down
// cleanly and is shown stopped, which is no warning.
func TestStatusGatewaysOnPostgresCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := catalogdb.NewServer(t)
	pgAddr := fmt.Sprintf("127.0.0.1:%d", srv.Cluster.Port)
	proxy := catalogdb.NewProxy(t, pgAddr)
	viaProxy := srv.NewDatabase(t, proxy.Addr)
	direct := strings.Replace(viaProxy, proxy.Addr, pgAddr, 1)
	storeDir := t.TempDir()
	gatewayConfig := func(dsn string) gateway.Config {
		return gateway.Config{
			Catalog:  config.CatalogConfig{Type: config.CatalogPostgres, Postgres: config.PostgresCatalog{DSN: dsn}},
			Backends: []config.BackendConfig{{Name: "shared", Type: "fs", Path: storeDir}},
		}
	}
	g1 := gatewaytest.Start(t, gatewaytest.Options{Config: gatewayConfig(viaProxy)})
	g2 := gatewaytest.Start(t, gatewaytest.Options{Config: gatewayConfig(direct)})
	fleetToken := g2.FleetToken()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "fleet.yaml")
	cfg := fmt.Sprintf("data: %s\ncatalog:\n  type: postgres\n  postgres:\n    dsn: %s\nbackends:\n  - name: shared\n    type: fs\n    path: %s\n",
		filepath.Join(dir, "data"), direct, storeDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join("..", "..", "docs", "json.md")
	states := func() map[string]fleet.GatewayStatus {
		t.Helper()
		out, errOut, code := runWalgate("status", "--config", cfgPath, "--gateways", "--json")
		if code != 0 {
			t.Fatalf("status --gateways --json: exit %d: %s", code, errOut)
		}
		for _, p := range jsondoc.Check(doc, "walgate status --gateways --json", []byte(out)) {
			t.Error(p)
		}
		var list []fleet.GatewayStatus
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		m := map[string]fleet.GatewayStatus{}
		for _, g := range list {
			m[g.ID] = g
		}
		return m
	}
	id1, id2 := g1.Server.Instance(), g2.Server.Instance()
	if st := states(); len(st) != 2 || st[id1].State != fleet.GatewayAlive || st[id2].State != fleet.GatewayAlive {
		t.Fatalf("two gateways started: %+v", st)
	}
	if _, errOut, code := runWalgate("status", "--config", cfgPath, "--fail-on", "warning"); code != 0 {
		t.Fatalf("--fail-on warning with every gateway alive: exit %d: %s", code, errOut)
	}

	// g1's heartbeats stop reaching the catalog.
	proxy.Cut()
	cut := time.Now()
	for st := states(); st[id1].State != fleet.GatewayDown; st = states() {
		if st[id1].State != fleet.GatewayAlive || st[id2].State != fleet.GatewayAlive {
			t.Fatalf("after the cut: %+v", st)
		}
		if time.Since(cut) > fleet.GatewayAliveWithin+fleet.HeartbeatInterval+10*time.Second {
			t.Fatalf("g1 still not down %v after its last heartbeat could be written: %+v", time.Since(cut), st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("g1 shown down %v after the cut", time.Since(cut).Round(time.Millisecond))
	if st := states(); st[id2].State != fleet.GatewayAlive || st[id1].LastSeenAgo <= fleet.GatewayAliveWithin.Seconds() {
		t.Fatalf("g1 down, g2 alive: %+v", st)
	}
	out, _, _ := runWalgate("status", "--config", cfgPath)
	if !strings.Contains(out, "gateway "+id1+": warning: down") || !strings.Contains(out, "DOWN") || !strings.Contains(out, "ALIVE") {
		t.Errorf("status does not warn of the dead gateway:\n%s", out)
	}
	if _, errOut, code := runWalgate("status", "--config", cfgPath, "--fail-on", "warning"); code != 3 || !strings.Contains(errOut, "gateway "+id1+" down") {
		t.Errorf("--fail-on warning with a gateway down: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runWalgate("status", "--config", cfgPath, "--fail-on", "critical"); code != 0 {
		t.Errorf("--fail-on critical with a gateway down: exit %d: %s", code, errOut)
	}

	rec := httptest.NewRecorder()
	g2.Server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	host, _ := os.Hostname()
	for _, want := range []string{
		fmt.Sprintf("walgate_gateway_up{gateway=%q,host=%q} 0", id1, host),
		fmt.Sprintf("walgate_gateway_stopped{gateway=%q,host=%q} 0", id1, host),
		fmt.Sprintf("walgate_gateway_up{gateway=%q,host=%q} 1", id2, host),
		"\nwalgate_gateways 1\n",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("g2's /metrics lacks %q", want)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, g2.URL+"/ui/", nil)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	row := func(id string) string {
		i := strings.Index(string(page), id+"</td>")
		if i < 0 {
			return ""
		}
		j := strings.LastIndex(string(page[:i]), "<tr")
		return string(page[j:i])
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(row(id1), `data-state="down"`) || !strings.Contains(row(id2), `data-state="alive"`) ||
		!strings.Contains(string(page), "1 / 2") {
		t.Errorf("g2's fleet page (HTTP %d) does not show g1 down and itself alive:\n%s", resp.StatusCode, page)
	}

	// g2 stops cleanly: stopped, not down, and no warning of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g2.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := states(); st[id2].State != fleet.GatewayStopped || st[id2].Alive || st[id1].State != fleet.GatewayDown {
		t.Fatalf("after g2's clean shutdown: %+v", st)
	}
	if _, errOut, _ := runWalgate("status", "--config", cfgPath, "--fail-on", "warning"); strings.Contains(errOut, id2) {
		t.Errorf("a cleanly stopped gateway counts as a warning: %s", errOut)
	}
}

// On the embedded catalog the one gateway is the fleet: status asks the
// running gateway through its admin socket and shows it alive; once it
// has stopped cleanly, status reads the file and shows it stopped.
func TestStatusGatewaysOnBbolt(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	doc := filepath.Join("..", "..", "docs", "json.md")
	read := func() []fleet.GatewayStatus {
		t.Helper()
		out, errOut, code := runWalgate("status", "--data", g.Data, "--gateways", "--json")
		if code != 0 {
			t.Fatalf("status --gateways --json: exit %d: %s", code, errOut)
		}
		for _, p := range jsondoc.Check(doc, "walgate status --gateways --json", []byte(out)) {
			t.Error(p)
		}
		var list []fleet.GatewayStatus
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		return list
	}
	if list := read(); len(list) != 1 || list[0].ID != g.Server.Instance() || list[0].State != fleet.GatewayAlive || !list[0].Ready {
		t.Fatalf("the running gateway: %+v", list)
	}
	if out, _, code := runWalgate("status", "--data", g.Data); code != 0 || !strings.Contains(out, g.Server.Instance()) || !strings.Contains(out, "ALIVE") {
		t.Fatalf("status (exit %d) does not list the running gateway:\n%s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if list := read(); len(list) != 1 || list[0].State != fleet.GatewayStopped || !list[0].Stopped {
		t.Fatalf("the stopped gateway: %+v", list)
	}
	if _, errOut, code := runWalgate("status", "--data", g.Data, "--gateways", "--fail-on", "warning"); code != 0 {
		t.Fatalf("--fail-on warning with the gateway stopped cleanly: exit %d: %s", code, errOut)
	}
}
