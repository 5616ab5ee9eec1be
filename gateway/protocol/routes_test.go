package protocol

import (
	"strings"
	"testing"
)

// fill puts values into a route pattern's parameters, in order.
func fill(pattern string, values ...string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || p == "*" {
			parts[i], values = values[0], values[1:]
		}
	}
	return strings.Join(parts, "/")
}

// The routes the gateway registers are the paths the client calls.
func TestRoutesArePaths(t *testing.T) {
	const c, n, w = "db", "base_000000010000000000000004", "000000010000000000000003"
	for _, r := range []struct{ route, path string }{
		{fill(RouteWhoAmI), WhoAmIPath},
		{fill(RouteWAL, c, w), WALPath(c, w)},
		{fill(RouteBackups, c), BackupsPath(c)},
		{fill(RouteBackup, c, n), BackupPath(c, n)},
		{fill(RouteBackupCommit, c, n), BackupCommitPath(c, n)},
		{fill(RouteBackupFile, c, n, "metadata.json"), BackupFilePath(c, n, "metadata.json")},
		{fill(RouteDrills, c), DrillsPath(c)},
		{fill(RouteHealth, c), HealthPath(c)},
		{fill(RouteDelete, c), DeletePath(c)},
		{fill(RouteKeys, c), KeysPath(c)},
	} {
		if r.route != r.path {
			t.Errorf("route %s, path %s", r.route, r.path)
		}
	}
}
