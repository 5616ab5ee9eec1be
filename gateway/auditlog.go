package gateway

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/audit"
	"github.com/walgate/walgate/index"
)

// openAudit opens the audit log in the data directory and warns about
// admin tokens that no longer reach the whole fleet.
func (s *Server) openAudit() (*audit.Log, error) {
	l, err := audit.Open(s.cfg.Data, audit.Options{MaxBytes: s.cfg.Audit.MaxBytes, Keep: s.cfg.Audit.Keep})
	if err != nil {
		return nil, err
	}
	s.warnBoundAdmins()
	return l, nil
}

// warnBoundAdmins logs, at start, the admin tokens bound to one cluster
// when no fleet-wide admin token exists: a catalog from before
// fleet-wide tokens, whose admin tokens used to open every cluster's
// pages and now open their own cluster's only.
func (s *Server) warnBoundAdmins() {
	list, err := s.catalog.ListTokens()
	if err != nil {
		return // Open reports an unreadable catalog soon enough
	}
	var bound []string
	for _, t := range list {
		if t.AllClusters && t.Has(index.ScopeAdmin) && t.Valid(time.Now()) == nil {
			return
		}
		if t.Has(index.ScopeAdmin) {
			bound = append(bound, t.ID+" ("+t.Cluster+")")
		}
	}
	if len(bound) > 0 {
		s.log.Warn("admin tokens are bound to their cluster and no fleet-wide admin token exists: the fleet pages and the audit page need one; issue it with 'walgate token add --all-clusters --scope admin'",
			"bound_admin_tokens", strings.Join(bound, ", "))
	}
}

// auditAct records an administrative act done over HTTP: the token ID
// (never its secret) and the client's address. A failure to record is
// logged; the act itself stands.
func (s *Server) auditAct(c *fiber.Ctx, action, target string, err error) {
	tok, _ := c.Locals(localToken).(string)
	e := audit.Entry{Token: tok, Client: c.IP(), Action: action, Target: target, Result: audit.Result(err)}
	if aerr := s.audit.Record(e); aerr != nil {
		s.log.Error("audit log", "action", action, "target", target, "err", aerr)
	}
}

// tokenCollector reports token expiry at scrape time.
type tokenCollector struct{ s *Server }

var (
	descTokenExpiry = prometheus.NewDesc("walgate_token_expiry_timestamp_seconds",
		"When a token with an expiry stops working (Unix time); cluster is empty for a fleet-wide token.", []string{"id", "cluster"}, nil)
	descTokensExpiring = prometheus.NewDesc("walgate_tokens_expiring",
		"Tokens that expire within 14 days and have no successor yet (rotate them: walgate token rotate ID).", nil, nil)
)

func (tokenCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTokenExpiry
	ch <- descTokensExpiring
}

func (tc tokenCollector) Collect(ch chan<- prometheus.Metric) {
	list, err := tc.s.catalog.ListTokens()
	if err != nil {
		tc.s.log.Error("metrics: tokens", "err", err)
		return
	}
	for _, t := range list {
		if !t.Expires.IsZero() {
			ch <- prometheus.MustNewConstMetric(descTokenExpiry, prometheus.GaugeValue, float64(t.Expires.Unix()), t.ID, t.Cluster)
		}
	}
	n := len(admin.ExpiringTokens(list, time.Now(), admin.ExpiryWarning))
	ch <- prometheus.MustNewConstMetric(descTokensExpiring, prometheus.GaugeValue, float64(n))
}

// uiAuditLimit bounds the audit page.
const uiAuditLimit = 200

type uiAuditData struct {
	Entries []audit.Entry
	Limit   int
	Error   string
}

// uiAudit is GET /ui/audit: the newest administrative acts, for a
// fleet-wide admin token.
func (s *Server) uiAudit(c *fiber.Ctx) error {
	t, ok, err := s.uiAuth(c)
	if !ok {
		return err
	}
	if err := fleetWide(t, "the audit log"); err != nil {
		return err
	}
	d := uiAuditData{Limit: uiAuditLimit}
	if d.Entries, err = audit.Tail(s.cfg.Data, uiAuditLimit); err != nil {
		d.Error = err.Error()
	}
	return s.render(c, "audit.html", d)
}
