package gateway

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// OpenCatalog opens the catalog cfg names (defaults applied): the bbolt
// file in cfg.Data, waiting up to lockWait for another process's lock, or
// the PostgreSQL database of catalog.postgres, whose schema it creates or
// migrates. Its errors never show the database password.
func OpenCatalog(ctx context.Context, cfg Config, lockWait time.Duration) (index.Interface, error) {
	if !cfg.Catalog.IsPostgres() {
		if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		return index.Open(config.CatalogPath(cfg.Data), lockWait)
	}
	dsn, err := cfg.Catalog.Postgres.ResolveDSN()
	if err != nil {
		return nil, err
	}
	cat, err := pgcatalog.Open(ctx, dsn, pgcatalog.Options{})
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", cfg.Catalog.Postgres, err)
	}
	return cat, nil
}
