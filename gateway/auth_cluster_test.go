package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// clusterRoute is one method on a registered route of protocol v1 that
// names a cluster.
type clusterRoute struct{ method, pattern string }

// protocolClusterRoutes lists what the server registered under
// /<version>/ with a :cluster parameter: a route added to the protocol
// and registered is covered without a change here.
func protocolClusterRoutes(s *Server) []clusterRoute {
	var out []clusterRoute
	for _, r := range s.app.GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/"+protocol.Version+"/") || !slices.Contains(strings.Split(r.Path, "/"), ":cluster") {
			continue
		}
		cr := clusterRoute{r.Method, r.Path}
		if !slices.Contains(out, cr) {
			out = append(out, cr)
		}
	}
	return out
}

// fillRoute puts cluster and valid values for the other parameters into
// a route pattern.
func fillRoute(t *testing.T, pattern, cluster string) string {
	t.Helper()
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		switch {
		case p == ":cluster":
			parts[i] = cluster
		case p == ":name" && i > 0 && parts[i-1] == "wal":
			parts[i] = "000000010000000000000001"
		case p == ":name" && i > 0 && parts[i-1] == "backups":
			parts[i] = "base_000000010000000000000002"
		case p == "*":
			parts[i] = "metadata.json"
		case strings.HasPrefix(p, ":") || strings.Contains(p, "*"):
			t.Fatalf("route %s: parameter %s has no test value here; add a valid one", pattern, p)
		}
	}
	return strings.Join(parts, "/")
}

// A token is bound to exactly one cluster: on every route of protocol v1
// that names a cluster, and with any scope, a token of one cluster is
// refused (403) on a cluster whose name starts or ends with its own, or
// is a prefix or suffix of it.
func TestTokenBoundToItsExactCluster(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Data: dir, Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: filepath.Join(dir, "store")}},
		Groups: []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"local"}}}}
	s, err := Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })

	routes := protocolClusterRoutes(s)
	t.Logf("routes naming a cluster: %v", routes)
	registered := map[string]bool{}
	for _, r := range routes {
		registered[r.pattern] = true
	}
	for _, p := range []string{protocol.RouteWAL, protocol.RouteBackups, protocol.RouteBackup, protocol.RouteBackupCommit,
		protocol.RouteBackupFile, protocol.RouteDrills, protocol.RouteHealth, protocol.RouteDelete, protocol.RouteKeys} {
		if !registered[p] {
			t.Fatalf("route %s is not among the registered routes found (%v)", p, routes)
		}
	}

	do := func(method, path, token string) (int, protocol.ErrorBody) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(""))
		req.Header.Set("Authorization", "Bearer "+token)
		req.ContentLength = 0
		resp, err := s.app.Test(req, -1)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var eb protocol.ErrorBody
		if resp.StatusCode >= 300 && method != "HEAD" {
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("%s %s: HTTP %d with a body that is not a walgate error: %q", method, path, resp.StatusCode, body)
			}
		}
		return resp.StatusCode, eb
	}
	token := func(cluster string, scopes ...index.Scope) string {
		tok, _, err := admin.CreateToken(s.catalog, cluster, scopes, "test")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	all := []index.Scope{index.ScopePush, index.ScopeFetch, index.ScopeAdmin}
	scopeSets := [][]index.Scope{{index.ScopePush}, {index.ScopeFetch}, {index.ScopeAdmin}, all}

	// Each pair: the names share a prefix or a suffix; tokens of either
	// are tried on the other.
	pairs := [][2]string{{"main", "mainx"}, {"main", "main-2"}, {"main", "main_"}, {"main", "xmain"}, {"m", "main"}}
	for _, r := range routes {
		// The same request with the cluster's own token gets past the
		// cluster check, so a refusal below is the cluster's.
		own := token("mainx", all...)
		if st, eb := do(r.method, fillRoute(t, r.pattern, "mainx"), own); st == 403 || st == 401 || eb.Error.Code == protocol.CodeInvalidName {
			t.Fatalf("%s %s with its own cluster's token: %d %s %s", r.method, r.pattern, st, eb.Error.Code, eb.Error.Message)
		}
		for _, pair := range pairs {
			for _, dir := range [][2]string{{pair[0], pair[1]}, {pair[1], pair[0]}} {
				bound, target := dir[0], dir[1]
				for _, scopes := range scopeSets {
					tok := token(bound, scopes...)
					st, eb := do(r.method, fillRoute(t, r.pattern, target), tok)
					if st != 403 || r.method != "HEAD" && (eb.Error.Code != protocol.CodeForbidden || !strings.Contains(eb.Error.Message, "bound to cluster")) {
						t.Errorf("%s %s: a %v token of cluster %s on cluster %s: HTTP %d %s %q, want 403 forbidden (bound to its cluster)",
							r.method, r.pattern, scopes, bound, target, st, eb.Error.Code, eb.Error.Message)
					}
				}
			}
		}
	}
}
