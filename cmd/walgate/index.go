package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/rebuild"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

var indexHelp = cli.Help{
	Usage: "walgate index rebuild --from NAME (--config FILE | --data DIR)\n       walgate index migrate --from-data DIR --config FLEET.yaml",
	Text: `Rebuild the gateway's catalog from one object store ('index migrate --help'
tells how a gateway's own catalog is copied into a PostgreSQL catalog).

The catalog (DATA/catalog.db) is a cache of what the stores hold. This verb
lists every object of the backend NAME (as named under backends: in the
config; with --data alone the embedded default backend is called "local"),
reads what it needs, and replaces the catalog with a fresh one:

  - WAL files under <cluster>/wal_005/, from the metadata walgate stores with
    each object; files archived by stock WAL-G (no such metadata) are read:
    compression from the name, encryption from the bytes, SHA-256, and for
    unencrypted files the plaintext identity a later push is compared with.
  - Base backups under <cluster>/basebackups_005/ that have their
    <name>_backup_stop_sentinel.json; each object is read for its SHA-256.
    Backups without a sentinel (interrupted uploads) are reported, not
    cataloged and not deleted.
  - Anything else is counted and reported, never touched.

Tokens and restore-drill reports are not in the stores: they are carried
over from the current catalog. The current catalog is kept beside the new
one as catalog.db.old-<UTC time> (-2, -3 ... appended when that name is
taken; a kept catalog is never replaced). Stop the gateway first: the verb refuses
while a gateway holds the catalog. Nothing changes if the rebuild fails.

With a PostgreSQL catalog (catalog: type: postgres in the config) the
rebuild fills the shared catalog instead of replacing it, and the fleet's
gateways may keep running: what the store holds is cataloged in a scratch
file under the data directory first, then every record the PostgreSQL
catalog lacks is added (WAL, backups, system identifiers, copies to the
other backends). Nothing there is removed or overwritten: tokens and drill
reports stay as they are, and a record that differs from what the store
holds (another SHA-256 under a WAL name) is named and nothing is added
(exit 3). Run it after the catalog database failed over to a standby that
lost its last commits; running it twice adds nothing the second time.`,
	Exits: []cli.ExitCode{{Code: 0, Meaning: "rebuilt"},
		{Code: 1, Meaning: "failed (gateway running, store unreadable: the message says what)"}, exitUsage,
		{Code: 3, Meaning: "PostgreSQL catalog: a record differs from what the store holds; nothing was added"}},
}

func runIndex(args []string, stdout, stderr io.Writer) (retErr error) {
	sub, args, err := subVerb(args, []string{"rebuild", "migrate"}, indexHelp, stdout, stderr)
	if err != nil {
		return err
	}
	if sub == "migrate" {
		return runIndexMigrate(args, stdout, stderr)
	}
	fs := cli.NewFlags("walgate index rebuild")
	from := fs.String("from", "", "name of the backend to rebuild from (required)")
	configPath := fs.String("config", "", "YAML config file")
	fs.StringVar(configPath, "c", "", "short for --config")
	data := fs.String("data", "", "data directory (overrides the config's data:)")
	pos, err := parseArgs(fs, indexHelp, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("index rebuild takes no arguments, got %q", pos)
	}
	if *from == "" {
		return usageErr("index rebuild needs --from NAME: the backend to rebuild the catalog from")
	}
	var cfg gateway.Config
	if *configPath != "" {
		if cfg, err = loadConfig(*configPath); err != nil {
			return err
		}
	}
	if *data != "" {
		cfg.Data = *data
	}
	if cfg.Data == "" {
		return usageErr("say where the gateway keeps its data: --config FILE or --data DIR")
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	var names []string
	found := -1
	for i, b := range cfg.Backends {
		names = append(names, b.Name)
		if b.Name == *from {
			found = i
		}
	}
	if found < 0 {
		return usageErr("no backend named %q is configured; configured: %s", *from, strings.Join(names, ", "))
	}
	if cfg.Catalog.IsPostgres() {
		return rebuildPostgres(cfg, *configPath, *from, cfg.Backends[found], stdout, stderr)
	}
	if _, err := admin.Dial(cfg.Data); err == nil {
		return fmt.Errorf("a gateway is running on %s (its admin socket %s answers): stop the gateway first", cfg.Data, admin.SocketPath(cfg.Data))
	}
	defer func() {
		var exit *exitError
		if !errors.As(retErr, &exit) {
			auditLocal(cfg.Data, *configPath, "index.rebuild", "from "+*from, retErr, stderr)
		}
	}()
	be, err := all.Open(context.Background(), cfg.Backends[found])
	if err != nil {
		return err
	}
	defer be.Close()

	var progress io.Writer
	if isTTY(stderr) {
		progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, err := rebuild.Run(ctx, be, *from, config.CatalogPath(cfg.Data), progress)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted: the catalog was not changed")
		}
		return fmt.Errorf("rebuild from %s: %w", *from, err)
	}
	sum.Print(stdout)
	// The other backends of each group: queue what the catalog cannot
	// know they hold; the gateway's replicator checks and copies.
	cat, err := index.Open(config.CatalogPath(cfg.Data), 2*time.Second)
	if err != nil {
		return fmt.Errorf("the catalog was rebuilt, but reopening it to queue replication failed: %w", err)
	}
	defer cat.Close()
	n, err := stores.QueueMissingCopies(cat, cfg)
	if err != nil {
		return fmt.Errorf("the catalog was rebuilt, but queueing replication failed: %w", err)
	}
	if len(cfg.Backends) > 1 {
		fmt.Fprintf(stdout, "\nqueued %d copies to the other backends; the gateway checks each (present and intact: nothing to do) and copies what is missing\n", n)
	}
	return nil
}

