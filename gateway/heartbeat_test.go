package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index"
)

// A gateway on its bbolt catalog registers itself as the fleet's one
// gateway before it serves: walgate status, /metrics and the fleet page
// show it alive, and a clean shutdown leaves it recorded as stopped.
func TestHeartbeatOnBbolt(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	list, err := g.Server.Gateways()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if len(list) != 1 {
		t.Fatalf("gateways: %+v, want this one", list)
	}
	me := list[0]
	if me.ID != g.Server.Instance() || me.Host != host || me.Address != u.Host || me.Version != gateway.Version ||
		me.PID != os.Getpid() || me.State != fleet.GatewayAlive || !me.Alive || !me.Ready || me.LastSeenAgo > 5 {
		t.Fatalf("this gateway is listed as %+v", me)
	}

	rec := httptest.NewRecorder()
	g.Server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	labels := fmt.Sprintf(`{gateway=%q,host=%q}`, me.ID, host)
	for _, want := range []string{"walgate_gateway_up" + labels + " 1", "walgate_gateway_stopped" + labels + " 0",
		"walgate_gateway_last_seen_timestamp_seconds" + labels + " ", "\nwalgate_gateways 1\n"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, g.URL+"/ui/", nil)
	req.Header.Set("Authorization", "Bearer "+g.FleetToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), me.ID) || !strings.Contains(string(page), `data-state="alive"`) ||
		!strings.Contains(string(page), "1 / 1") {
		t.Fatalf("fleet page (HTTP %d) does not show this gateway alive:\n%s", resp.StatusCode, page)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := index.Open(config.CatalogPath(g.Data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	after, err := fleet.Gateways(cat)
	if err != nil || len(after) != 1 || after[0].ID != me.ID || after[0].State != fleet.GatewayStopped || after[0].Alive || after[0].Ready {
		t.Fatalf("after a clean shutdown: %+v %v, want it stopped", after, err)
	}
}
