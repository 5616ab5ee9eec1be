package gateway

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// authenticate finds the request's token in the catalog. It never says
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
	t, err := s.catalog.LookupToken(protocol.TokenHash(tok))
	if errors.Is(err, index.ErrNotFound) {
		return index.Token{}, apiErr(protocol.CodeUnauthorized, "unknown or revoked token %s", protocol.TokenID(tok))
	}
	if err != nil {
		return index.Token{}, &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	c.Locals(localToken, t.ID)
	return t, nil
}

// authorize checks that the token may act with scope on cluster.
func (s *Server) authorize(c *fiber.Ctx, cluster string, scope index.Scope) (index.Token, error) {
	t, err := s.authenticate(c)
	if err != nil {
		return t, err
	}
	if t.Cluster != cluster {
		return t, apiErr(protocol.CodeForbidden, "token %s is bound to cluster %q, not %q", t.ID, t.Cluster, cluster)
	}
	if !t.Has(scope) {
		return t, apiErr(protocol.CodeForbidden, "token %s lacks the %s scope (it has %v); create one with 'walgate token add --scope %s'", t.ID, scope, t.Scopes, scope)
	}
	return t, nil
}
