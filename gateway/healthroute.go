package gateway

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// getHealthz is GET /healthz, for load balancers and process supervisors:
// the process is alive and serving HTTP. No authentication, no I/O.
func (s *Server) getHealthz(c *fiber.Ctx) error { return c.SendString("ok\n") }

// Readiness is the body of GET /readyz.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// Readiness judges whether this gateway can acknowledge pushes now: the
// catalog answers a read (a lookup that finds nothing) and every group's
// acknowledgement policy has enough backends that are not failing (the
// health the store layer keeps from real traffic; no write is made here).
func (s *Server) Readiness() Readiness {
	var r Readiness
	if _, err := s.catalog.LookupToken([32]byte{}); err != nil && !errors.Is(err, index.ErrNotFound) {
		r.Reasons = append(r.Reasons, "catalog: "+err.Error())
	}
	r.Reasons = append(r.Reasons, s.stores.Unready()...)
	r.Ready = len(r.Reasons) == 0
	return r
}

// getReadyz is GET /readyz, for load balancers: 200 when the gateway can
// acknowledge pushes, else 503 with the reasons as JSON. No
// authentication; the reasons name backends and groups, never clusters
// or keys.
func (s *Server) getReadyz(c *fiber.Ctx) error {
	r := s.Readiness()
	if !r.Ready {
		c.Status(fiber.StatusServiceUnavailable)
	}
	c.Set("Cache-Control", "no-store")
	return c.JSON(r)
}

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
