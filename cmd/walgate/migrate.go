package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// Exit codes of index migrate beyond the common ones.
var (
	exitMigrateConflict = cli.ExitCode{Code: 3, Meaning: "refused: the PostgreSQL catalog already holds other data for a cluster of this region (another system identifier, a WAL file with another SHA-256, another backup or token under the same name); nothing was copied"}
	exitMigrateMismatch = cli.ExitCode{Code: 4, Meaning: "copied, but the verification found a difference (the message names it): do not start the fleet on this catalog yet"}
)

var indexMigrateHelp = cli.Help{
	Usage: "walgate index migrate --from-data DIR --config FLEET.yaml",
	Text: `Copy a gateway's own catalog (DIR/catalog.db) into the PostgreSQL catalog
that FLEET.yaml names (catalog: type: postgres), to move a region onto a
fleet of gateways sharing that catalog.

Stop the gateway that serves DIR first: the verb opens its catalog read-only
and refuses while the gateway holds it. The catalog file is not changed.

Everything is copied: clusters and the PostgreSQL system each belongs to,
WAL records, backups in every state (open uploads, committed, being
deleted), restore-drill reports, tokens (their hashes as stored: every
database host keeps its token), the replication queue, storage classes and
the dashboard's hourly trends. WAL claims and duty leases are not: a
stopped gateway holds none, and the fleet takes its own.

Nothing in the PostgreSQL catalog is ever overwritten. A record that is
there already is skipped when it is the same (the same WAL SHA-256, the
same backup files, the same token); when it differs the verb refuses
before copying anything (exit 3). So an interrupted run (Ctrl-C, a lost
connection, a killed process) is finished by running the same command
again, and the catalog may already hold other regions' clusters.

At the end every count is compared, per cluster: WAL records, backups per
state, drill reports, tokens, trend buckets, queued copies per backend,
the system identifier; the WAL names with their objects' SHA-256, the
timelines and the segment size too; then the PostgreSQL catalog's own
check runs. Any difference is named and exits 4. Progress is printed on a terminal.`,
	Exits: []cli.ExitCode{{Code: 0, Meaning: "copied and verified"},
		{Code: 1, Meaning: "failed or interrupted (gateway running, database unreachable: the message says what); run it again"},
		exitUsage, exitMigrateConflict, exitMigrateMismatch},
}

func runIndexMigrate(args []string, stdout, stderr io.Writer) (retErr error) {
	fs := cli.NewFlags("walgate index migrate")
	from := fs.String("from-data", "", "data directory of the stopped gateway whose catalog.db is copied (required)")
	configPath := fs.String("config", "", "config naming the PostgreSQL catalog to copy into (required)")
	fs.StringVar(configPath, "c", "", "short for --config")
	pos, err := parseArgs(fs, indexMigrateHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("index migrate takes no arguments, got %q", pos)
	}
	if *from == "" || *configPath == "" {
		return usageErr("index migrate needs --from-data DIR (the stopped gateway's data directory) and --config FLEET.yaml (the PostgreSQL catalog)")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if !cfg.Catalog.IsPostgres() {
		return usageErr("%s names no PostgreSQL catalog (catalog: type: postgres): index migrate copies a catalog into PostgreSQL", *configPath)
	}
	if err := cfg.Catalog.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	srcPath := config.CatalogPath(*from)
	if _, err := os.Stat(srcPath); err != nil {
		return fmt.Errorf("no catalog to copy: %w", err)
	}
	if _, err := admin.Dial(*from); err == nil {
		return fmt.Errorf("a gateway is running on %s (its admin socket %s answers): stop it first, then run index migrate", *from, admin.SocketPath(*from))
	}
	src, err := index.OpenReadOnly(srcPath, 2*time.Second)
	if err != nil {
		return fmt.Errorf("%w: stop the gateway that serves %s, then run index migrate again", err, *from)
	}
	defer src.Close()
	if cfg.Data != "" {
		defer func() { auditUnlessUsage(cfg.Data, *configPath, "index.migrate", "from "+srcPath, retErr, stderr) }()
	}
	ctx, dst, done, err := startLoad(cfg)
	if err != nil {
		return err
	}
	defer done()

	var progress io.Writer
	if isTTY(stderr) {
		progress = stderr
	}
	m := &catalogCopy{src: src, dst: dst, exact: true, progress: progress, verb: "migrate"}
	res, err := m.run(ctx)
	switch {
	case err == nil:
	case errors.Is(err, errConflict):
		return &exitError{code: exitMigrateConflict.Code, err: fmt.Errorf("%w; nothing was copied: the catalog %s is not this region's to fill, or another walgate archived under the same cluster name", err, cfg.Catalog.Postgres)}
	case errors.Is(err, errMismatch):
		res.print(stdout)
		return &exitError{code: exitMigrateMismatch.Code, err: err}
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: what was copied stays; run the same command again to finish")
	default:
		return fmt.Errorf("%w; what was copied stays: run the same command again to finish", err)
	}
	fmt.Fprintf(stdout, "copied %s into %s and verified:\n", srcPath, cfg.Catalog.Postgres)
	res.print(stdout)
	fmt.Fprintln(stdout, "start the fleet's gateways on this config; keep the gateway of", *from, "stopped")
	return nil
}

// auditUnlessUsage records an offline act in dir's audit log unless its
// command line or config was refused (nothing was attempted).
func auditUnlessUsage(dir, configPath, action, target string, actErr error, stderr io.Writer) {
	var exit *exitError
	if !errors.As(actErr, &exit) || exit.code != exitUsage.Code {
		auditLocal(dir, configPath, action, target, actErr, stderr)
	}
}

// startLoad opens the PostgreSQL catalog cfg names and takes its load
// lock (one migration or rebuild writes into a catalog at a time), with a
// context that SIGINT and SIGTERM cancel. done releases all of it.
func startLoad(cfg gateway.Config) (context.Context, *pgcatalog.Catalog, func(), error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	dst, release, err := openLoadTarget(ctx, cfg)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return ctx, dst, func() { release(); dst.Close(); stop() }, nil
}

// openLoadTarget opens the PostgreSQL catalog cfg names and takes its
// load lock.
func openLoadTarget(ctx context.Context, cfg gateway.Config) (*pgcatalog.Catalog, func(), error) {
	cat, err := gateway.OpenCatalog(ctx, cfg, 0)
	if err != nil {
		return nil, nil, err
	}
	pg, ok := cat.(*pgcatalog.Catalog)
	if !ok {
		cat.Close()
		return nil, nil, fmt.Errorf("the catalog %s is not a PostgreSQL catalog", cfg.Catalog.Postgres)
	}
	// A run killed a moment ago may still hold the lock until the
	// database notices its connection is gone.
	var release func()
	ok = false
	for wait := time.Now().Add(10 * time.Second); ; {
		release, ok, err = pg.LockLoad(ctx)
		if err != nil {
			pg.Close()
			return nil, nil, err
		}
		if ok || time.Now().After(wait) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !ok {
		pg.Close()
		return nil, nil, fmt.Errorf("another 'walgate index migrate' or 'index rebuild' is writing into the catalog %s: wait for it to end", cfg.Catalog.Postgres)
	}
	return pg, release, nil
}
