package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walgate/walgate/client/pgctl"
	"github.com/walgate/walgate/gateway/protocol"
)

// DefaultDrillTimeout bounds a drill's fetch, recovery and checks.
const DefaultDrillTimeout = time.Hour

// DrillServerUser is the OS account the drill's PostgreSQL runs as when
// the drill runs as root (PostgreSQL refuses to run as root).
const DrillServerUser = "postgres"

// DrillOptions describe one restore drill.
type DrillOptions struct {
	// Backup is a backup name or LATEST ("" means LATEST).
	Backup string
	// TargetTime is recovery_target_time; "" recovers to the end of the
	// archived WAL.
	TargetTime string
	// CheckSQL is the DBA's SQL, run in database postgres after recovery
	// (several statements allowed); "" for none. CheckSQLName names it in
	// the report.
	CheckSQL, CheckSQLName string
	// Keep leaves the scratch directory in place.
	Keep bool
	// Timeout bounds fetch, recovery and checks; 0 means
	// DefaultDrillTimeout.
	Timeout time.Duration
	// PgBin is the directory of pg_ctl; "" finds it (pg_config --bindir,
	// then /usr/lib/postgresql/<major>/bin) by the backup's major version.
	PgBin string
	// Executable is this walgate-client, used in restore_command.
	Executable string
	// Env is the environment of the server and so of restore_command;
	// nil means os.Environ(). It must carry the WALGATE_* settings.
	Env []string
	// ScratchBase is where the scratch directory is made; "" means
	// os.TempDir().
	ScratchBase string
	// PgUser is a role to connect as if "postgres" does not exist in the
	// restored cluster.
	PgUser string
	// Concurrency is the fetch's download concurrency.
	Concurrency int
	// Progress receives the fetch's progress line and the drill's steps
	// (a terminal); nil is quiet.
	Progress io.Writer
}

// DrillResult is what a drill found.
type DrillResult struct {
	Report protocol.DrillReport
	// Scratch is the kept scratch directory (Keep), else "".
	Scratch string
	// PgBin is the directory of the PostgreSQL programs used.
	PgBin string
}

// Drill restores a backup into a scratch directory, starts PostgreSQL on
// it with restore_command through walgate-client, waits until recovery
// ends, runs the checks, stops the server, removes the scratch directory
// (unless Keep) and sends the report to the gateway, whatever happened.
// The error is nil when the report was sent; Report.Passed says how the
// drill went.
func (c *Client) Drill(ctx context.Context, opts DrillOptions) (DrillResult, error) {
	if opts.Backup == "" {
		opts.Backup = protocol.Latest
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultDrillTimeout
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	host, _ := os.Hostname()
	d := &drill{c: c, opts: opts, rep: protocol.DrillReport{
		Cluster: c.cfg.Cluster, Backup: opts.Backup, Started: time.Now().UTC(),
		TargetTime: opts.TargetTime, Host: host, Checks: []protocol.Check{},
	}}
	err := d.run(ctx)
	if serr := d.shutdown(); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		d.rep.Error = clipText(err.Error(), 8<<10)
	}
	passed := err == nil && len(d.rep.Checks) > 0
	for _, ch := range d.rep.Checks {
		passed = passed && ch.Passed
	}
	d.rep.Passed = passed
	res := DrillResult{PgBin: d.bin}
	if d.scratch != "" {
		if opts.Keep {
			res.Scratch = d.scratch
		} else if rerr := os.RemoveAll(d.scratch); rerr != nil && d.rep.Error == "" {
			d.rep.Error = "removing the scratch directory failed: " + rerr.Error()
		}
	}
	if !d.rep.Passed && d.rep.Error == "" {
		// The gateway shows the reason wherever it shows the drill.
		d.rep.Error = d.rep.Reason()
	}
	d.rep.Finished = time.Now().UTC()
	res.Report = d.rep
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return res, c.SendDrillReport(sctx, d.rep)
}

// drill is one drill in progress.
type drill struct {
	c       *Client
	opts    DrillOptions
	rep     protocol.DrillReport
	owner   pgctl.Account
	scratch string
	data    string
	runDir  string
	logFile string
	bin     string
	exe     string
	port    int
	role    string // the role connections use, once one worked
}

func (d *drill) logf(format string, args ...any) {
	if d.opts.Progress != nil {
		fmt.Fprintf(d.opts.Progress, "drill: "+format+"\n", args...)
	}
}

