package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SetStandby turns a cluster made from a base backup (with NoStart, not
// yet started) into a standby: standby.signal replaces recovery.signal, so
// that PostgreSQL keeps asking restore_command for WAL instead of ending
// recovery when a file is not there.
func (c *Cluster) SetStandby() error {
	if len(c.recovery) == 0 {
		return fmt.Errorf("pgtest: SetStandby on cluster %s, which was not made from a base backup", c.Dir)
	}
	if err := os.Remove(filepath.Join(c.DataDir, "recovery.signal")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("pgtest: %w", err)
	}
	return c.writeServerFile(filepath.Join(c.DataDir, "standby.signal"), "", 0o600)
}

// WaitStopped waits until the server is no longer running (it stopped by
// itself, after a FATAL error during recovery, say) and returns the log
// it wrote since its last start. It fails if the server is still running
// when ctx ends.
func (c *Cluster) WaitStopped(ctx context.Context) (string, error) {
	for c.Running() {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("pgtest: cluster %s still running: %w%s", c.Dir, ctx.Err(), section("server log", c.LogTail(30)))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return c.logSince(c.startLog), nil
}

// LogContains reports whether the server log written since the last start
// holds every one of want.
func (c *Cluster) LogContains(want ...string) bool {
	log := c.logSince(c.startLog)
	for _, w := range want {
		if !strings.Contains(log, w) {
			return false
		}
	}
	return true
}
