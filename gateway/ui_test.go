package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
)

// chromiumPath is Debian's chromium, installed by make deps.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the dashboard test leaves its screenshots:
// $WALGATE_TEST_OUTPUT, or testoutput/ beside this package.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("WALGATE_TEST_OUTPUT")
	if dir == "" {
		dir = "testoutput"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// seedFleet gives the gateway three clusters: payments healthy (WAL
// pushed, a full backup and a delta, a passing drill), orders with a lost
// WAL gap, and ledger with WAL but no backup.
func seedFleet(t *testing.T, e *env) {
	t.Helper()
	cat := e.g.Server.Catalog()
	now := time.Now().UTC()
	push := func(cluster string, segs ...int) {
		tok := e.g.Token(cluster, "push")
		for _, n := range segs {
			name := fmt.Sprintf("0000000100000000000000%02X", n)
			u := e.g.URL + protocol.WALPath(cluster, name)
			body := randBytes(t, 2000)
			req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+tok)
			for k, v := range walHeaders(body) {
				req.Header.Set(k, v)
			}
			// As if compressed from a 16 MiB segment: the gateway learns the
			// cluster's segment size from it.
			req.Header.Set(protocol.HeaderPlainSize, fmt.Sprint(16<<20))
			req.ContentLength = int64(len(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				t.Fatalf("push %s/%s: HTTP %d", cluster, name, resp.StatusCode)
			}
		}
	}
	push("payments", 1, 2, 3, 4, 5, 6)
	push("orders", 1, 2, 3, 7, 8)
	push("ledger", 1, 2)
	backup := func(cluster, name, kind, parent string, depth int, startSeg uint64, at time.Time) {
		t.Helper()
		if err := cat.BeginBackup(cluster, index.Backup{Name: name, State: index.BackupOpen, Session: "s", Begun: at, LastActivity: at}); err != nil {
			t.Fatal(err)
		}
		err := cat.UpdateBackup(cluster, name, func(b *index.Backup) error {
			b.State, b.Committed = index.BackupCommitted, at
			b.Files = map[string]index.BackupFile{"tar_partitions/part_001.tar.zst": {Size: 40 << 20}}
			b.Info = index.BackupInfo{Kind: kind, DeltaFrom: parent, DeltaCount: depth, DeltaFullName: "base_000000010000000000000001",
				StartLSN: startSeg * 16 << 20, FinishLSN: startSeg*16<<20 + 100, Timeline: 1, StartTime: at.Add(-time.Minute), FinishTime: at}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	backup("payments", "base_000000010000000000000001", "full", "", 0, 1, now.Add(-6*time.Hour))
	backup("payments", "base_000000010000000000000004_D_000000010000000000000001", "delta", "base_000000010000000000000001", 1, 4, now.Add(-2*time.Hour))
	backup("orders", "base_000000010000000000000001", "full", "", 0, 1, now.Add(-5*time.Hour))
	rep, _ := json.Marshal(protocol.DrillReport{Cluster: "payments", Backup: "base_000000010000000000000004_D_000000010000000000000001", Passed: true,
		FetchSeconds: 3.2, RecoverySeconds: 1.5, Host: "db1", Checks: []protocol.Check{{Name: "amcheck", Passed: true}}})
	if err := cat.AddDrill("payments", index.DrillRecord{Received: now.Add(-time.Hour), Passed: true, Report: rep}); err != nil {
		t.Fatal(err)
	}
}

// seedDashboard adds to seedFleet what the storage team's pages show: a
// newer full backup of payments (so retention would delete the older
// chain), a failed drill of orders with its failing check's error, and
// seven days of hourly activity of payments.
func seedDashboard(t *testing.T, e *env) {
	t.Helper()
	cat := e.g.Server.Catalog()
	now := time.Now().UTC()
	name := "base_000000010000000000000005"
	if err := cat.BeginBackup("payments", index.Backup{Name: name, State: index.BackupOpen, Session: "s2", Begun: now, LastActivity: now}); err != nil {
		t.Fatal(err)
	}
	err := cat.UpdateBackup("payments", name, func(b *index.Backup) error {
		b.State, b.Committed = index.BackupCommitted, now.Add(-30*time.Minute)
		b.Files = map[string]index.BackupFile{"tar_partitions/part_001.tar.zst": {Size: 41 << 20}}
		b.Info = index.BackupInfo{Kind: "full", StartLSN: 5 * 16 << 20, FinishLSN: 5*16<<20 + 100, Timeline: 1,
			StartTime: now.Add(-31 * time.Minute), FinishTime: now.Add(-30 * time.Minute)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := json.Marshal(protocol.DrillReport{Cluster: "orders", Backup: "base_000000010000000000000001", Passed: false, Host: "db2",
		Checks: []protocol.Check{{Name: "connect", Passed: true}, {Name: "check-sql", Passed: false, Output: `ERROR: relation "invoices" does not exist`}}})
	if err := cat.AddDrill("orders", index.DrillRecord{Received: now.Add(-20 * time.Minute), Passed: false, Report: rep}); err != nil {
		t.Fatal(err)
	}
	hours := map[time.Time]index.TrendCounts{}
	for h := 1; h < index.TrendHours; h++ {
		hours[now.Add(-time.Duration(h)*time.Hour)] = index.TrendCounts{WALBytes: int64(h%24+1) << 24, WALFiles: int64(h%24 + 1),
			Backups: int64(h % 24 / 23), Requests: 100, Errors: int64(h % 7 / 6)}
	}
	if err := cat.AddTrends(map[string]map[time.Time]index.TrendCounts{"payments": hours}, now); err != nil {
		t.Fatal(err)
	}
}

// The dashboard in a real headless Chromium at 1280x800: refused without a
// login; after logging in with an admin token, the fleet page lists every
// cluster with its status, the cluster page shows its timeline (zoomable),
// its last 7 days, backups and drills (a failed one with its failing check
// and error), and the lifecycle page the plan with its reasons, storage
// by class and the cost before and after. No page scrolls sideways;
// screenshots of each go to the test output.
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Debian's chromium is required for the dashboard test (make deps installs it): %v", err)
	}
	// A missing segment counts as lost at once; payments keeps one full
	// backup chain, so the older one is planned for deletion.
	e := start(t, gatewaytest.Options{Config: gateway.Config{Health: config.HealthConfig{DelayedFor: time.Nanosecond},
		Groups:    []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"local"}, Lifecycle: lifecycle.Policy{RetainFull: 1}}},
		Lifecycle: config.LifecycleConfig{Prices: map[lifecycle.Class]float64{lifecycle.Hot: 0.023}}}})
	seedFleet(t, e)
	seedDashboard(t, e)
	admin := e.g.FleetToken()

	// Without a login: HTML goes to the login page, tools get 401, and a
	// host's token is refused.
	req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/ui/", nil)
	req.Header.Set("Accept", "text/html")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" || strings.Contains(string(body), "payments") {
		t.Fatalf("unauthenticated /ui/: HTTP %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, tok := range []string{"", e.push} {
		req, _ := http.NewRequest(http.MethodGet, e.g.URL+"/ui/clusters/payments", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 && resp.StatusCode != 403 || strings.Contains(string(body), "base_0000000100") {
			t.Fatalf("/ui/clusters/payments with token %q: HTTP %d %s", tok, resp.StatusCode, body)
		}
	}
	// A forged cookie is not a session.
	req, _ = http.NewRequest(http.MethodGet, e.g.URL+"/ui/", nil)
	req.AddCookie(&http.Cookie{Name: "walgate_session", Value: "9999999999.x.forged"})
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode == 200 {
		t.Fatalf("forged session cookie accepted: %v %v", resp, err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	defer cancelT()

	out := screenshotDir(t)
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
		return v
	}
	// Every page fits the 1280-pixel window: nothing scrolls sideways.
	fits := func(what string) {
		t.Helper()
		sw, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatalf("browser: width of %s: %v", what, err)
		}
		vw, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`))
		if err != nil {
			t.Fatalf("browser: window width at %s: %v", what, err)
		}
		if vw != 1280 || sw > 1280 {
			t.Errorf("%s: %d pixels wide in a %d-pixel window: it scrolls sideways", what, sw, vw)
		}
	}
	shot := func(what string) []byte {
		t.Helper()
		fits(what)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("browser: screenshot of %s: %v", what, err)
		}
		return png
	}
	step("open the dashboard", chromedp.Navigate(e.g.URL+"/ui/"), chromedp.WaitVisible(`input[name=token]`))
	step("log in with a host token", chromedp.SendKeys(`input[name=token]`, e.push), chromedp.Submit(`input[name=token]`), chromedp.WaitVisible(`#error`))
	loginErr := get("login error", chromedp.Text(`#error`))
	step("log in with an admin token", chromedp.Navigate(e.g.URL+"/ui/login"), chromedp.WaitVisible(`input[name=token]`), chromedp.SendKeys(`input[name=token]`, admin),
		chromedp.Submit(`input[name=token]`), chromedp.WaitVisible(`#fleet`))
	fleetText := get("fleet page", chromedp.Text(`body`))
	fleetPNG := shot("the fleet page")
	// Sort by status: the critical clusters come first on the second click.
	step("sort by status", chromedp.Click(`#fleet th:nth-child(2)`), chromedp.Click(`#fleet th:nth-child(2)`))
	firstRow := get("first row", chromedp.Text(`#fleet tbody tr:first-child td:nth-child(2)`))
	step("open a cluster", chromedp.Navigate(e.g.URL+"/ui/clusters/payments"), chromedp.WaitVisible(`#timeline`))
	clusterText := get("cluster page", chromedp.Text(`body`))
	clusterPNG := shot("the cluster page")
	trendBars := get("trend bars", chromedp.Evaluate[string](`String(document.querySelectorAll('#trends rect').length)`))
	// Zoom: each range is a link; the chosen one is marked and labels its ticks.
	zoomPNG := map[string][]byte{}
	zoomTicks := map[string]string{}
	for _, r := range []string{"24h", "7d", "30d", "all"} {
		step("zoom to "+r, chromedp.Click(`#zoom a[href="?range=`+r+`"]`), chromedp.WaitVisible(`#zoom a.on[href="?range=`+r+`"]`))
		zoomTicks[r] = get("ticks", chromedp.Evaluate[string](`[].map.call(document.querySelectorAll('#timeline text[text-anchor]'),function(t){return t.textContent}).join('|')`))
		zoomPNG[r] = shot("the cluster page at " + r)
	}
	step("open a cluster whose drill failed", chromedp.Navigate(e.g.URL+"/ui/clusters/orders"), chromedp.WaitVisible(`#drill-failed`))
	failedText := get("failed drill", chromedp.Text(`#drill-failed`))
	ordersTrend := get("orders trends", chromedp.Evaluate[string](`String(document.querySelectorAll('#trends rect').length)`))
	ordersPNG := shot("the cluster page of a failed drill")
	step("open the lifecycle page", chromedp.Click(`nav a[href="/ui/lifecycle"]`), chromedp.WaitVisible(`#steps`))
	lifecycleText := get("lifecycle page", chromedp.Text(`body`))
	lifecyclePNG := shot("the lifecycle page")
	refresh := get("auto-refresh", chromedp.Evaluate[string](`String(document.getElementById('autorefresh').checked)`))
	if !strings.Contains(loginErr, "no admin scope") {
		t.Fatalf("login with a host token: %q", loginErr)
	}
	for _, w := range []string{"payments", "orders", "ledger", "critical", "lost", "Last drill"} {
		if !strings.Contains(fleetText, w) {
			t.Errorf("fleet page lacks %q:\n%s", w, fleetText)
		}
	}
	if strings.TrimSpace(firstRow) != "critical" {
		t.Errorf("sorting by status puts %q first", firstRow)
	}
	for _, w := range []string{"base_000000010000000000000004_D_000000010000000000000001", "delta", "passed", "amcheck", "recoverable window", "Backends",
		"Last 7 days", "WAL archived per hour", "backups committed per hour", "request errors per hour"} {
		if !strings.Contains(clusterText, w) {
			t.Errorf("cluster page lacks %q:\n%s", w, clusterText)
		}
	}
	if n, _ := strconv.Atoi(trendBars); n < 100 {
		t.Errorf("the 7-day trends of payments show %d bars, want one per active hour", n)
	}
	if !strings.Contains(zoomTicks["24h"], ":") || strings.Contains(zoomTicks["7d"], ":") || zoomTicks["7d"] == zoomTicks["30d"] {
		t.Errorf("zoom levels do not change the time axis: %q", zoomTicks)
	}
	if ordersTrend == "0" {
		t.Error("orders archived WAL through the gateway, yet its 7-day trends are empty")
	}
	for _, w := range []string{"last restore drill failed", "check-sql", `relation "invoices" does not exist`} {
		if !strings.Contains(failedText, w) {
			t.Errorf("failed drill banner lacks %q: %q", w, failedText)
		}
	}
	for _, w := range []string{"monthly cost now", "after the plan", "Storage by class", "hot", "archive",
		"base_000000010000000000000004_D_000000010000000000000001", "base_000000010000000000000005", "delete"} {
		if !strings.Contains(lifecycleText, w) {
			t.Errorf("lifecycle page lacks %q:\n%s", w, lifecycleText)
		}
	}
	if refresh != "true" {
		t.Errorf("auto-refresh is %s by default", refresh)
	}
	shots := map[string][]byte{"dashboard-fleet.png": fleetPNG, "dashboard-cluster.png": clusterPNG, "dashboard-cluster-failed-drill.png": ordersPNG,
		"dashboard-lifecycle.png": lifecyclePNG}
	for r, png := range zoomPNG {
		shots["dashboard-cluster-"+r+".png"] = png
	}
	for name, png := range shots {
		if len(png) < 10_000 || string(png[:4]) != "\x89PNG" {
			t.Errorf("%s: %d bytes, not a real screenshot", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", out)
}
