package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/walgate/walgate/"

// allowed lists, per package prefix, the walgate packages its non-test
// code may import directly. A package not matched by any rule fails.
var allowed = []struct {
	pkg   string
	may   []string
	exact bool
}{
	{"index/pgname", nil, true},
	{"index/layout", nil, true},
	{"client/codec", nil, true},
	// The archive's names come from the shared leaf.
	{"client/basebackup", []string{"client/codec", "index/layout"}, true},
	{"gateway/protocol", []string{"index/pgname", "index/layout"}, true},
	{"backends", nil, true},
	{"backends/fs", []string{"backends"}, true},
	{"backends/s3", []string{"backends"}, true},
	{"backends/gcs", []string{"backends"}, true},
	{"backends/azure", []string{"backends"}, true},
	// The one place that knows every driver.
	{"backends/all", []string{"backends", "backends/fs", "backends/s3", "backends/gcs", "backends/azure"}, true},
	{"backends/backendtest", []string{"backends"}, true},
	{"backends/backendtest/emulators", nil, true},
	{"index", []string{"index/pgname", "index/layout"}, true},
	// The PostgreSQL catalog and the suite every catalog passes.
	{"index/pgcatalog", []string{"index", "index/pgname", "index/layout"}, true},
	{"index/catalogtest", []string{"index"}, true},
	// The planner is pure: no catalog, no store, no gateway.
	{"lifecycle", []string{"index/pgname", "backends"}, true},
	// The executor: the catalog and the stores' interface, never the
	// gateway's packages.
	{"lifecycle/apply", []string{"lifecycle", "index", "backends"}, true},
	{"client/pgctl", nil, true},
	{"client", []string{"client/codec", "client/basebackup", "client/pgctl", "gateway/protocol", "index/pgname", "index/layout"}, true},
	{"gateway/health", []string{"index/pgname"}, true},
	{"gateway/config", []string{"backends/all", "gateway/health", "gateway/protocol", "lifecycle"}, true},
	// The stores layer knows no HTTP, no fleet, no admin socket and no
	// lifecycle executor.
	{"gateway/stores", []string{"backends", "backends/all", "gateway/config", "index", "index/layout", "index/pgname", "lifecycle"}, true},
	{"gateway/fleet", []string{"gateway/config", "gateway/health", "gateway/protocol", "index", "index/pgname"}, true},
	// The audit log: a file in the data directory, nothing of ours.
	{"gateway/audit", nil, true},
	{"gateway/admin", []string{"gateway/audit", "gateway/fleet", "gateway/protocol", "gateway/stores", "index", "lifecycle/apply"}, true},
	{"gateway/certs", nil, true},
	// Rebuild decodes through the shared codec leaf; it never writes to a
	// store through the stores layer.
	{"gateway/rebuild", []string{"backends", "client/codec", "gateway/protocol", "index", "index/layout", "index/pgname"}, true},
	{"gateway/gatewaytest", []string{"gateway", "gateway/admin", "gateway/stores", "index"}, true},
	// The root gateway: HTTP, auth, handlers, dashboard, metrics. It opens
	// no store by type (backends/all), decodes nothing (client/codec) and
	// neither rebuilds a catalog nor makes certificates.
	{"gateway", []string{"gateway/protocol", "gateway/config", "gateway/stores", "gateway/fleet", "gateway/admin", "gateway/audit",
		"gateway/health", "index", "index/layout", "index/pgname", "index/pgcatalog", "backends", "lifecycle", "lifecycle/apply"}, true},
	{"cmd/walgate-client", []string{"cmd/internal/cli", "cmd/internal/cpuprofile", "client", "client/codec", "client/basebackup", "gateway/protocol", "index/pgname"}, true},
	{"cmd", nil, false},    // binaries and dev tools wire everything
	{"configs", nil, true}, // tests of the shipped configuration files only
}

func goList(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestImportRules(t *testing.T) {
	out := goList(t, "-f", `{{.ImportPath}}:{{join .Imports " "}}`, mod+"...")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		pkgPath, imports, _ := strings.Cut(line, ":")
		pkg := strings.TrimPrefix(pkgPath, mod)
		rule := -1
		for i, r := range allowed {
			if pkg == r.pkg || (!r.exact && strings.HasPrefix(pkg, r.pkg+"/")) {
				rule = i
				break
			}
		}
		if rule < 0 {
			t.Errorf("%s: no layering rule covers this package; add one", pkg)
			continue
		}
		if allowed[rule].pkg == "cmd" {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			ok := false
			for _, m := range allowed[rule].may {
				if dep == m || (!allowed[rule].exact && strings.HasPrefix(dep, m+"/")) {
					ok = true
				}
			}
			if !ok && !strings.HasPrefix(dep, allowed[rule].pkg+"/") {
				t.Errorf("%s imports %s: not allowed by the layering (DESIGN.md)", pkg, dep)
			}
		}
	}
}

// TestClientBinaryIsThin: walgate-client is exec'd per WAL segment; it must
// not link cloud SDKs, the HTTP server framework or the catalog engine.
// (pgx is linked for backup-push and drill; it does nothing at start-up.)
func TestClientBinaryIsThin(t *testing.T) {
	deps := goList(t, "-deps", mod+"cmd/walgate-client")
	forbidden := []string{"github.com/aws/", "cloud.google.com/", "github.com/Azure/", "google.golang.org/grpc",
		"github.com/gofiber/", "github.com/valyala/fasthttp", "go.etcd.io/bbolt",
		mod + "gateway\n", mod + "index\n", mod + "backends"}
	for _, f := range forbidden {
		if strings.Contains(deps+"\n", f) {
			t.Errorf("walgate-client depends on %s", strings.TrimSpace(f))
		}
	}
}

// TestGatewayImportsNoCompression: the gateway never sees plaintext; the
// root package (HTTP, auth, handlers, UI, metrics) imports no compression
// library, and no package outside the rebuild's shared codec does either.
func TestGatewayImportsNoCompression(t *testing.T) {
	out := goList(t, "-f", `{{.ImportPath}}:{{join .Imports " "}}`, mod+"gateway/...")
	compression := []string{"github.com/klauspost/compress", "github.com/pierrec/lz4", "github.com/andybalholm/brotli", "github.com/ulikunitz/xz"}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Fields(imports) {
			for _, c := range compression {
				if strings.HasPrefix(imp, c) {
					t.Errorf("%s imports %s", strings.TrimPrefix(pkg, mod), imp)
				}
			}
		}
	}
}

// TestOneOpenerOfStores: only backends/all (and the command-line tools)
// import a store driver; everything else opens stores through it and asks
// it for their storage classes.
func TestOneOpenerOfStores(t *testing.T) {
	out := goList(t, "-f", `{{.ImportPath}}:{{join .Imports " "}}`, mod+"...")
	drivers := []string{"backends/fs", "backends/s3", "backends/gcs", "backends/azure"}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		pkgPath, imports, _ := strings.Cut(line, ":")
		pkg := strings.TrimPrefix(pkgPath, mod)
		if pkg == "backends/all" || strings.HasPrefix(pkg, "cmd/") || strings.HasPrefix(pkg, "backends/") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			for _, d := range drivers {
				if imp == mod+d {
					t.Errorf("%s imports the driver %s: open stores with backends/all", pkg, d)
				}
			}
		}
	}
}
