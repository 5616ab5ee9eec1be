package gateway

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/index"
)

// GatewayStatus is one gateway of the fleet as the views show it.
type GatewayStatus = fleet.GatewayStatus

// Gateways is the fleet's gateways as this gateway's catalog knows them.
func (s *Server) Gateways() ([]GatewayStatus, error) { return fleet.Gateways(s.catalog) }

// advertisedAddress is where clients reach a gateway listening on addr:
// a wildcard host (0.0.0.0, ::) is replaced by the host name.
func advertisedAddress(addr net.Addr, hostname string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && hostname != "" {
		host = hostname
	}
	return net.JoinHostPort(host, port)
}

// heartbeat is this process's row in the catalog's gateways table.
type heartbeat struct {
	rec    index.GatewayRecord
	failed bool               // the last write failed (logged once per outage)
	stop   context.CancelFunc // ends the loop (nil before it runs)
	done   chan struct{}
}

// registerGateway writes the first heartbeat of the gateway listening on
// addr, before it serves: the fleet sees it from its first request on. A
// catalog that does not answer is logged; the loop keeps trying.
func (s *Server) registerGateway(addr net.Addr) {
	host, _ := os.Hostname()
	b := &heartbeat{rec: index.GatewayRecord{ID: s.instance, Host: host, Address: advertisedAddress(addr, host),
		Version: Version, PID: os.Getpid(), Started: s.started.UTC()}}
	s.beatMu.Lock()
	s.beat = b
	s.beatMu.Unlock()
	s.beatOnce(b, false)
}

// startHeartbeat renews the row every fleet.HeartbeatInterval until
// stopHeartbeat (registering the gateway first if Listen did not).
func (s *Server) startHeartbeat(ln net.Listener) {
	s.beatMu.Lock()
	b := s.beat
	s.beatMu.Unlock()
	if b == nil {
		s.registerGateway(ln.Addr())
		s.beatMu.Lock()
		b = s.beat
		s.beatMu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.beatMu.Lock()
	b.stop, b.done = cancel, done
	s.beatMu.Unlock()
	go func() {
		defer close(done)
		runEvery(ctx, fleet.HeartbeatInterval, func(time.Time) { s.beatOnce(b, false) })
	}()
}

// beatOnce writes the heartbeat row (stopped: the last one, at a clean
// shutdown).
func (s *Server) beatOnce(b *heartbeat, stopped bool) {
	rec := b.rec
	rec.Stopped = stopped
	rec.Ready = !stopped && s.Readiness().Ready
	err := s.catalog.Heartbeat(rec, fleet.GatewayAliveWithin, fleet.GatewayForgetAfter)
	switch {
	case err != nil && !b.failed:
		s.log.Warn("catalog unavailable: the heartbeat was not written; other gateways will show this one down", "err", err)
	case err == nil && b.failed:
		s.log.Info("heartbeat written again")
	}
	b.failed = err != nil
}

// stopHeartbeat ends the heartbeat loop and records the clean stop.
func (s *Server) stopHeartbeat() {
	s.beatMu.Lock()
	b := s.beat
	s.beat = nil
	s.beatMu.Unlock()
	if b == nil {
		return
	}
	if b.stop != nil {
		b.stop()
		<-b.done
	}
	s.beatOnce(b, true)
}
