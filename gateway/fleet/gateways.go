package fleet

import (
	"time"

	"github.com/walgate/walgate/index"
)

// The gateways' heartbeat: every gateway writes its row to the catalog
// every HeartbeatInterval; one is alive while its last heartbeat is
// within GatewayAliveWithin. A clean shutdown writes a last row marked
// stopped; a gateway that dies (killed, cut off from the catalog) leaves
// its row to age, and is shown down until a successor on the same host
// and address replaces it or GatewayForgetAfter prunes it.
const (
	HeartbeatInterval  = 5 * time.Second
	GatewayAliveWithin = 3 * HeartbeatInterval
	GatewayForgetAfter = 7 * 24 * time.Hour
)

// Gateway states as walgate status, /metrics and the dashboard show them.
const (
	GatewayAlive   = "alive"
	GatewayDown    = "down"    // its heartbeats stopped without a clean shutdown
	GatewayStopped = "stopped" // shut down cleanly
)

// GatewayStatus is one gateway of the fleet as every view shows it: its
// heartbeat row and the verdict on it.
type GatewayStatus struct {
	index.GatewayRecord
	// LastSeenAgo is how long before this status LastSeen was, in
	// seconds (by the catalog's clock).
	LastSeenAgo float64 `json:"last_seen_seconds_ago"`
	// State is alive, down or stopped; Alive is State == alive.
	State string `json:"state"`
	Alive bool   `json:"alive"`
}

// Gateways reads every registered gateway of the catalog and judges it.
func Gateways(cat index.Interface) ([]GatewayStatus, error) {
	recs, err := cat.Gateways()
	if err != nil {
		return nil, err
	}
	out := make([]GatewayStatus, 0, len(recs))
	for _, r := range recs {
		r.Started, r.LastSeen = r.Started.UTC(), r.LastSeen.UTC()
		g := GatewayStatus{GatewayRecord: r, LastSeenAgo: r.Since.Round(time.Millisecond).Seconds()}
		switch {
		case r.Stopped:
			g.State = GatewayStopped
		case r.Since <= GatewayAliveWithin:
			g.State, g.Alive = GatewayAlive, true
		default:
			g.State = GatewayDown
		}
		out = append(out, g)
	}
	return out, nil
}