func lookupServerAccount() (pgctl.Account, error) {
	a, err := pgctl.LookupAccount(DrillServerUser)
	switch {
	case errors.Is(err, pgctl.ErrNoRunuser):
		return a, errors.New("running as root, the drill needs runuser (util-linux) to run PostgreSQL as " + DrillServerUser)
	case err != nil:
		return a, fmt.Errorf("running as root, the drill runs PostgreSQL as the OS user %s: %w", DrillServerUser, err)
	}
	return a, nil
}

// command runs program as the server account with the drill's
// environment. runuser keeps the environment; the preflight check proves
// WALGATE_* get through.
func (d *drill) command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := d.owner.Command(ctx, program, args...)
	cmd.Env = d.opts.Env
	cmd.Dir = d.scratch
	return cmd
}

func (d *drill) pgCtl(ctx context.Context, args ...string) (string, error) {
	out, err := d.command(ctx, filepath.Join(d.bin, "pg_ctl"), args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (d *drill) run(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, d.opts.Timeout)
	defer cancel()
	err := d.steps(ctx)
	if err != nil && ctx.Err() != nil && !strings.Contains(err.Error(), d.ended(ctx)) {
		err = fmt.Errorf("%s: %w", d.ended(ctx), err)
	}
	return err
}

func (d *drill) steps(ctx context.Context) error {
	var err error
	if d.owner, err = lookupServerAccount(); err != nil {
		return err
	}
	detail, err := d.c.Backup(ctx, d.opts.Backup)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			if d.opts.Backup == protocol.Latest {
				return fmt.Errorf("cluster %s has no committed backup to drill", d.c.cfg.Cluster)
			}
			return fmt.Errorf("backup %s is not in the archive of cluster %s", d.opts.Backup, d.c.cfg.Cluster)
		}
		return fmt.Errorf("looking up the backup failed: %w", err)
	}
	d.rep.Backup = detail.Name
	if major := pgMajor(detail.PgVersion); major > 0 || d.opts.PgBin != "" {
		if d.bin, err = findPgBin(d.opts.PgBin, major); err != nil {
			return err
		}
	}
	if err := d.makeScratch(); err != nil {
		return err
	}
	if d.port, err = pgctl.FreePort(); err != nil {
		return err
	}

	d.logf("fetching %s into %s", detail.Name, d.data)
	fetchStart := time.Now()
	_, err = d.c.restore(ctx, detail, d.data, RestoreOptions{
		Concurrency: d.opts.Concurrency, Progress: d.opts.Progress,
		tablespaceRoot: filepath.Join(d.scratch, "tablespaces"),
		Recovery: &RecoverySettings{
			// No restore ahead: its background process could still be
			// writing into the scratch directory when the drill removes it.
			RestoreCommand: "WALGATE_PREFETCH=0 " + QuoteShell(d.exe) + " wal-fetch %f %p",
			TargetTime:     d.opts.TargetTime,
			Extra:          d.serverSettings(),
		},
	})
	d.rep.FetchSeconds = time.Since(fetchStart).Seconds()
	if err != nil {
		return fmt.Errorf("fetching the backup failed: %w", err)
	}
	if d.bin == "" {
		b, err := os.ReadFile(filepath.Join(d.data, "PG_VERSION"))
		if err != nil {
			return fmt.Errorf("the restored backup has no PG_VERSION: %w", err)
		}
		major, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if d.bin, err = findPgBin("", major); err != nil {
			return err
		}
	}
	if err := d.prepareServerFiles(); err != nil {
		return err
	}

	// What a recovery to the end of the archive must reach, read before it
	// starts (archiving goes on meanwhile).
	var end archiveEnd
	if d.opts.TargetTime == "" {
		if end, err = d.readArchiveEnd(ctx); err != nil {
			return err
		}
	}
	d.logf("starting PostgreSQL (%s) on 127.0.0.1:%d, restore_command through %s", d.bin, d.port, d.exe)
	recStart := time.Now()
	err = d.start(ctx)
	if err == nil {
		err = d.waitRecovery(ctx)
	}
	d.rep.RecoverySeconds = time.Since(recStart).Seconds()
	if err != nil {
		return err
	}
	if err := d.recordRecoveryEnd(ctx); err != nil {
		return err
	}
	if err := d.checkRecoveredToEnd(ctx, end); err != nil {
		return err
	}
	d.logf("recovered to %s (last transaction %s) in %.1fs; running checks", d.rep.RecoveryEndLSN, orNone(d.rep.RecoveryEndTime), d.rep.RecoverySeconds)
	return d.runChecks(ctx)
}

