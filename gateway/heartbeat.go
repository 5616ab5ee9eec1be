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
	failed bool // the last write failed (logged once per outage)
	stop   context.CancelFunc
	done   chan struct{}
}

// startHeartbeat registers the gateway serving on ln and renews its row
// every fleet.HeartbeatInterval until stopHeartbeat.
func (s *Server) startHeartbeat(ln net.Listener) {
	host, _ := os.Hostname()
	ctx, cancel := context.WithCancel(context.Background())
	b := &heartbeat{rec: index.GatewayRecord{ID: s.instance, Host: host, Address: advertisedAddress(ln.Addr(), host),
		Version: Version, PID: os.Getpid(), Started: s.started.UTC()}, stop: cancel, done: make(chan struct{})}
	s.beatMu.Lock()
	s.beat = b
	s.beatMu.Unlock()
	go func() {
		defer close(b.done)
		s.beatOnce(b, false)
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
	b.stop()
	<-b.done
	s.beatOnce(b, true)
}
