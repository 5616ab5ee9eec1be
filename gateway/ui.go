package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// The dashboard: server-rendered, read-only pages under /ui/, for holders
// of an admin-scope token (the storage team's; database hosts' tokens have
// push and fetch only). An admin token bound to a cluster opens that
// cluster's page only; the fleet page and the audit page need a
// fleet-wide admin token. A browser logs in with the token once and gets a
// signed, HttpOnly, SameSite=Strict session cookie for uiSessionTTL; the
// session ends early when the token is revoked or the gateway restarts.
// Tools may send the token as a Bearer header instead.

//go:embed ui/*.html
var uiFiles embed.FS

const (
	uiDrillsShown = 30 // drill reports on a cluster's page, newest first
	uiCookie      = "walgate_session"
	uiSessionTTL  = 12 * time.Hour
)

var uiFuncs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"unix": func(t time.Time) int64 { return t.Unix() },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return roughAge(time.Since(t))
	},
	"mib":        func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) },
	"lower":      func(s health.Status) string { return string(s) },
	"pathEscape": func(s string) string { return strings.ReplaceAll(s, "/", "%2F") },
	"add":        func(a, b int) int { return a + b },
}

func roughAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1fh", d.Hours())
	}
	return fmt.Sprintf("%.0fd", d.Hours()/24)
}

var uiTemplates = template.Must(template.New("").Funcs(uiFuncs).ParseFS(uiFiles, "ui/*.html"))

// uiKey signs session cookies; a new one at every start.
type uiKey [32]byte

func newUIKey() uiKey {
	var k uiKey
	rand.Read(k[:])
	return k
}

func (k uiKey) sign(msg string) string {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session makes a cookie value for a token ID.
func (k uiKey) session(tokenID string, now time.Time) string {
	msg := strconv.FormatInt(now.Add(uiSessionTTL).Unix(), 10) + "." + tokenID
	return msg + "." + k.sign(msg)
}

// verify returns the token ID of a valid, unexpired cookie value.
func (k uiKey) verify(v string, now time.Time) (string, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", false
	}
	msg, sig := v[:i], v[i+1:]
	if !hmac.Equal([]byte(sig), []byte(k.sign(msg))) {
		return "", false
	}
	exp, id, ok := strings.Cut(msg, ".")
	t, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || now.Unix() > t {
		return "", false
	}
	return id, true
}

func (s *Server) uiRoutes() {
	s.app.Get("/ui/login", s.uiLoginPage)
	s.app.Post("/ui/login", s.uiLogin)
	s.app.Post("/ui/logout", s.uiLogout)
	s.app.Get("/ui/", s.uiFleet)
	s.app.Get("/ui/clusters/:cluster", s.uiCluster)
	s.app.Get("/ui/audit", s.uiAudit)
	s.app.Get("/ui/lifecycle", s.uiLifecycle)
}

// uiAuth lets a request through with an admin-scope Bearer token or a
// valid session cookie whose token is still there and unexpired, and
// returns that token. Otherwise a browser is sent to the login page and
// anything else gets 401. Which pages the token opens is the caller's
// check: its own cluster's (boundTo), or the fleet's (fleetWide).
func (s *Server) uiAuth(c *fiber.Ctx) (index.Token, bool, error) {
	if strings.HasPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ") {
		t, err := s.authenticate(c)
		if err != nil {
			return t, false, err
		}
		if !t.Has(index.ScopeAdmin) {
			return t, false, apiErr(protocol.CodeForbidden, "token %s lacks the admin scope the dashboard needs", t.ID)
		}
		return t, true, nil
	}
	if id, ok := s.uiKey.verify(c.Cookies(uiCookie), time.Now()); ok {
		tokens, err := s.catalog.ListTokens()
		if err != nil {
			return index.Token{}, false, &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
		}
		for _, t := range tokens {
			if t.ID == id && t.Has(index.ScopeAdmin) && t.Valid(time.Now()) == nil {
				c.Locals(localToken, t.ID)
				return t, true, nil
			}
		}
	}
	if strings.Contains(c.Get(fiber.HeaderAccept), "text/html") {
		return index.Token{}, false, c.Redirect("/ui/login", fiber.StatusSeeOther)
	}
	return index.Token{}, false, apiErr(protocol.CodeUnauthorized, "log in at /ui/login with an admin token, or send 'Authorization: Bearer <admin token>'")
}