func orNone(s string) string {
	if s == "" {
		return "none replayed"
	}
	return s
}

// pgMajor turns server_version_num into a major version (10 and later).
func pgMajor(v int) int {
	if v >= 100000 {
		return v / 10000
	}
	return 0
}

var pgCtlVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// findPgBin returns the directory of pg_ctl for PostgreSQL major (0:
// any): explicit, else pg_config --bindir, else
// /usr/lib/postgresql/<major>/bin, each only if its pg_ctl is of that
// major version.
func findPgBin(explicit string, major int) (string, error) {
	version := func(dir string) (int, error) {
		out, err := exec.Command(filepath.Join(dir, "pg_ctl"), "--version").Output()
		if err != nil {
			return 0, err
		}
		m := pgCtlVersion.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("unexpected pg_ctl --version output %q", strings.TrimSpace(string(out)))
		}
		return strconv.Atoi(string(m[1]))
	}
	if explicit != "" {
		v, err := version(explicit)
		if err != nil {
			return "", fmt.Errorf("--pg-bin %s: cannot run its pg_ctl: %w", explicit, err)
		}
		if major > 0 && v != major {
			return "", fmt.Errorf("--pg-bin %s holds PostgreSQL %d, but the backup is of PostgreSQL %d", explicit, v, major)
		}
		return explicit, nil
	}
	var candidates, tried []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	if major > 0 {
		candidates = append(candidates, fmt.Sprintf("/usr/lib/postgresql/%d/bin", major))
	}
	for _, dir := range candidates {
		v, err := version(dir)
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s (no usable pg_ctl)", dir))
		case major > 0 && v != major:
			tried = append(tried, fmt.Sprintf("%s (PostgreSQL %d)", dir, v))
		default:
			return dir, nil
		}
	}
	if len(tried) == 0 {
		tried = append(tried, "pg_config is not in PATH")
	}
	return "", fmt.Errorf("no PostgreSQL %d server programs found (tried %s); pass --pg-bin DIR", major, strings.Join(tried, ", "))
}

