package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
)

// getHealth is GET /v1/clusters/{cluster}/health: the cluster's health as
// wal-verify shows it (a push or fetch token of the cluster).
func (s *Server) getHealth(c *fiber.Ctx) error {
	cluster := c.Params("cluster")
	if err := protocol.ValidateCluster(cluster); err != nil {
		return apiErr(protocol.CodeInvalidName, "%v", err)
	}
	t, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := boundTo(t, cluster); err != nil {
		return err
	}
	st, err := s.ClusterHealth(cluster, time.Now())
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	out, err := s.withDamage(cluster, st)
	if err != nil {
		return &apiError{Code: protocol.CodeUnavailable, Message: "catalog unavailable", Err: err}
	}
	return c.JSON(out)
}
