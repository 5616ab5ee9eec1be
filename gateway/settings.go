package gateway

import (
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/fleet"
)

// The gateway's configuration lives in gateway/config; these names let a
// program that embeds a gateway (tests, the demo) say gateway.Config.
type (
	Config    = config.Config
	Limits    = config.Limits
	TLSConfig = config.TLSConfig
)

// ClusterStatus is one cluster's health as status, the dashboard and
// wal-verify show it (gateway/fleet).
type ClusterStatus = fleet.ClusterStatus
