package gateway

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// authenticate finds the request's token in the catalog and refuses it
// once expired (401, naming the token and when it expired). It never says
// whether a token exists for another cluster beyond what the token itself
// names.
func (s *Server) authenticate(c *fiber.Ctx) (index.Token, error) {
	h := c.Get(fiber.HeaderAuthorization)
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return index.Token{}, apiErr(protocol.CodeUnauthorized, "no token: send 'Authorization: Bearer <token>' (walgate-client reads WALGATE_TOKEN)")
	}
	if len(tok) > 256 {
		return index.Token{}, apiErr(protocol.CodeUnauthorized, "token too long")
	}
	return s.lookupToken(c, tok)
}

// lookupToken finds the secret tok in the catalog, usable now.
func (s *Server) lookupToken(c *fiber.Ctx, tok string) (index.Token, error) {
	t, err := s.catalog.LookupToken(protocol.TokenHash(tok))
	if errors.Is(err, index.ErrNotFound) {
		return index.Token{}, apiErr(protocol.CodeUnauthorized, "unknown or revoked token %s", protocol.TokenID(tok))
	}
	if err != nil {
		return index.Token{}, &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	c.Locals(localToken, t.ID)
	if err := tokenUsable(t, time.Now()); err != nil {
		return index.Token{}, err
	}
	return t, nil
}

// tokenUsable refuses an expired token with 401 and what to do.
func tokenUsable(t index.Token, now time.Time) error {
	if err := t.Valid(now); err != nil {
		hint := "issue a new one with 'walgate token add' (or rotate tokens before they expire: 'walgate token rotate ID')"
		if t.Successor != "" {
			hint = "it was rotated: use its successor " + t.Successor
		}
		return apiErr(protocol.CodeUnauthorized, "%v; %s", err, hint)
	}
	return nil
}

// authorize checks that the token may act with scope on cluster.
func (s *Server) authorize(c *fiber.Ctx, cluster string, scope index.Scope) (index.Token, error) {
	t, err := s.authenticate(c)
	if err != nil {
		return t, err
	}
	if err := boundTo(t, cluster); err != nil {
		return t, err
	}
	if !t.Has(scope) {
		return t, apiErr(protocol.CodeForbidden, "token %s lacks the %s scope (it has %v); create one with 'walgate token add --scope %s'", t.ID, scope, t.Scopes, scope)
	}
	return t, nil
}

// boundTo refuses (403) a token that may not act on cluster: one bound to
// another cluster, whatever its scopes. Only a fleet-wide admin token acts
// on every cluster.
func boundTo(t index.Token, cluster string) error {
	if !t.Covers(cluster) {
		return apiErr(protocol.CodeForbidden, "token %s is bound to cluster %q, not %q", t.ID, t.Cluster, cluster)
	}
	return nil
}

// fleetWide refuses (403) a token that is not a fleet-wide admin token.
func fleetWide(t index.Token, what string) error {
	if !t.AllClusters || !t.Has(index.ScopeAdmin) {
		return apiErr(protocol.CodeForbidden, "token %s is bound to cluster %q: %s needs a fleet-wide admin token ('walgate token add --all-clusters --scope admin')", t.ID, t.Cluster, what)
	}
	return nil
}
