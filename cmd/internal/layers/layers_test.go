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
	{"client/codec", nil, true},
	{"client/basebackup", []string{"client/codec"}, true},
	{"gateway/protocol", []string{"index/pgname"}, true},
	{"backends", nil, true},
	{"backends/fs", []string{"backends"}, true},
	{"backends/s3", []string{"backends"}, true},
	{"backends/gcs", []string{"backends"}, true},
	{"backends/azure", []string{"backends"}, true},
	{"backends/backendtest", []string{"backends"}, true},
	{"backends/backendtest/emulators", nil, true},
	{"index", []string{"index/pgname"}, true},
	{"lifecycle", []string{"index", "backends"}, false},
	{"client", []string{"client/codec", "client/basebackup", "gateway/protocol", "index/pgname"}, true},
	{"gateway/gatewaytest", []string{"gateway", "index"}, true},
	{"gateway", []string{"gateway/protocol", "index", "backends", "lifecycle"}, false},
	{"cmd/walgate-client", []string{"client", "client/codec", "client/basebackup", "gateway/protocol", "index/pgname"}, true},
	{"cmd", nil, false}, // binaries and dev tools wire everything
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