func (s *Server) render(c *fiber.Ctx, name string, data any) error {
	var buf bytes.Buffer
	if err := uiTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		return &apiError{Code: protocol.CodeInternal, Message: "rendering the page failed", Err: err}
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

type uiLoginData struct{ Error string }

func (s *Server) uiLoginPage(c *fiber.Ctx) error {
	return s.render(c, "login.html", uiLoginData{})
}

func (s *Server) uiLogin(c *fiber.Ctx) error {
	if err := s.sameOrigin(c); err != nil {
		s.log.Warn("dashboard login from another origin refused", "origin", c.Get(fiber.HeaderOrigin),
			"sec_fetch_site", c.Get("Sec-Fetch-Site"), "host", c.Get(fiber.HeaderHost), "remote", c.IP(), "err", err)
		c.Status(fiber.StatusForbidden)
		return s.render(c, "login.html", uiLoginData{Error: "Login refused: the form was sent from another site. Open the dashboard at this gateway's own address and log in there."})
	}
	tok := strings.TrimSpace(c.FormValue("token"))
	fail := func(msg string) error {
		c.Status(fiber.StatusUnauthorized)
		return s.render(c, "login.html", uiLoginData{Error: msg})
	}
	if tok == "" || len(tok) > 256 {
		return fail("Paste an admin token (walgate token add --cluster NAME --scope admin).")
	}
	t, err := s.catalog.LookupToken(protocol.TokenHash(tok))
	switch {
	case errors.Is(err, index.ErrNotFound):
		s.auditAct(c, "ui.login", "", fmt.Errorf("unknown or revoked token %s", protocol.TokenID(tok)))
		return fail("Unknown or revoked token.")
	case err != nil:
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	c.Locals(localToken, t.ID)
	if err := t.Valid(time.Now()); err != nil {
		s.auditAct(c, "ui.login", t.Target(), err)
		return fail("This token has " + strings.TrimPrefix(err.Error(), "token "+t.ID+" ") + ": issue a new one (walgate token add, or walgate token rotate before expiry).")
	}
	if !t.Has(index.ScopeAdmin) {
		s.auditAct(c, "ui.login", t.Target(), errors.New("no admin scope"))
		return fail("This token has no admin scope: database hosts' tokens cannot open the dashboard.")
	}
	s.auditAct(c, "ui.login", t.Target(), nil)
	c.Cookie(&fiber.Cookie{Name: uiCookie, Value: s.uiKey.session(t.ID, time.Now()), Path: "/ui/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: s.cfg.TLS.Enabled(), Expires: time.Now().Add(uiSessionTTL)})
	if !t.AllClusters {
		return c.Redirect("/ui/clusters/"+t.Cluster, fiber.StatusSeeOther)
	}
	return c.Redirect("/ui/", fiber.StatusSeeOther)
}

// sameOrigin refuses a request a browser sent from another origin (login
// CSRF): by Sec-Fetch-Site when the browser sends it, else by the Origin
// header against the request's Host (net/http's CrossOriginProtection),
// and an Origin whose scheme is not the gateway's. Requests without
// either header come from tools, not from a page, and pass.
func (s *Server) sameOrigin(c *fiber.Ctx) error {
	req := &http.Request{Method: c.Method(), Host: c.Get(fiber.HeaderHost), Header: http.Header{}}
	for _, h := range []string{"Sec-Fetch-Site", fiber.HeaderOrigin} {
		if v := c.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if err := http.NewCrossOriginProtection().Check(req); err != nil {
		return err
	}
	if o := c.Get(fiber.HeaderOrigin); o != "" && c.Get("Sec-Fetch-Site") == "" {
		scheme := "http"
		if s.cfg.TLS.Enabled() {
			scheme = "https"
		}
		if u, err := url.Parse(o); err != nil || u.Scheme != scheme {
			return fmt.Errorf("origin %q is not %s://%s", o, scheme, req.Host)
		}
	}
	return nil
}

func (s *Server) uiLogout(c *fiber.Ctx) error {
	c.Cookie(&fiber.Cookie{Name: uiCookie, Value: "", Path: "/ui/", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Expires: time.Unix(0, 0)})
	return c.Redirect("/ui/login", fiber.StatusSeeOther)
}

type uiFleetData struct {
	Now     string
	Rows    []uiRow
	Reasons []uiReasons
	Counts  map[string]int // by status
	Total   int
	Version string
	// The fleet's gateways (heartbeat.go); GatewaysErr when they could
	// not be read.
	Gateways      []uiGateway
	GatewaysAlive int
	GatewaysErr   string
}

// uiGateway is one row of the fleet page's gateways table.
type uiGateway struct {
	ID, Host, Address, Version string
	State, StateClass          string
	LastSeen, LastSeenTitle    string
	Ready                      bool
}

// gatewayRows formats the gateways for the fleet page and counts the
// alive ones.
func gatewayRows(list []GatewayStatus) ([]uiGateway, int) {
	rows := make([]uiGateway, 0, len(list))
	alive := 0
	for _, g := range list {
		r := uiGateway{ID: g.ID, Host: g.Host, Address: g.Address, Version: g.Version, State: g.State, StateClass: "st-ok",
			LastSeen: roughAge(time.Duration(g.LastSeenAgo*float64(time.Second))) + " ago", LastSeenTitle: g.LastSeen.UTC().Format(time.RFC3339),
			Ready: g.Ready}
		switch g.State {
		case fleet.GatewayAlive:
			alive++
		case fleet.GatewayDown:
			r.StateClass = "st-warning"
		default:
			r.StateClass = "st-stopped"
		}
		rows = append(rows, r)
	}
	return rows, alive
}

// uiRow is one fleet-table row, formatted in Go: the table has a row per
// cluster, so the template only places strings. V fields are sort keys.
type uiRow struct {
	Cluster, Status, StatusV     string
	LastWAL, AgeV, Age, AgeTitle string
	Stalled                      bool
	MissingV, Missing            string
	MissingBad                   bool
	BackupV, Backup, BackupName  string
	NoBackup                     bool
	Chain, StoredV, Stored, Repl string
	DrillV, Drill, DrillClass    string
}

type uiReasons struct {
	Cluster string
	Reasons []string
}

func fleetRow(c ClusterStatus, now time.Time) uiRow {
	r := uiRow{Cluster: c.Cluster, Status: string(c.Status), StatusV: strconv.Itoa(statusValue(c.Status)),
		LastWAL: c.LastSegment, AgeV: strconv.FormatInt(c.LastPush.Unix(), 10), Age: "-", Stalled: c.Stalled,
		MissingV: strconv.FormatUint(c.LostSegments*1000000+c.Delayed, 10), Missing: "none",
		BackupV: strconv.FormatInt(c.LastBackupAt.Unix(), 10), BackupName: c.LastBackup, Backup: "none", NoBackup: c.LastBackup == "",
		Chain: strconv.Itoa(c.ChainLength), StoredV: strconv.FormatInt(c.StoredBytes, 10), Stored: fmt.Sprintf("%.1f MiB", float64(c.StoredBytes)/(1<<20)),
		Repl: "in sync", DrillV: "0", Drill: "never", DrillClass: "muted"}
	if !c.LastPush.IsZero() {
		r.Age, r.AgeTitle = roughAge(now.Sub(c.LastPush)), c.LastPush.UTC().Format(time.RFC3339)
	}
	switch {
	case c.LostSegments > 0:
		r.Missing, r.MissingBad = fmt.Sprintf("%d lost", c.LostSegments), true
	case c.Delayed > 0:
		r.Missing = fmt.Sprintf("%d delayed", c.Delayed)
	}
	if c.LastBackup != "" {
		r.Backup = roughAge(now.Sub(c.LastBackupAt)) + " ago"
	}
	var pending []string
	for _, b := range c.Backends {
		if b.PendingCount > 0 {
			pending = append(pending, fmt.Sprintf("%s: %d pending", b.Name, b.PendingCount))
		}
	}
	if len(pending) > 0 {
		r.Repl = strings.Join(pending, ", ")
	}
	if d := c.LastDrill; d != nil {
		r.DrillV = strconv.FormatInt(d.Received.Unix(), 10)
		if d.Passed {
			r.Drill, r.DrillClass = "passed "+roughAge(now.Sub(d.Received))+" ago", "good"
		} else {
			r.Drill, r.DrillClass = "failed "+roughAge(now.Sub(d.Received))+" ago", "bad"
		}
	}
	return r
}

func (s *Server) uiFleet(c *fiber.Ctx) error {
	t, ok, err := s.uiAuth(c)
	if !ok {
		return err
	}
	if err := fleetWide(t, "the fleet page"); err != nil {
		return err
	}
	now := time.Now()
	st, err := s.FleetStatus(now)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	d := uiFleetData{Now: now.UTC().Format("2006-01-02 15:04:05 UTC"), Counts: map[string]int{}, Total: len(st), Version: Version}
	for _, cs := range st {
		d.Counts[string(cs.Status)]++
		d.Rows = append(d.Rows, fleetRow(cs, now))
		if len(cs.Reasons) > 0 {
			d.Reasons = append(d.Reasons, uiReasons{Cluster: cs.Cluster, Reasons: cs.Reasons})
		}
	}
	if gws, err := s.Gateways(); err != nil {
		d.GatewaysErr = err.Error()
	} else {
		d.Gateways, d.GatewaysAlive = gatewayRows(gws)
	}
	return s.render(c, "fleet.html", d)
}

// uiChart is the cluster page's timeline: backups, drills and the
// recoverable window on one time axis, as SVG coordinates.
type uiChart struct {
	Width, Height     int
	WindowX, WindowW  float64
	HasWindow         bool
	Backups           []uiBar
	Drills            []uiDot
	Ticks             []uiTick
	NowX              float64
	From, To          time.Time
	WindowFrom, WinTo time.Time
}

type uiBar struct {
	X, W  float64
	Full  bool
	Title string
}

type uiDot struct {
	X      float64
	Passed bool
	Title  string
}

type uiTick struct {
	X      float64
	Label  string
	Anchor string // SVG text-anchor
}

// uiRanges are the timeline's zoom levels, by their query value; "all"
// (the default) spans the whole recoverable window and every backup.
var uiRanges = []struct {
	Key, Label string
	Span       time.Duration
}{{"24h", "24 h", 24 * time.Hour}, {"7d", "7 d", 7 * 24 * time.Hour}, {"30d", "30 d", 30 * 24 * time.Hour}, {"all", "whole window", 0}}

// uiRangeSpan is the span of a range key, and the key itself ("all" for
// anything unknown).
func uiRangeSpan(key string) (string, time.Duration) {
	for _, r := range uiRanges {
		if r.Key == key {
			return r.Key, r.Span
		}
	}
	return "all", 0
}

// buildChart lays out the timeline over span before now, or (span 0) from
// the oldest backup or window start.
func buildChart(st ClusterStatus, backups []index.Backup, drills []index.DrillRecord, now time.Time, span time.Duration) uiChart {
	ch := uiChart{Width: 960, Height: 150, To: now}
	from := now.Add(-span)
	if span == 0 {
		from = now.Add(-24 * time.Hour)
		for _, b := range backups {
			if !b.Info.StartTime.IsZero() && b.Info.StartTime.Before(from) {
				from = b.Info.StartTime
			}
		}
		if !st.WindowStart.IsZero() && st.WindowStart.Before(from) {
			from = st.WindowStart
		}
		from = from.Add(-now.Sub(from) / 50)
	}
	ch.From = from
	const left, right = 10.0, 950.0
	x := func(t time.Time) float64 {
		return min(max(left+(right-left)*float64(t.Sub(from))/float64(now.Sub(from)), left), right)
	}
	if !st.WindowStart.IsZero() && st.WindowEnd.After(from) {
		ch.HasWindow = true
		ch.WindowX = x(st.WindowStart)
		ch.WindowW = max(x(st.WindowEnd)-ch.WindowX, 2)
		ch.WindowFrom, ch.WinTo = st.WindowStart, st.WindowEnd
	}
	for _, b := range backups {
		if b.State != index.BackupCommitted || b.Info.FinishTime.Before(from) {
			continue
		}
		bx := x(b.Info.StartTime)
		kind := "full"
		if b.Info.Kind == "delta" {
			kind = fmt.Sprintf("delta %d of %s", b.Info.DeltaCount, b.Info.DeltaFullName)
		}
		ch.Backups = append(ch.Backups, uiBar{X: bx, W: max(x(b.Info.FinishTime)-bx, 3), Full: b.Info.Kind != "delta",
			Title: fmt.Sprintf("%s (%s), %s .. %s, %.1f MiB", b.Name, kind, b.Info.StartTime.UTC().Format(time.RFC3339), b.Info.FinishTime.UTC().Format(time.RFC3339), float64(b.StoredSize())/(1<<20))})
	}
	for _, d := range drills {
		if d.Received.Before(from) {
			continue
		}
		verdict := "passed"
		if !d.Passed {
			verdict = "FAILED"
		}
		ch.Drills = append(ch.Drills, uiDot{X: x(d.Received), Passed: d.Passed, Title: "drill " + verdict + " " + d.Received.UTC().Format(time.RFC3339)})
	}
	// Six ticks; labels say the hour within two days, else the day.
	layout := "Mon 01-02"
	if now.Sub(from) <= 48*time.Hour {
		layout = "01-02 15:04"
	}
	const ticks = 6
	for i := 0; i <= ticks; i++ {
		t := from.Add(time.Duration(i) * now.Sub(from) / ticks)
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case ticks:
			anchor = "end"
		}
		ch.Ticks = append(ch.Ticks, uiTick{X: x(t), Label: t.UTC().Format(layout), Anchor: anchor})
	}
	ch.NowX = x(now)
	return ch
}

type uiClusterData struct {
	Now     time.Time
	S       ClusterStatus
	Backups []protocol.BackupSummary
	Drills  []uiDrill
	Chart   uiChart
	Trend   uiTrend
	// Range is the timeline's zoom (a uiRanges key); Ranges offers them all.
	Range  string
	Ranges []uiRangeLink
	// Failed is the newest drill when it failed: the dashboard says why
	// at the top.
	Failed *uiDrill
}

type uiRangeLink struct {
	Key, Label string
	Current    bool
}

type uiDrill struct {
	Received time.Time
	Passed   bool
	R        protocol.DrillReport
}

func (s *Server) uiCluster(c *fiber.Ctx) error {
	t, ok, err := s.uiAuth(c)
	if !ok {
		return err
	}
	cluster := c.Params("cluster")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return apiErr(protocol.CodeInvalidName, "%v", err)
	}
	// Before the existence check: a token of another cluster learns
	// nothing about which clusters exist.
	if err := boundTo(t, cluster); err != nil {
		return err
	}
	clusters, err := s.catalog.Clusters()
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	known := false
	for _, k := range clusters {
		known = known || k.Name == cluster
	}
	if !known {
		return apiErr(protocol.CodeNotFound, "no cluster %s in the catalog", cluster)
	}
	now := time.Now()
	st, err := s.ClusterHealth(cluster, now)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	backups, err := s.catalog.Backups(cluster, index.BackupCommitted)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	drills, err := s.catalog.Drills(cluster, uiDrillsShown)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	if err := s.metrics.trends.flush(now); err != nil {
		s.log.Warn("trends: writing the hourly counts", "err", err)
	}
	trends, err := s.catalog.Trends(cluster, now.Add(-index.TrendHours*time.Hour))
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	rng, span := uiRangeSpan(c.Query("range"))
	d := uiClusterData{Now: now, S: st, Chart: buildChart(st, backups, drills, now, span), Trend: buildTrend(trends, now), Range: rng}
	for _, r := range uiRanges {
		d.Ranges = append(d.Ranges, uiRangeLink{Key: r.Key, Label: r.Label, Current: r.Key == rng})
	}
	for i := len(backups) - 1; i >= 0; i-- {
		d.Backups = append(d.Backups, fleet.BackupSummary(backups[i]))
	}
	for i := len(drills) - 1; i >= 0; i-- {
		ud := uiDrill{Received: drills[i].Received, Passed: drills[i].Passed}
		_ = json.Unmarshal(drills[i].Report, &ud.R) // a report that does not decode shows as empty
		d.Drills = append(d.Drills, ud)
	}
	sort.SliceStable(d.Drills, func(i, j int) bool { return d.Drills[i].Received.After(d.Drills[j].Received) })
	if len(d.Drills) > 0 && !d.Drills[0].Passed {
		d.Failed = &d.Drills[0]
	}
	return s.render(c, "cluster.html", d)
}
