package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
)

// GatewayStateFile is the file in pg_wal/walgate that names the gateway
// of WALGATE_URL that last answered wal-push or wal-fetch, so that the
// next run, a new process, tries it first instead of waiting on a dead
// first entry of the list each time.
const GatewayStateFile = "gateway"

// UseGatewayState makes the client start with the gateway named in
// walDir/walgate/gateway, if it is still in the list, and update that file
// when another gateway takes over. It is only a preference: a missing,
// unreadable or stale file means starting with the first gateway. With a
// single gateway it does nothing.
func (c *Client) UseGatewayState(walDir string) {
	if len(c.cfg.URLs) < 2 {
		return
	}
	path := filepath.Join(walDir, StateDir, GatewayStateFile)
	if data, err := os.ReadFile(path); err == nil {
		last := string(bytes.TrimSpace(data))
		for g, u := range c.cfg.URLs {
			if u.String() == last {
				c.preferred.Store(int32(g))
			}
		}
	}
	c.statePath = path
}

// saveGatewayState records url as the gateway to try first. Failing to
// record it costs only a slower start next time, so errors are dropped.
func saveGatewayState(path, url string) {
	dir := filepath.Dir(path)
	// pg_wal/walgate, never pg_wal itself (see makeStateDir).
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return
	}
	_ = writeAtomic(dir, filepath.Base(path), []byte(url+"\n"))
}
