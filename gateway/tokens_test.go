package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/audit"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle/apply"
)

// uiGet fetches a dashboard path with a Bearer token (or a cookie) and
// returns the status and body.
func uiGet(t *testing.T, g *gatewaytest.Gateway, path, token string, cookie *http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// uiLogin posts a token to the login form; it returns the status, the
// redirect target and the session cookie, if any.
func uiLogin(t *testing.T, g *gatewaytest.Gateway, token string) (int, string, *http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/ui/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.URL)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "walgate_session" && c.Value != "" {
			return resp.StatusCode, resp.Header.Get("Location"), c
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// An admin token is bound to its cluster on the dashboard too: with a
// Bearer header or a login session, an admin token of "main" opens
// main's page and is refused (403, before any existence check) on the
// page of mainx, of ma, of a cluster that does not exist, on the fleet
// page and on the audit page. A fleet-wide admin token opens them all and
// may delete on any cluster, but cannot push.
func TestDashboardScopes(t *testing.T) {
	e := start(t, gatewaytest.Options{})
	for _, c := range []string{"mainx", "ma"} {
		e.g.Token(c, "push")
	}
	bound := e.g.Token("main", "admin")
	fleet := e.g.FleetToken()

	_, loc, cookie := uiLogin(t, e.g, bound)
	if cookie == nil || loc != "/ui/clusters/main" {
		t.Fatalf("login with main's admin token: redirect to %q, cookie %v; want its cluster page and a session", loc, cookie)
	}
	for _, auth := range []struct {
		what   string
		token  string
		cookie *http.Cookie
	}{{"bearer", bound, nil}, {"session", "", cookie}} {
		if st, body := uiGet(t, e.g, "/ui/clusters/main", auth.token, auth.cookie); st != 200 || !strings.Contains(body, "main") {
			t.Errorf("%s: main's admin token on main's page: HTTP %d", auth.what, st)
		}
		for _, path := range []string{"/ui/clusters/mainx", "/ui/clusters/ma", "/ui/clusters/nosuch", "/ui/", "/ui/audit"} {
			st, body := uiGet(t, e.g, path, auth.token, auth.cookie)
			if st != 403 || !strings.Contains(body, "bound to cluster") || strings.Contains(body, "<table") {
				t.Errorf("%s: main's admin token on %s: HTTP %d %.200s, want 403 bound to cluster", auth.what, path, st, body)
			}
		}
	}
	for _, path := range []string{"/ui/clusters/main", "/ui/clusters/mainx", "/ui/", "/ui/audit"} {
		if st, body := uiGet(t, e.g, path, fleet, nil); st != 200 {
			t.Errorf("fleet-wide admin token on %s: HTTP %d %.200s", path, st, body)
		}
	}
	if st, _ := uiGet(t, e.g, "/ui/clusters/nosuch", fleet, nil); st != 404 {
		t.Errorf("fleet-wide admin token on a cluster that does not exist: HTTP %d, want 404", st)
	}
	if _, loc, _ := uiLogin(t, e.g, fleet); loc != "/ui/" {
		t.Errorf("login with a fleet-wide token goes to %q, want /ui/", loc)
	}

	// The API: a fleet-wide admin token deletes (here: plans) on any
	// cluster; it has no push scope.
	del := e.send(t, "POST", protocol.DeletePath("mainx"), fleet, map[string]string{"Content-Type": "application/json"}, []byte(`{"retain":1}`))
	if del.status == 401 || del.status == 403 {
		t.Errorf("fleet-wide admin token, delete dry run on mainx: HTTP %d %s", del.status, del.msg)
	}
	body := randBytes(t, 100)
	expect(t, "fleet-wide admin token pushing", e.send(t, http.MethodPut, protocol.WALPath("main", seg1), fleet, walHeaders(body), body), 403, protocol.CodeForbidden)
	// The CLI's rules hold at the socket too.
	a, err := admin.Dial(e.g.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []admin.TokenSpec{
		{AllClusters: true, Scopes: []index.Scope{index.ScopePush}},
		{AllClusters: true, Cluster: "main", Scopes: []index.Scope{index.ScopeAdmin}},
		{Scopes: []index.Scope{index.ScopeAdmin}},
	} {
		if _, _, err := a.IssueToken(spec); err == nil {
			t.Errorf("token %+v was issued", spec)
		}
	}
}

// Expiry and rotation: an expired token gets 401 naming it and the word
// expired, on the API and at the dashboard login; a rotated token keeps
// working beside its successor until the grace period ends, then its 401
// names the successor. Tokens close to expiry show in /metrics.
func TestTokenExpiryAndRotation(t *testing.T) {
	e := start(t, gatewaytest.Options{})
	cat := e.g.Server.Catalog()
	now := time.Now()
	body := randBytes(t, 1000)
	push := func(tok string) reply {
		return e.send(t, http.MethodPut, protocol.WALPath(cluster, seg1), tok, walHeaders(body), body)
	}

	expired, rec, err := admin.IssueToken(cat, admin.TokenSpec{Cluster: cluster, Scopes: []index.Scope{index.ScopePush, index.ScopeAdmin}, Lifetime: time.Hour}, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r := push(expired)
	expect(t, "expired token", r, 401, protocol.CodeUnauthorized)
	if !strings.Contains(r.msg, "expired") || !strings.Contains(r.msg, rec.ID) {
		t.Errorf("expired token's 401 says %q; want the word expired and the token ID %s", r.msg, rec.ID)
	}
	if st, _, c := uiLogin(t, e.g, expired); st != 401 || c != nil {
		t.Errorf("dashboard login with an expired token: HTTP %d, cookie %v", st, c)
	}

	// Rotation: a 90-day token rotated with a grace of an hour.
	oldSecret, oldRec, err := admin.IssueToken(cat, admin.TokenSpec{Cluster: cluster, Scopes: []index.Scope{index.ScopePush}, Lifetime: 90 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := admin.Dial(e.g.Data)
	if err != nil {
		t.Fatal(err)
	}
	newSecret, old, next, err := a.RotateToken(oldRec.ID, admin.RotateRequest{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if old.Successor != next.ID || next.RotatedFrom != old.ID || next.Cluster != cluster || len(next.Scopes) != 1 || next.Scopes[0] != index.ScopePush {
		t.Fatalf("rotation records: old %+v, next %+v", old, next)
	}
	if d := old.Expires.Sub(now); d < 50*time.Minute || d > 70*time.Minute {
		t.Errorf("the rotated token expires in %s, want the grace of 1h", d)
	}
	if d := next.Expires.Sub(next.Created); d != 90*24*time.Hour {
		t.Errorf("the successor lives %s, want the old token's 90 days", d)
	}
	if _, _, _, err := a.RotateToken(oldRec.ID, admin.RotateRequest{}); err == nil || !strings.Contains(err.Error(), next.ID) {
		t.Errorf("rotating a rotated token again: %v; want a refusal naming its successor", err)
	}
	if r := push(oldSecret); r.status != 201 {
		t.Fatalf("the rotated token within its grace period: HTTP %d %s", r.status, r.msg)
	}
	if r := push(newSecret); r.status != 201 && r.status != 200 {
		t.Fatalf("the successor: HTTP %d %s", r.status, r.msg)
	}

	// A rotation whose grace has passed.
	gone, goneRec, err := admin.IssueToken(cat, admin.TokenSpec{Cluster: cluster, Scopes: []index.Scope{index.ScopePush}}, now.Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, _, succ, err := admin.RotateToken(cat, goneRec.ID, admin.RotateRequest{Grace: time.Hour}, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r = push(gone)
	expect(t, "rotated token after its grace", r, 401, protocol.CodeUnauthorized)
	if !strings.Contains(r.msg, "expired") || !strings.Contains(r.msg, succ.ID) {
		t.Errorf("rotated token after its grace: %q; want expired and the successor %s", r.msg, succ.ID)
	}

	// /metrics: each token with an expiry, and the count of those
	// expiring within 14 days without a successor (the rotated one has a
	// successor; one of 10 days is added).
	if _, soon, err := admin.IssueToken(cat, admin.TokenSpec{Cluster: "other", Scopes: []index.Scope{index.ScopeFetch}, Lifetime: 10 * 24 * time.Hour}, now); err != nil {
		t.Fatal(err)
	} else {
		metrics := scrapeText(t, e)
		for _, want := range []string{
			`walgate_token_expiry_timestamp_seconds{cluster="other",id="` + soon.ID + `"}`,
			`walgate_token_expiry_timestamp_seconds{cluster="main",id="` + next.ID + `"}`,
			"walgate_tokens_expiring 1\n",
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "token"))
			}
		}
	}
}

func scrapeText(t *testing.T, e *env) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.g.Server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// Every administrative act done through the gateway is one JSON line in
// DATA/audit.log (0600) with the token ID and the client, never a secret:
// token add, rotate and revoke on the admin socket, dashboard logins that
// succeed and fail, a confirmed delete, a lifecycle apply. The audit page
// shows them to a fleet-wide admin.
func TestAuditLog(t *testing.T) {
	e := start(t, gatewaytest.Options{})
	a, err := admin.Dial(e.g.Data)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{e.pushFetch, e.push, e.fetch, e.other}
	fleet := e.g.FleetToken()
	adminTok, adminRec, err := a.IssueToken(admin.TokenSpec{Cluster: cluster, Scopes: []index.Scope{index.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	rotated, _, next, err := a.RotateToken(adminRec.ID, admin.RotateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(next.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken("nosuch"); err == nil {
		t.Fatal("revoking an unknown token succeeded")
	}
	uiLogin(t, e.g, adminTok)
	wrong := "wgt1.main.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	uiLogin(t, e.g, wrong)
	del := e.send(t, "POST", protocol.DeletePath(cluster), adminTok, map[string]string{"Content-Type": "application/json"}, []byte(`{"retain":1,"confirm":true}`))
	if del.status == 401 || del.status == 403 {
		t.Fatalf("delete: HTTP %d %s", del.status, del.msg)
	}
	_, lcErr := a.Lifecycle(apply.Options{Apply: true})
	secrets = append(secrets, fleet, adminTok, rotated, wrong)

	f, err := os.Open(audit.Path(e.g.Data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("audit.log mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := io.ReadAll(f)
	for _, s := range secrets {
		if i := strings.LastIndexByte(s, '.'); strings.Contains(string(raw), s[i+1:]) {
			t.Fatalf("audit.log holds a token secret:\n%s", raw)
		}
	}
	var got []audit.Entry
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var en audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		got = append(got, en)
	}
	has := func(action, target, result, token, client string) {
		t.Helper()
		for _, en := range got {
			if en.Action == action && strings.Contains(en.Target, target) && strings.Contains(en.Result, result) &&
				en.Token == token && strings.Contains(en.Client, client) && !en.Time.IsZero() {
				return
			}
		}
		t.Errorf("no audit entry %s %s %s token %q client %q in:\n%s", action, target, result, token, client, raw)
	}
	has("token.add", adminRec.ID+" main", "ok", "", "admin-socket")
	has("token.add", "all clusters", "ok", "", "admin-socket")
	has("token.rotate", adminRec.ID+" -> "+next.ID, "ok", "", "admin-socket")
	has("token.revoke", next.ID, "ok", "", "admin-socket")
	has("token.revoke", "nosuch", "not in the catalog", "", "admin-socket")
	has("ui.login", "main", "ok", adminRec.ID, "127.0.0.1")
	has("ui.login", "", "unknown or revoked token "+protocol.TokenID(wrong), "", "127.0.0.1")
	has("delete", "main", "", adminRec.ID, "127.0.0.1")
	has("lifecycle.apply", "all clusters", audit.Result(lcErr), "", "admin-socket")

	st, page := uiGet(t, e.g, "/ui/audit", fleet, nil)
	if st != 200 || !strings.Contains(page, "token.rotate") || !strings.Contains(page, "lifecycle.apply") {
		t.Errorf("audit page: HTTP %d\n%.500s", st, page)
	}
}

// syncBuffer is a log sink the gateway may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A catalog whose admin tokens are all bound to a cluster (as every one
// was before fleet-wide tokens) starts with a warning naming them and
// saying how to issue a fleet-wide one; once one exists, no warning.
func TestStartWarnsAboutBoundAdminTokens(t *testing.T) {
	data := t.TempDir()
	first := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})
	first.Token("main", "push")
	first.Token("main", "admin")
	cat := first.Server.Catalog()
	list, err := cat.ListTokens()
	if err != nil {
		t.Fatal(err)
	}
	var adminID string
	for _, tok := range list {
		if tok.Has(index.ScopeAdmin) {
			adminID = tok.ID
		}
	}
	restart := func() (*gatewaytest.Gateway, string) {
		t.Helper()
		if err := first.Server.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		var log syncBuffer
		g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Data: data}, Log: &log})
		return g, log.String()
	}
	g, log := restart()
	if !strings.Contains(log, "--all-clusters") || !strings.Contains(log, adminID+" (main)") {
		t.Fatalf("start with only bound admin tokens: no warning naming %s:\n%s", adminID, log)
	}
	g.FleetToken()
	first = g
	if _, log := restart(); strings.Contains(log, "--all-clusters") {
		t.Fatalf("warning despite a fleet-wide admin token:\n%s", log)
	}
}
