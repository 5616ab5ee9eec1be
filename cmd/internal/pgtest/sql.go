package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sqlError is the error of sql on this cluster. Unless it is an ordinary
// SQL error (severity ERROR) or the caller's context ended, the session
// ended (the server crashed, ran out of disk, was stopped): the error then
// comes with the end of the server log, which says why.
func (c *Cluster) sqlError(sql string, err error) error {
	var pgErr *pgconn.PgError
	if (errors.As(err, &pgErr) && pgErr.Severity == "ERROR") || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("pgtest: port %d: %s: %w", c.Port, sql, err)
	}
	return fmt.Errorf("pgtest: port %d: %s: %w%s", c.Port, sql, err, section("server log", c.LogTail(20)))
}

// ConnString is a libpq/pgx connection string for database db ("" means
// "postgres") as the superuser "postgres" over TCP.
func (c *Cluster) ConnString(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable connect_timeout=10 application_name=pgtest",
		c.Port, quoteConnValue(db))
}

func quoteConnValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Connect opens a new connection to database "postgres". The caller closes
// it. Use it for anything that needs one session, such as
// pg_backup_start/pg_backup_stop.
func (c *Cluster) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(""))
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect to cluster on port %d: %w", c.Port, err)
	}
	return conn, nil
}

// Exec runs one statement on a fresh connection.
func (c *Cluster) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return c.sqlError(sql, err)
	}
	return nil
}

// Query runs a query on a fresh connection and returns every row's values.
func (c *Cluster) Query(ctx context.Context, sql string, args ...any) ([][]any, error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, c.sqlError(sql, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	if err != nil {
		return nil, c.sqlError(sql, err)
	}
	return out, nil
}

// QueryString runs a query that returns one row and returns its first
// column as a string ("" for NULL). pgx converts numbers and booleans; cast
// other types in SQL ("SELECT lsn::text").
func (c *Cluster) QueryString(ctx context.Context, sql string, args ...any) (string, error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s *string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		return "", c.sqlError(sql, err)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}

// Psql runs SQL through psql (no psqlrc, stop at the first error, unaligned
// tuples only) and returns its standard output.
func (c *Cluster) Psql(ctx context.Context, sql string) (string, error) {
	return c.runClient(ctx, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql)
}

// Pgbench runs pgbench with args against database "postgres", e.g.
// Pgbench(ctx, "-i", "-s", "1") or Pgbench(ctx, "-c", "2", "-t", "50").
func (c *Cluster) Pgbench(ctx context.Context, args ...string) (string, error) {
	return c.runClient(ctx, "pgbench", args...)
}

// BaseBackup writes a plain-format base backup of the running cluster to
// dir (which must not exist or be empty) with pg_basebackup, taking a fast
// checkpoint and including no WAL (-X none): whoever restores it must get
// every segment from the backup's start onward through restore_command,
// which is what archive tests want. With archiving on, pg_basebackup
// returns only once the backup's last segment is archived (and hangs while
// archive_command fails; ctx bounds it). extraArgs go last and override,
// e.g. "-X", "fetch" or "--no-manifest". dir is written by this process,
// so it may be anywhere, t.TempDir() included.
func (c *Cluster) BaseBackup(ctx context.Context, dir string, extraArgs ...string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("pgtest: base backup: %w", err)
	}
	args := append([]string{"-D", dir, "-X", "none", "--checkpoint=fast", "--no-password"}, extraArgs...)
	if _, err := c.runClient(ctx, "pg_basebackup", args...); err != nil {
		return fmt.Errorf("%w%s", err, section("server log", c.LogTail(20)))
	}
	return nil
}

// ControlData runs pg_controldata on the data directory of a PostgreSQL 15
// cluster and returns its fields by name, e.g. "Database system
// identifier", "Latest checkpoint's TimeLineID", "Database cluster state".
func (c *Cluster) ControlData(ctx context.Context) (map[string]string, error) {
	if c.server.Major != DefaultMajor {
		// pg_controldata reads its own major's pg_control format only,
		// and the npm builds of the other majors have none.
		return nil, fmt.Errorf("pgtest: ControlData runs PostgreSQL %d's pg_controldata, which cannot read the pg_control of PostgreSQL %d", DefaultMajor, c.server.Major)
	}
	out, err := c.runClient(ctx, "pg_controldata", "-D", c.DataDir)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

// SwitchWAL forces a switch to a new WAL segment and returns the name of
// the segment it completed (or, with no WAL written since the last switch,
// the last completed one).
func (c *Cluster) SwitchWAL(ctx context.Context) (string, error) {
	return c.QueryString(ctx, "SELECT pg_walfile_name(pg_switch_wal())")
}

// ArchiverStats is the row of pg_stat_archiver. Times are zero when NULL.
type ArchiverStats struct {
	ArchivedCount    int64
	LastArchivedWAL  string // a segment, or a .history/.backup/.partial file name
	LastArchivedTime time.Time
	FailedCount      int64
	LastFailedWAL    string
	LastFailedTime   time.Time
}

func (s ArchiverStats) String() string {
	return fmt.Sprintf("archived_count=%d last_archived_wal=%q failed_count=%d last_failed_wal=%q",
		s.ArchivedCount, s.LastArchivedWAL, s.FailedCount, s.LastFailedWAL)
}

// ArchiverStats reads pg_stat_archiver.
func (c *Cluster) ArchiverStats(ctx context.Context) (ArchiverStats, error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return ArchiverStats{}, err
	}
	defer conn.Close(context.Background())
	var s ArchiverStats
	var at, ft *time.Time
	err = conn.QueryRow(ctx, `SELECT archived_count, coalesce(last_archived_wal, ''), last_archived_time,
		failed_count, coalesce(last_failed_wal, ''), last_failed_time FROM pg_stat_archiver`).
		Scan(&s.ArchivedCount, &s.LastArchivedWAL, &at, &s.FailedCount, &s.LastFailedWAL, &ft)
	if err != nil {
		return ArchiverStats{}, fmt.Errorf("pgtest: port %d: read pg_stat_archiver: %w", c.Port, err)
	}
	if at != nil {
		s.LastArchivedTime = *at
	}
	if ft != nil {
		s.LastFailedTime = *ft
	}
	return s, nil
}