// makeScratch makes the scratch directory and, when running as root,
// installs a copy of walgate-client there that the server account can run
// and proves it works as that account with the drill's environment.
func (d *drill) makeScratch() error {
	base := d.opts.ScratchBase
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	dir, err := os.MkdirTemp(base, "walgate-drill-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	d.scratch = dir
	d.data = filepath.Join(dir, "data")
	d.runDir = filepath.Join(dir, "run")
	d.logFile = filepath.Join(dir, "server.log")
	d.exe = d.opts.Executable
	if d.exe == "" {
		return errors.New("no walgate-client executable for restore_command")
	}
	if d.owner.Runuser == "" {
		return nil
	}
	// The server account must reach the scratch directory; what it may
	// not touch (the program) stays root's.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return err
	}
	d.exe = filepath.Join(bin, "walgate-client")
	if err := copyExecutable(d.opts.Executable, d.exe); err != nil {
		return fmt.Errorf("installing walgate-client for restore_command: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := d.command(ctx, d.exe, "check").CombinedOutput()
	if err != nil {
		return fmt.Errorf("restore_command would fail: as OS user %s, 'walgate-client check' failed (%v): %s; the server inherits this environment, so WALGATE_* must be set and any token or key file must be readable by %s, and %s must be reachable by it",
			d.owner.Name, err, strings.TrimSpace(string(out)), d.owner.Name, dir)
	}
	return nil
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// serverSettings are appended to the restored postgresql.auto.conf (where
// they win over postgresql.conf): the scratch server listens on loopback
// and a private socket only, never archives, never reaches for a primary,
// and keeps its log where the drill reads it.
func (d *drill) serverSettings() [][2]string {
	return [][2]string{
		{"port", strconv.Itoa(d.port)},
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", d.runDir},
		{"unix_socket_group", ""},
		{"unix_socket_permissions", "0700"},
		{"hba_file", filepath.Join(d.scratch, "pg_hba.conf")},
		{"ident_file", filepath.Join(d.scratch, "pg_ident.conf")},
		{"external_pid_file", filepath.Join(d.runDir, "postmaster.pid")},
		{"archive_mode", "off"},
		{"ssl", "off"},
		{"hot_standby", "on"},
		{"primary_conninfo", ""},
		{"primary_slot_name", ""},
		{"recovery_end_command", ""},
		{"archive_cleanup_command", ""},
		{"recovery_target_timeline", "latest"},
		{"synchronous_standby_names", ""},
		{"logging_collector", "off"},
		{"log_destination", "stderr"},
		{"shared_buffers", "128MB"},
		{"huge_pages", "try"},
		{"autovacuum", "off"},
		{"cluster_name", "walgate-drill"},
	}
}

// prepareServerFiles writes what the scratch server needs besides the
// data directory and hands it all to the server account.
func (d *drill) prepareServerFiles() error {
	conf := filepath.Join(d.data, "postgresql.conf")
	if _, err := os.Stat(conf); errors.Is(err, fs.ErrNotExist) {
		// Debian keeps postgresql.conf in /etc: the defaults and
		// postgresql.auto.conf will do.
		if err := os.WriteFile(conf, []byte("# written by walgate-client drill: the backup had no postgresql.conf\n"), 0o600); err != nil {
			return err
		}
	}
	files := map[string]string{
		filepath.Join(d.scratch, "pg_hba.conf"):   "# walgate-client drill: local socket only (the socket directory is private)\nlocal all all trust\n",
		filepath.Join(d.scratch, "pg_ident.conf"): "",
		d.logFile: "",
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
	}
	if err := os.Mkdir(d.runDir, 0o700); err != nil {
		return err
	}
	paths := []string{d.data, d.runDir, filepath.Join(d.scratch, "tablespaces")}
	for p := range files {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := d.owner.ChownTree(p); err != nil {
			return fmt.Errorf("giving the scratch directory to %s: %w", d.owner.Name, err)
		}
	}
	return nil
}

// start runs pg_ctl start and waits until the server accepts (read-only)
// connections, that is, until recovery reached a consistent state.
func (d *drill) start(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		off := pgctl.LogSize(d.logFile)
		secs := 1
		if dl, ok := ctx.Deadline(); ok {
			secs = max(1, int(time.Until(dl)/time.Second)-1)
		}
		out, err := d.pgCtl(ctx, "start", "-D", d.data, "-l", d.logFile, "-w", "-t", strconv.Itoa(secs),
			"-o", "-c data_directory="+QuoteShell(d.data))
		if err == nil {
			return nil
		}
		log := d.logSince(off)
		if attempt < 3 && pgctl.PortTaken(log) && !d.running() {
			if port, perr := pgctl.FreePort(); perr == nil {
				d.port = port
				if werr := pgctl.AppendAutoConf(d.data, "walgate-client drill: the port was taken", [][2]string{{"port", strconv.Itoa(port)}}, false); werr == nil {
					continue
				}
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("recovery did not reach a consistent state: %s (pg_ctl: %s)%s", d.ended(ctx), oneLine(out), d.logTail())
		}
		if d.running() {
			return fmt.Errorf("recovery did not reach a consistent state within %s (pg_ctl: %s)%s", d.opts.Timeout, oneLine(out), d.logTail())
		}
		return fmt.Errorf("PostgreSQL stopped during recovery: %s%s", d.whyStopped(out), d.logTail())
	}
}

// waitRecovery polls until the server leaves recovery. A server that
// stops, or pauses recovery, fails the drill.
func (d *drill) waitRecovery(ctx context.Context) error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	last := "no answer yet"
	for {
		if !d.running() {
			return fmt.Errorf("PostgreSQL stopped during recovery: %s%s", d.whyStopped(""), d.logTail())
		}
		var err error
		if conn == nil {
			conn, err = d.connect(ctx, "postgres", nil)
		}
		if err == nil {
			var st pgctl.RecoveryState
			st, err = pgctl.ReadRecoveryState(ctx, conn)
			switch {
			case err == nil && !st.InRecovery:
				return nil
			case err == nil && st.PauseRequested():
				return fmt.Errorf("recovery paused at %s instead of ending (the server log says why)%s", orNoLSN(st.ReplayLSN), d.logTail())
			case err == nil:
				last = "replayed up to " + orNoLSN(st.ReplayLSN)
			default:
				conn.Close(context.Background())
				conn = nil
			}
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recovery did not end: %s (%s)%s", d.ended(ctx), last, d.logTail())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ended says why ctx ended: the drill's timeout or an interruption.
func (d *drill) ended(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("the drill's timeout of %s passed (--timeout)", d.opts.Timeout)
	}
	return "interrupted"
}

func orNoLSN(lsn string) string {
	if lsn == "" {
		return "(none)"
	}
	return lsn
}

func (d *drill) recordRecoveryEnd(ctx context.Context) error {
	conn, err := d.connect(ctx, "postgres", nil)
	if err != nil {
		return fmt.Errorf("connecting after recovery failed: %w", err)
	}
	defer conn.Close(context.Background())
	var lsn *string
	var ts *time.Time
	if err := conn.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()`).Scan(&lsn, &ts); err != nil {
		return fmt.Errorf("reading the recovery end failed: %w", err)
	}
	if lsn != nil {
		d.rep.RecoveryEndLSN = *lsn
	}
	if ts != nil {
		d.rep.RecoveryEndTime = ts.UTC().Format(time.RFC3339Nano)
	}
	return nil
}

// connect opens a connection over the private socket, as "postgres" or,
// if the restored cluster has no such role, as PgUser or the OS user.
func (d *drill) connect(ctx context.Context, db string, onNotice pgconn.NoticeHandler) (*pgx.Conn, error) {
	roles := []string{d.role}
	if d.role == "" {
		roles = []string{DrillServerUser}
		if d.opts.PgUser != "" {
			roles = append(roles, d.opts.PgUser)
		}
		if u, err := user.Current(); err == nil && d.owner.Runuser == "" {
			roles = append(roles, u.Username)
		}
	}
	var first error
	for _, role := range roles {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=10 target_session_attrs=any",
			quoteConnValue(d.runDir), d.port, quoteConnValue(role), quoteConnValue(db)))
		if err != nil {
			return nil, err
		}
		cfg.OnNotice = onNotice
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			d.role = role
			return conn, nil
		}
		if first == nil {
			first = err
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28000" { // not "role does not exist"
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w (set PGUSER to a superuser of the backed-up cluster)", first)
}

func quoteConnValue(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// runChecks: every database that allows connections answers SELECT 1;
// amcheck (created in the copy where missing) checks every btree index
// and, from amcheck 1.3, every heap; the DBA's SQL in database postgres.
func (d *drill) runChecks(ctx context.Context) error {
	conn, err := d.connect(ctx, "postgres", nil)
	if err != nil {
		return fmt.Errorf("connecting for the checks failed: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname`)
	var dbs []string
	if err == nil {
		dbs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("listing the databases failed: %w", err)
	}
	for _, db := range dbs {
		d.checkDatabase(ctx, db)
	}
	if d.opts.CheckSQL != "" {
		d.checkSQL(ctx)
	}
	return nil
}

func (d *drill) addCheck(name string, err error, output string) {
	ch := protocol.Check{Name: name, Passed: err == nil, Output: output}
	if err != nil {
		if ch.Output != "" {
			ch.Output += "\n"
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "ERROR:") && !strings.HasPrefix(msg, "FATAL:") {
			msg = "ERROR: " + msg
		}
		ch.Output += msg
	}
	ch.Output = clipText(ch.Output, 16<<10)
	d.rep.Checks = append(d.rep.Checks, ch)
}

func (d *drill) checkDatabase(ctx context.Context, db string) {
	conn, err := d.connect(ctx, db, nil)
	if err != nil {
		d.addCheck("connect "+db, err, "")
		return
	}
	defer conn.Close(context.Background())
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	d.addCheck("connect "+db, err, "")
	if err != nil {
		return
	}
	// The restored copy is throwaway and recovered (promoted): amcheck
	// is created where the source never installed it, so every database
	// gets the real checks.
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS amcheck"); err != nil {
		d.addCheck("amcheck "+db, err, "could not create the amcheck extension in the restored copy: install the PostgreSQL contrib package for "+d.bin)
		return
	}
	var schema string
	err = conn.QueryRow(ctx, `SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'`).Scan(&schema)
	if err != nil {
		d.addCheck("amcheck "+db, err, "")
		return
	}
	rows, err := conn.Query(ctx, `SELECT c.oid::text, format('%I.%I', n.nspname, c.relname)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready
		ORDER BY 2`)
	var idx [][2]string
	if err == nil {
		idx, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var v [2]string
			return v, r.Scan(&v[0], &v[1])
		})
	}
	if err != nil {
		d.addCheck("amcheck "+db, err, "")
		return
	}
	var failed []string
	for _, ix := range idx {
		if _, err := conn.Exec(ctx, "SELECT "+schema+".bt_index_check($1::regclass)", ix[0]); err != nil {
			if ctx.Err() != nil {
				d.addCheck("amcheck "+db, err, fmt.Sprintf("interrupted after %d of %d btree indexes", len(failed), len(idx)))
				return
			}
			failed = append(failed, ix[1]+": "+err.Error())
		}
	}
	d.checkHeaps(ctx, conn, db, schema)
	out := fmt.Sprintf("bt_index_check on %d btree indexes", len(idx))
	if len(failed) > 0 {
		d.addCheck("amcheck "+db, fmt.Errorf("%d of %d indexes failed", len(failed), len(idx)), out+"\n"+strings.Join(failed, "\n"))
		return
	}
	d.addCheck("amcheck "+db, nil, out+": all passed")
}

