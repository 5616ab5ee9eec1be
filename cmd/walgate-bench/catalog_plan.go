package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	walgate "github.com/walgate/walgate/gateway"
	gwconfig "github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index/pgcatalog"
	"github.com/walgate/walgate/lifecycle/apply"
)

// catalogPlan: the lifecycle plan over WAL records read from PostgreSQL.
type catalogPlan struct {
	clusters, perCluster int
	seed                 time.Duration // COPY, backups, VACUUM ANALYZE
	tableBytes           int64         // walgate.wal with its index
	start                time.Duration // walgate.Open: the WAL summaries' scan
	resident             float64       // share of the data directory's pages left in memory after eviction
	cold, warm           time.Duration
	scanned              int
	deletes              int
}

// walRows streams the rows of the lifecycle plan's WAL records as the
// PostgreSQL catalog writes them (pgcatalog.WALRow), for a COPY into
// pgcatalog.WALTable: in the order a fleet archives them, each cluster's
// first segment, then each one's second, and so on, so that a cluster's
// rows are spread over the table as in a catalog that grew by pushes.
type walRows struct {
	clusters, perCluster int
	now                  time.Time
	c, s                 int // the row Values returns: cluster c, record s (from 1)
	row                  []any
	err                  error
}

func newWALRows(clusters, perCluster int, now time.Time) *walRows {
	return &walRows{clusters: clusters, perCluster: perCluster, now: now, c: clusters - 1}
}

func (r *walRows) Next() bool {
	if r.err != nil || r.s > r.perCluster {
		return false
	}
	if r.c++; r.c == r.clusters {
		r.c, r.s = 0, r.s+1
	}
	if r.s > r.perCluster {
		return false
	}
	name := planClusterName(r.c)
	r.row, r.err = pgcatalog.WALRow(name, planWALObject(name, r.s, r.perCluster, r.now))
	return r.err == nil
}

func (r *walRows) Values() ([]any, error) { return r.row, r.err }
func (r *walRows) Err() error             { return r.err }

func planClusterName(c int) string { return fmt.Sprintf("db%03d", c) }

// measureCatalogPlan seeds a PostgreSQL catalog with records WAL records
// over 100 clusters (3 full backups each, as the bbolt figure), opens a
// gateway on it, restarts PostgreSQL with its data directory evicted from
// the page cache, and times a lifecycle plan (dry run), then again warm.
func measureCatalogPlan(ctx context.Context, pg *pgtest.Cluster, dir string, records int) (*catalogPlan, error) {
	cp := &catalogPlan{clusters: min(catalogClusters, max(records, 1))}
	cp.perCluster = max(records/cp.clusters, 1)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	dsn, err := catalogDatabase(ctx, pg, "walgate_plan")
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Minute)
	logf("catalog: seeding %d clusters x %d WAL records into PostgreSQL (COPY)", cp.clusters, cp.perCluster)
	t0 := time.Now()
	cat, err := pgcatalog.Open(ctx, dsn, pgcatalog.Options{})
	if err != nil {
		return nil, err
	}
	store := gwconfig.BackendConfig{Name: "local", Type: "fs", Path: filepath.Join(dir, "store")}
	err = seedCatalogPlan(ctx, cat, store, cp.clusters, cp.perCluster, now)
	if err == nil {
		err = cat.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('walgate.wal')`).Scan(&cp.tableBytes)
	}
	cat.Close()
	if err != nil {
		return nil, err
	}
	cp.seed = time.Since(t0)
	logf("catalog: seeded in %s, walgate.wal %.0f MiB", cp.seed.Round(time.Second), float64(cp.tableBytes)/(1<<20))

	cfg := walgate.Config{Data: filepath.Join(dir, "data"),
		Catalog:  gwconfig.CatalogConfig{Type: gwconfig.CatalogPostgres, Postgres: gwconfig.PostgresCatalog{DSN: dsn}},
		Backends: []gwconfig.BackendConfig{store},
		Groups:   []gwconfig.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"local"}, Lifecycle: lifecyclePolicy()}}}
	t0 = time.Now()
	s, err := walgate.Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		return nil, err
	}
	defer s.Shutdown(context.Background())
	cp.start = time.Since(t0)
	logf("catalog: gateway open in %s; restarting PostgreSQL with its data directory out of the page cache", cp.start.Round(time.Millisecond))

	// Cold: the server restarted (its shared buffers empty) and its files
	// out of the page cache, as after a reboot of the catalog's machine.
	port := pg.Port
	if err := pg.Stop(ctx); err != nil {
		return nil, err
	}
	if cp.resident, err = evictTree(pg.DataDir); err != nil {
		return nil, err
	}
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	if pg.Port != port {
		return nil, fmt.Errorf("the catalog server came back on port %d, not %d", pg.Port, port)
	}
	// The pool's connections died with the server: it replaces each on
	// its next use (a ping of a connection idle for over a second).
	deadline := time.Now().Add(time.Minute)
	for !s.Readiness().Ready {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the gateway did not find its catalog again within a minute: %v", s.Readiness().Reasons)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)

	t0 = time.Now()
	res, err := s.Lifecycle(ctx, apply.Options{}, now)
	cp.cold = time.Since(t0)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	if _, err := s.Lifecycle(ctx, apply.Options{}, now); err != nil {
		return nil, err
	}
	cp.warm = time.Since(t0)
	for _, c := range res.Plan.Clusters {
		cp.scanned += c.WALScanned
	}
	for _, st := range res.Steps {
		cp.deletes += st.Count
	}
	if cp.scanned != cp.clusters*cp.perCluster {
		return nil, fmt.Errorf("the plan read %d WAL records of %d", cp.scanned, cp.clusters*cp.perCluster)
	}
	logf("catalog: lifecycle plan over %d records: cold %s, warm %s", cp.scanned, cp.cold.Round(time.Millisecond), cp.warm.Round(time.Millisecond))
	return cp, nil
}

// seedCatalogPlan writes the plan's records: the clusters through the
// catalog, their WAL rows with one COPY, the backups through the catalog;
// then VACUUM ANALYZE, as autovacuum leaves a table that has been loaded.
func seedCatalogPlan(ctx context.Context, cat *pgcatalog.Catalog, store gwconfig.BackendConfig, clusters, perCluster int, now time.Time) error {
	for c := range clusters {
		if err := cat.AddWALBatch(planClusterName(c), nil); err != nil { // the cluster's row
			return err
		}
	}
	n, err := cat.Pool().CopyFrom(ctx, pgcatalog.WALTable, pgcatalog.WALColumns, newWALRows(clusters, perCluster, now))
	if err != nil {
		return fmt.Errorf("COPY of the WAL records: %w", err)
	}
	if n != int64(clusters*perCluster) {
		return fmt.Errorf("COPY wrote %d WAL records of %d", n, clusters*perCluster)
	}
	if err := seedPlanBackups(cat, store, clusters, perCluster, now); err != nil {
		return err
	}
	_, err = cat.Pool().Exec(ctx, `VACUUM (ANALYZE) walgate.wal`)
	return err
}

// evictTree evicts every file under dir from the page cache (see
// evictFile) and returns the share of their pages still resident.
func evictTree(dir string) (float64, error) {
	var resident, pages int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		r, p, err := evictFile(path)
		resident, pages = resident+r, pages+p
		return err
	})
	if pages == 0 {
		return 0, err
	}
	return float64(resident) / float64(pages), err
}

var _ pgx.CopyFromSource = (*walRows)(nil)
