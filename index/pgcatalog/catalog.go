package pgcatalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walgate/walgate/index"
)

// Options tune a PostgreSQL catalog. The zero value takes the defaults.
type Options struct {
	// Timeout bounds one catalog call that reads or writes a few records
	// (default 10s): past it the call fails with index.ErrUnavailable.
	Timeout time.Duration
	// ScanTimeout bounds a call that reads a whole table part, such as
	// ListWAL for a lifecycle plan (default 30m).
	ScanTimeout time.Duration
	// MaxConns caps the connection pool (default 16).
	MaxConns int32
}

// Catalog is the catalog in a PostgreSQL database. It is safe for
// concurrent use, and several processes may use one database at once.
type Catalog struct {
	pool   *pgxpool.Pool
	secret string // the DSN's password, scrubbed from every error
	opts   Options

	genFallback atomic.Uint64 // Generation when the database does not answer
	origin      string        // this Catalog in WAL notifications (WatchWAL)
}

var _ index.Interface = (*Catalog)(nil)

// Open connects to the database dsn names (a libpq URL or key=value
// string), creates or migrates the schema, and returns the catalog. Its
// errors never contain the password.
func Open(ctx context.Context, dsn string, opts Options) (*Catalog, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.ScanTimeout <= 0 {
		opts.ScanTimeout = 30 * time.Minute
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	secret := passwordOf(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, scrub(fmt.Errorf("catalog database: the DSN does not parse: %w", err), secret)
	}
	if cfg.ConnConfig.Password != "" {
		secret = cfg.ConnConfig.Password
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = opts.Timeout
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "walgate"
	}
	cfg.MaxConns = opts.MaxConns
	cfg.HealthCheckPeriod = 5 * time.Second
	var r [8]byte
	_, _ = rand.Read(r[:])
	c := &Catalog{secret: secret, opts: opts, origin: hex.EncodeToString(r[:])}
	octx, cancel := context.WithTimeout(ctx, opts.Timeout+30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(octx, cfg.ConnConfig.Copy())
	if err != nil {
		return nil, c.wrap("connecting to the catalog database", err)
	}
	defer conn.Close(context.Background())
	if err := migrate(octx, conn); err != nil {
		return nil, c.wrap("catalog schema", err)
	}
	c.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, c.wrap("catalog database", err)
	}
	return c, nil
}

// passwordOf finds the password in a URL or key=value DSN without
// parsing it the way pgx does (which may fail): what must never be shown.
func passwordOf(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			return strings.Trim(v, `'`)
		}
	}
	return ""
}

// scrub replaces the password in err's text. The result keeps err's
// chain for errors.Is only when nothing had to be replaced.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "********"))
}

// wrap adds what was being done and marks errors of reaching the database
// with index.ErrUnavailable.
func (c *Catalog) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		err = fmt.Errorf("%s: %w: %w", what, index.ErrUnavailable, err)
	} else {
		err = fmt.Errorf("%s: %w", what, err)
	}
	return scrub(err, c.secret)
}

// unavailable says whether err means the database was not reached or did
// not answer, as opposed to refusing a statement.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutdown, crash, starting
			pgErr.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) || errors.As(err, &connErr) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "unexpected EOF")
}

func (c *Catalog) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opts.Timeout)
}

func (c *Catalog) scanCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opts.ScanTimeout)
}

// tx runs fn in one transaction, committed when fn returns nil.
func (c *Catalog) tx(what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := c.ctx()
	defer cancel()
	return c.wrap(what, pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error { return fn(ctx, tx) }))
}

// Pool is the connection pool, for the fleet's shared duties (leases,
// heartbeats) that live beside the catalog.
func (c *Catalog) Pool() *pgxpool.Pool { return c.pool }

// Close closes every connection.
func (c *Catalog) Close() error {
	c.pool.Close()
	return nil
}

// SizeBytes is what the catalog's tables and indexes take in the
// database; 0 when it cannot be read.
func (c *Catalog) SizeBytes() int64 {
	ctx, cancel := c.ctx()
	defer cancel()
	var n int64
	_ = c.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'walgate' AND c.relkind = 'r'`).Scan(&n)
	return n
}

// Generation is the cluster's counter of backup and drill writes, kept in
// the database so that every gateway sees the others' writes. When the
// database does not answer it returns a new value each call, so callers
// recompute (and meet the error there).
func (c *Catalog) Generation(cluster string) uint64 {
	ctx, cancel := c.ctx()
	defer cancel()
	var g int64
	if err := c.pool.QueryRow(ctx, `SELECT gen FROM walgate.clusters WHERE name = $1`, cluster).Scan(&g); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0
		}
		return 1<<63 | c.genFallback.Add(1)
	}
	return uint64(g)
}

// Generations is every cluster's Generation, read in one query: what the
// fleet's status reads for all clusters at once.
func (c *Catalog) Generations() (map[string]uint64, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT name, gen FROM walgate.clusters`)
	if err != nil {
		return nil, c.wrap("cluster generations", err)
	}
	out := map[string]uint64{}
	for rows.Next() {
		var name string
		var g int64
		if err := rows.Scan(&name, &g); err != nil {
			rows.Close()
			return nil, c.wrap("cluster generations", err)
		}
		out[name] = uint64(g)
	}
	return out, c.wrap("cluster generations", rows.Err())
}

func bump(ctx context.Context, tx pgx.Tx, cluster string) error {
	_, err := tx.Exec(ctx, `UPDATE walgate.clusters SET gen = gen + 1 WHERE name = $1`, cluster)
	return err
}

func ensureCluster(ctx context.Context, tx pgx.Tx, cluster string) error {
	_, err := tx.Exec(ctx, `INSERT INTO walgate.clusters (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		cluster, time.Now().UTC().Truncate(time.Second))
	return err
}

// Clusters lists every cluster the catalog knows, by name.
func (c *Catalog) Clusters() ([]index.Cluster, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT name, created FROM walgate.clusters ORDER BY name`)
	if err != nil {
		return nil, c.wrap("clusters", err)
	}
	var out []index.Cluster
	for rows.Next() {
		var cl index.Cluster
		if err := rows.Scan(&cl.Name, &cl.Created); err != nil {
			rows.Close()
			return nil, c.wrap("clusters", err)
		}
		cl.Created = cl.Created.UTC()
		out = append(out, cl)
	}
	return out, c.wrap("clusters", rows.Err())
}
