package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
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

// The dashboard in a real headless Chromium: refused without a login;
// after logging in with an admin token, the fleet page lists every cluster
// with its status and the cluster page shows its timeline, backups and
// drills. Screenshots go to the test output.
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Debian's chromium is required for the dashboard test (make deps installs it): %v", err)
	}
	// A missing segment counts as lost at once.
	e := start(t, gatewaytest.Options{Config: gateway.Config{Health: config.HealthConfig{DelayedFor: time.Nanosecond}}})
	seedFleet(t, e)
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
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
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
	shot := func(what string) []byte {
		t.Helper()
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
	for _, w := range []string{"base_000000010000000000000004_D_000000010000000000000001", "delta", "passed", "amcheck", "recoverable window", "Backends"} {
		if !strings.Contains(clusterText, w) {
			t.Errorf("cluster page lacks %q:\n%s", w, clusterText)
		}
	}
	for name, png := range map[string][]byte{"dashboard-fleet.png": fleetPNG, "dashboard-cluster.png": clusterPNG} {
		if len(png) < 10_000 || string(png[:4]) != "\x89PNG" {
			t.Errorf("%s: %d bytes, not a real screenshot", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", out)
}
