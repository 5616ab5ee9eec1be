package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// TestBackupSlowLink: backup-push, backup-fetch and the restored server's
// wal-fetch run over a link throttled to 1 MiB/s, each transfer lasting
// longer than the client's WALGATE_TIMEOUT (1s) and the gateway's
// limits.idle_timeout (1s): a slow stream that keeps moving is never
// cut, and the restored cluster's tables match the source's.
func TestBackupSlowLink(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Limits: gateway.Limits{IdleTimeout: time.Second, HeaderTimeout: 5 * time.Second}}})
	e := newBackupEnv(t, g, true)
	p, err := backendtest.NewProxy(strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := e.src.Pgbench(e.ctx, "-i", "-s", "2", "-q"); err != nil {
		t.Fatal(err)
	}
	p.SetRate(1 << 20)
	// From here the client and the restored server reach the gateway
	// through the slow link (the source archives directly).
	e.env = append(e.env, "WALGATE_URL=http://"+p.Addr(), "WALGATE_TIMEOUT=1s", "WALGATE_RETRIES=0")
	began := time.Now()
	out := e.mustClient(t, "backup-push", e.src.DataDir)
	took := time.Since(began)
	t.Logf("backup-push over the slow link: %v: %s", took, strings.TrimSpace(out))
	if took < 3*time.Second {
		t.Fatalf("backup-push took %v: the link was not slow enough to prove anything", took)
	}
	// A table written after the backup comes back through the WAL.
	if err := e.src.Exec(e.ctx, `CREATE TABLE after_backup AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	want := checksums(t, e.ctx, e.src)
	e.archiveAll(t)
	began = time.Now()
	restored := e.restore(t, "LATEST", pgtest.Recovery{})
	t.Logf("backup-fetch and recovery over the slow link: %v", time.Since(began))
	sameTables(t, "restored over a slow link", want, checksums(t, e.ctx, restored))
}