// WaitArchived forces a WAL switch, then waits until segment walName ("" =
// the segment the switch completed) is archived: its archive_status .done
// file exists, or pg_stat_archiver's last archived segment is at or past
// it. On timeout the error shows the archiver statistics (failures
// included) and the server log. archive_mode must be on.
func (c *Cluster) WaitArchived(ctx context.Context, walName string) (ArchiverStats, error) {
	mode, err := c.QueryString(ctx, "SHOW archive_mode")
	if err != nil {
		return ArchiverStats{}, err
	}
	if mode == "off" {
		return ArchiverStats{}, fmt.Errorf("pgtest: WaitArchived on cluster %s: archive_mode is off", c.Dir)
	}
	switched, err := c.SwitchWAL(ctx)
	if err != nil {
		return ArchiverStats{}, err
	}
	target := switched
	if walName != "" {
		if !isSegmentName(walName) {
			return ArchiverStats{}, fmt.Errorf("pgtest: WaitArchived: %q is not a WAL segment name", walName)
		}
		if walName > switched {
			return ArchiverStats{}, fmt.Errorf("pgtest: WaitArchived: segment %s is not complete yet (last completed: %s)", walName, switched)
		}
		target = walName
	}
	done := filepath.Join(c.DataDir, "pg_wal", "archive_status", target+".done")
	for {
		s, err := c.ArchiverStats(ctx)
		if err != nil {
			return s, err
		}
		if isSegmentName(s.LastArchivedWAL) && s.LastArchivedWAL >= target {
			return s, nil
		}
		if _, err := os.Stat(done); err == nil {
			// Archived; pg_stat_archiver may report it a moment later
			// (the archiver renames .ready to .done before it counts).
			for range 40 {
				if isSegmentName(s.LastArchivedWAL) && s.LastArchivedWAL >= target {
					break
				}
				time.Sleep(50 * time.Millisecond)
				if s, err = c.ArchiverStats(ctx); err != nil {
					return s, err
				}
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("pgtest: segment %s not archived: %w; %v%s", target, ctx.Err(), s, section("server log", c.LogTail(30)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// isSegmentName reports whether s is a WAL segment file name: 24
// upper-case hex digits. Such names sort in WAL order.
func isSegmentName(s string) bool {
	if len(s) != 24 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// Checksum sums a table's content: "<md5 of all rows as text, sorted> <row
// count>". Equal checksums mean equal rows, byte for byte.
type Checksum string

// checksumSQL is the one definition of a table checksum.
const checksumSQL = `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text COLLATE "C"), '')) || ' ' || count(*) FROM %s t`

// TableChecksums sums each table of database "postgres". A name is
// "schema.table" (split at the first dot) or "table" (found through the
// search path); each part is quoted as an identifier.
func (c *Cluster) TableChecksums(ctx context.Context, tables []string) (map[string]Checksum, error) {
	conn, err := c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	sums := make(map[string]Checksum, len(tables))
	for _, name := range tables {
		ident := pgx.Identifier{name}
		if schema, table, ok := strings.Cut(name, "."); ok {
			ident = pgx.Identifier{schema, table}
		}
		var sum string
		if err := conn.QueryRow(ctx, fmt.Sprintf(checksumSQL, ident.Sanitize())).Scan(&sum); err != nil {
			return nil, fmt.Errorf("pgtest: port %d: checksum of %s: %w", c.Port, name, err)
		}
		sums[name] = Checksum(sum)
	}
	return sums, nil
}

// AllUserTables lists, as "schema.table" and sorted, every permanent user
// table and materialized view of database "postgres". Unlogged and
// temporary tables are left out: recovery empties the former and never
// sees the latter.
func (c *Cluster) AllUserTables(ctx context.Context) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT n.nspname || '.' || c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm') AND c.relpersistence = 'p'
		  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	tables := make([]string, len(rows))
	for i, r := range rows {
		tables[i] = r[0].(string)
	}
	return tables, nil
}

// AllTableChecksums is TableChecksums of AllUserTables.
func (c *Cluster) AllTableChecksums(ctx context.Context) (map[string]Checksum, error) {
	tables, err := c.AllUserTables(ctx)
	if err != nil {
		return nil, err
	}
	return c.TableChecksums(ctx, tables)
}

// DiffChecksums describes how got differs from want, one table per line,
// sorted; "" means equal.
func DiffChecksums(want, got map[string]Checksum) string {
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, n := range sorted {
		w, inWant := want[n]
		g, inGot := got[n]
		switch {
		case !inGot:
			fmt.Fprintf(&b, "%s: missing (want %s)\n", n, w)
		case !inWant:
			fmt.Fprintf(&b, "%s: unexpected table (got %s)\n", n, g)
		case w != g:
			fmt.Fprintf(&b, "%s: want %s, got %s\n", n, w, g)
		}
	}
	return b.String()
}