// checkSQL runs the DBA's SQL in database postgres; an error fails the
// check. The output (result rows, command tags, notices) is recorded.
func (d *drill) checkSQL(ctx context.Context) {
	name := "check-sql"
	if d.opts.CheckSQLName != "" {
		name += " " + d.opts.CheckSQLName
	}
	var out strings.Builder
	conn, err := d.connect(ctx, "postgres", func(_ *pgconn.PgConn, n *pgconn.Notice) {
		fmt.Fprintf(&out, "%s: %s\n", n.Severity, n.Message)
	})
	if err != nil {
		d.addCheck(name, err, "")
		return
	}
	defer conn.Close(context.Background())
	results, err := conn.PgConn().Exec(ctx, d.opts.CheckSQL).ReadAll()
	for _, r := range results {
		if len(r.FieldDescriptions) > 0 {
			cols := make([]string, len(r.FieldDescriptions))
			for i, f := range r.FieldDescriptions {
				cols[i] = f.Name
			}
			out.WriteString(strings.Join(cols, " | ") + "\n")
			for _, row := range r.Rows {
				vals := make([]string, len(row))
				for i, v := range row {
					if v == nil {
						vals[i] = "NULL"
					} else {
						vals[i] = string(v)
					}
				}
				out.WriteString(strings.Join(vals, " | ") + "\n")
			}
		}
		if tag := r.CommandTag.String(); tag != "" {
			out.WriteString("(" + tag + ")\n")
		}
		if err == nil && r.Err != nil {
			err = r.Err
		}
	}
	d.addCheck(name, err, strings.TrimRight(out.String(), "\n"))
}

