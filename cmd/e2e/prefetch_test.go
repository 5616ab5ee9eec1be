package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// Recovery through wal-fetch with prefetch on (its default): segments are
// restored ahead in the background, later requests are served from them,
// and the recovered table equals the source's.
func TestRecoveryPrefetch(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	a := newArchivedRows(t, g, 8)
	dir := filepath.Join(pgtest.SharedDir(t), "restore")
	a.mustClient(t, "backup-fetch", dir, "LATEST")
	// Before each call, note what the prefetch directory holds: a request
	// whose segment is listed there verified is served from it.
	log := filepath.Join(pgtest.SharedDir(t), "restore.log")
	rec := pgtest.Recovery{RestoreCommand: "(echo '== %f'; ls pg_wal/walgate/prefetch) >> " + log + " 2>/dev/null; exec " + a.bin + " wal-fetch %f %p"}
	c := pgtest.NewFromBackup(t, dir, rec, pgtest.Options{Env: append(a.env, "WALGATE_PREFETCH=4"), NoStart: true})
	a.start(t, c)
	wantPromoted(t, a.ctx, c, a.want)

	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	for _, block := range strings.Split(string(data), "== ")[1:] {
		name, listing, _ := strings.Cut(block, "\n")
		if strings.Contains(listing, name+".verified") {
			served++
		}
	}
	if served < 2 {
		t.Fatalf("%d requests found their segment prefetched; restore_command log:\n%s", served, data)
	}
	t.Logf("%d of %d archived segments served from prefetch", served, len(a.segs))
}