// rebuildPostgres rebuilds what backend from holds into a scratch bbolt
// catalog under the data directory, queues the copies the group's other
// backends may lack, and adds every record the PostgreSQL catalog lacks
// (see catalogCopy; not exact: the shared catalog may hold more).
func rebuildPostgres(cfg gateway.Config, configPath, from string, bc config.BackendConfig, stdout, stderr io.Writer) (retErr error) {
	if err := cfg.Catalog.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	defer func() {
		auditUnlessUsage(cfg.Data, configPath, "index.rebuild", "from "+from+" into "+cfg.Catalog.Postgres.String(), retErr, stderr)
	}()
	ctx, dst, done, err := startLoad(cfg)
	if err != nil {
		return err
	}
	defer done()
	be, err := all.Open(ctx, bc)
	if err != nil {
		return err
	}
	defer be.Close()

	var progress io.Writer
	if isTTY(stderr) {
		progress = stderr
	}
	// The scratch catalog: made afresh, removed at the end. The load lock
	// keeps a second rebuild off it.
	scratch := filepath.Join(cfg.Data, "catalog-rebuild.db")
	removeScratch := func() {
		for _, p := range []string{scratch, scratch + ".rebuild"} {
			os.Remove(p)
		}
	}
	removeScratch()
	defer removeScratch()
	sum, err := rebuild.Run(ctx, be, from, scratch, progress)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted: the catalog was not changed")
		}
		return fmt.Errorf("rebuild from %s: %w", from, err)
	}
	src, err := index.Open(scratch, 2*time.Second)
	if err != nil {
		return err
	}
	defer src.Close()
	queued, err := stores.QueueMissingCopies(src, cfg)
	if err != nil {
		return fmt.Errorf("queueing copies to the other backends: %w", err)
	}
	m := &catalogCopy{src: src, dst: dst, progress: progress, verb: "rebuild"}
	res, err := m.run(ctx)
	switch {
	case err == nil:
	case errors.Is(err, errConflict):
		return &exitError{code: 3, err: fmt.Errorf("%w; nothing was added: find out which is right (walgate-client wal-fetch, the object's metadata) before changing either", err)}
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: what was added stays; run the same command again to finish")
	default:
		return fmt.Errorf("adding the rebuilt records to the catalog %s: %w; what was added stays: run the same command again to finish", cfg.Catalog.Postgres, err)
	}
	sum.TokensCarried, sum.DrillsCarried = 0, 0
	sum.Print(stdout)
	fmt.Fprintf(stdout, "\nadded to the PostgreSQL catalog %s (tokens and drill reports there are kept as they are):\n", cfg.Catalog.Postgres)
	res.print(stdout)
	if len(cfg.Backends) > 1 {
		fmt.Fprintf(stdout, "\nqueued %d copies to the other backends; the gateways check each (present and intact: nothing to do) and copy what is missing\n", queued)
	}
	return nil
}