// shutdown stops the scratch server (fast, then immediate) if it runs.
func (d *drill) shutdown() error {
	if d.data == "" || d.bin == "" || !d.running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d.logf("stopping PostgreSQL")
	out, err := d.pgCtl(ctx, "stop", "-D", d.data, "-m", "fast", "-w", "-t", "60")
	if err == nil || !d.running() {
		return nil
	}
	if out2, err2 := d.pgCtl(ctx, "stop", "-D", d.data, "-m", "immediate", "-w", "-t", "30"); err2 != nil && d.running() {
		return fmt.Errorf("the drill's PostgreSQL in %s could not be stopped: %s; %s", d.data, oneLine(out), oneLine(out2))
	}
	return nil
}

// running reports whether the scratch server's postmaster lives.
func (d *drill) running() bool { return pgctl.Running(d.data) }

// logSince is the server log from offset off on, "" if unreadable.
func (d *drill) logSince(off int64) string {
	log, _ := pgctl.LogSince(d.logFile, off)
	return log
}

// whyStopped names the server's last FATAL or PANIC message, with a hint
// when it says WAL is missing; else pg_ctl's output.
func (d *drill) whyStopped(pgCtlOut string) string {
	lines := strings.Split(d.logSince(0), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		at := strings.Index(lines[i], "FATAL:")
		if at < 0 {
			at = strings.Index(lines[i], "PANIC:")
		}
		if at < 0 {
			continue
		}
		msg := oneLine(lines[i][at:])
		for _, walMissing := range []string{"checkpoint record", "WAL ends before", "recovery ended before", "requested timeline"} {
			if strings.Contains(msg, walMissing) {
				return msg + " (is WAL missing from the archive?)"
			}
		}
		return msg
	}
	if pgCtlOut != "" {
		return "pg_ctl: " + oneLine(pgCtlOut)
	}
	return "the server exited"
}

// logTail is the end of the server log, formatted for an error.
func (d *drill) logTail() string {
	lines := strings.Split(strings.TrimRight(d.logSince(0), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	tail := strings.Join(lines, "\n")
	if strings.TrimSpace(tail) == "" {
		return ""
	}
	if len(tail) > 6<<10 {
		tail = "..." + tail[len(tail)-6<<10:]
	}
	return "\n--- server log (last lines) ---\n" + tail
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "no output"
	}
	return s
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n... (clipped)"
}
