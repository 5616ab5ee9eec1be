package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client/pgctl"
)

// Options shape a new cluster. The zero value is a fast test cluster:
// 16 MB WAL segments, no data checksums, fsync off, locale C, UTF8, UTC.
type Options struct {
	// Conf lines go at the end of the helper's settings file and so win
	// over its defaults, e.g. "archive_mode = on" and
	// "archive_command = 'cp %p /x/%f'". Values must be quoted as in
	// postgresql.conf (see QuoteConf).
	Conf []string

	// Env is added to the server's clean environment as "KEY=value"
	// entries; archive_command and restore_command inherit it. It is read
	// at every start, so change Cluster.Env and Restart to change it.
	Env []string

	// DataChecksums runs initdb --data-checksums. Ignored for clusters
	// made from a base backup.
	DataChecksums bool

	// WALSegmentSizeMB is initdb --wal-segsize, a power of two from 1 to
	// 1024; 0 means 16. Ignored for clusters made from a base backup.
	WALSegmentSizeMB int

	// Fsync turns fsync on. Off (the default) is safe for throwaway
	// clusters: an immediate stop (Kill) loses nothing that the kernel
	// already has, only a machine crash would.
	Fsync bool

	// NoStart leaves the new cluster stopped.
	NoStart bool

	// Major is the PostgreSQL major to run (see Majors); 0 means
	// DefaultMajor. For a cluster made from a base backup, 0 means the
	// backup's own major, and another value must match it.
	Major int
}

func (o Options) validate() error {
	switch n := o.WALSegmentSizeMB; {
	case n == 0:
	case n < 1 || n > 1024 || n&(n-1) != 0:
		return fmt.Errorf("pgtest: WALSegmentSizeMB %d is not a power of two from 1 to 1024", n)
	}
	return validateEnv(o.Env)
}

func validateEnv(env []string) error {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("pgtest: environment entry %q is not KEY=value", kv)
		}
	}
	return nil
}

// Cluster is one PostgreSQL server and its files. Its methods are not safe
// for concurrent use except the query helpers (Query, Exec, ...), which
// open their own connections.
type Cluster struct {
	Dir     string // owned by the server user, mode 0755: log, socket, installed programs
	DataDir string // Dir/data
	LogFile string // Dir/server.log: everything the server logged, across restarts
	Port    int    // TCP port on 127.0.0.1

	// Env is the server's extra environment (see Options.Env), read at
	// every Start.
	Env []string

	owner    serverUser
	server   Server // the PostgreSQL build it runs
	fsync    bool
	startLog int64    // size of LogFile at the last Start
	conf     []string // Options.Conf plus AppendConf lines
	recovery []string // restore_command and recovery_target* lines
}

const (
	dataDirName  = "data"
	logFileName  = "server.log"
	confFileName = "walgate_pgtest.conf"
	includeLine  = "include '" + confFileName + "'"
)

// New creates and starts a cluster for a test, failing the test with a
// clear message when it cannot. At cleanup it stops the server and removes
// its files; if the test failed it first logs the tail of the server log.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Create(ctx, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	registerCleanup(t, c)
	return c
}

// Create makes a cluster with initdb in dir and starts it unless
// opts.NoStart. dir must not exist or be empty; "" makes a fresh directory
// under the temporary directory. On error nothing is left running and a
// directory Create made is removed. The caller owns the result: Stop it and
// Remove it.
func Create(ctx context.Context, dir string, opts Options) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c, cleanup, err := newCluster(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := c.initdb(ctx, opts); err != nil {
		cleanup()
		return nil, err
	}
	if !opts.NoStart {
		if err := c.Start(ctx); err != nil {
			cleanup()
			return nil, err
		}
	}
	return c, nil
}

// newCluster prepares the directory and the Cluster value, without a data
// directory. cleanup stops the server and removes what was made.
func newCluster(dir string, opts Options) (*Cluster, func(), error) {
	server, err := ServerFor(opts.Major)
	if err != nil {
		return nil, nil, err
	}
	owner, err := lookupServerUser()
	if err != nil {
		return nil, nil, err
	}
	made := dir == ""
	if made {
		dir, err = makeServerDir(owner, "walgate-pgtest-")
	} else {
		err = prepareServerDir(owner, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Cluster, func(), error) {
		if made {
			os.RemoveAll(dir)
		}
		return nil, nil, err
	}
	if len(dir)+len("/.s.PGSQL.65535") > 107 {
		return fail(fmt.Errorf("pgtest: directory %s is too long to hold the server's Unix socket (107 bytes max)", dir))
	}
	port, err := FreePort()
	if err != nil {
		return fail(err)
	}
	c := &Cluster{
		Dir:     dir,
		DataDir: filepath.Join(dir, dataDirName),
		LogFile: filepath.Join(dir, logFileName),
		Port:    port,
		Env:     append([]string(nil), opts.Env...),
		owner:   owner,
		server:  server,
		fsync:   opts.Fsync,
		conf:    append([]string(nil), opts.Conf...),
	}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c.Stop(ctx) != nil {
			c.Kill(ctx)
		}
		if made {
			os.RemoveAll(dir)
		} else {
			os.RemoveAll(c.DataDir)
		}
	}
	return c, cleanup, nil
}

func registerCleanup(t testing.TB, c *Cluster) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: cluster %s (port %d): last lines of %s:\n%s", c.Dir, c.Port, c.LogFile, c.LogTail(60))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("pgtest: cleanup: %v", err)
			if err := c.Kill(ctx); err != nil {
				t.Errorf("pgtest: cleanup: %v", err)
			}
		}
		if t.Failed() && os.Getenv("PGTEST_KEEP") != "" {
			t.Logf("pgtest: PGTEST_KEEP is set: keeping %s", c.Dir)
			return
		}
		if err := c.Remove(); err != nil {
			t.Errorf("pgtest: cleanup: %v", err)
		}
	})
}

func (c *Cluster) initdb(ctx context.Context, opts Options) error {
	seg := opts.WALSegmentSizeMB
	if seg == 0 {
		seg = 16
	}
	args := []string{
		"-D", c.DataDir, "-U", "postgres", "--auth=trust",
		"--locale=C", "--encoding=UTF8", "--wal-segsize=" + strconv.Itoa(seg),
		"--no-sync",
	}
	if c.server.Major >= 14 {
		args = append(args, "--no-instructions")
	}
	if opts.DataChecksums {
		args = append(args, "--data-checksums")
	}
	if _, err := c.runServer(ctx, "initdb", args...); err != nil {
		return err
	}
	if err := c.ensureInclude(); err != nil {
		return err
	}
	return c.writeConf()
}

// ensureInclude makes postgresql.conf end by including the helper's file.
func (c *Cluster) ensureInclude() error {
	path := filepath.Join(c.DataDir, "postgresql.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if strings.Contains(string(b), "\n"+includeLine+"\n") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Added by walgate pgtest: its settings and the test's own.\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: append to %s: %w", path, err)
	}
	return nil
}

// writeConf rewrites the helper's settings file from the cluster's fields.
func (c *Cluster) writeConf() error {
	fsync := "off"
	if c.fsync {
		fsync = "on"
	}
	var b strings.Builder
	b.WriteString("# Written by walgate pgtest; rewritten whole on every change.\n")
	fmt.Fprintf(&b, "listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", c.Port)
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", QuoteConf(c.Dir))
	fmt.Fprintf(&b, "fsync = %s\n", fsync)
	b.WriteString("timezone = 'UTC'\nlog_timezone = 'UTC'\n")
	b.WriteString("logging_collector = off\nlog_line_prefix = '%m [%p] '\n")
	if len(c.recovery) > 0 {
		b.WriteString("\n# Recovery from a base backup.\narchive_mode = off\n")
		for _, l := range c.recovery {
			b.WriteString(l + "\n")
		}
	}
	if len(c.conf) > 0 {
		b.WriteString("\n# Options.Conf and AppendConf.\n")
		for _, l := range c.conf {
			b.WriteString(l + "\n")
		}
	}
	return c.writeServerFile(filepath.Join(c.DataDir, confFileName), b.String(), 0o600)
}

// AppendConf adds settings after all others; they take effect at the next
// Reload or Restart, as PostgreSQL decides for each setting.
func (c *Cluster) AppendConf(lines ...string) error {
	c.conf = append(c.conf, lines...)
	return c.writeConf()
}

// QuoteConf quotes s as a postgresql.conf string value.
func QuoteConf(s string) string { return pgctl.QuoteConf(s) }

func (c *Cluster) writeServerFile(path, content string, perm os.FileMode) error {
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := c.owner.Chown(path); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// serverEnv is the environment of server-side commands.
func (c *Cluster) serverEnv() []string {
	env := append(baseEnv(c.Dir), c.server.env()...)
	return append(env, c.Env...)
}

// clientEnv is the environment of client programs: libpq pointed at the
// cluster.
func (c *Cluster) clientEnv() []string {
	return append(baseEnv(c.Dir),
		"PGHOST=127.0.0.1",
		"PGPORT="+strconv.Itoa(c.Port),
		"PGUSER=postgres",
		"PGDATABASE=postgres",
		"PGSSLMODE=disable",
		"PGCONNECT_TIMEOUT=10",
	)
}

// runServer runs a program of the cluster's server build as the server
// user.
func (c *Cluster) runServer(ctx context.Context, program string, args ...string) (string, error) {
	return c.owner.run(ctx, command{
		asServer: true, dir: c.Dir, env: c.serverEnv(),
		program: filepath.Join(c.server.BinDir, program), args: args,
	})
}

// runClient runs a program from BinDir as ourselves, connected to the cluster.
func (c *Cluster) runClient(ctx context.Context, program string, args ...string) (string, error) {
	return c.owner.run(ctx, command{
		dir: c.Dir, env: c.clientEnv(),
		program: filepath.Join(BinDir, program), args: args,
	})
}

// Start starts the server and waits until it accepts connections (or, when
// recovering, until it is consistent and read-only connections work, or
// until it shut down at its recovery target). If the port was taken
// meanwhile, it moves to a free one and tries again. The error carries
// pg_ctl's output and the server log of this attempt.
func (c *Cluster) Start(ctx context.Context) error {
	if err := validateEnv(c.Env); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		off := c.logSize()
		c.startLog = off
		_, err := c.runServer(ctx, "pg_ctl", "-D", c.DataDir, "-l", c.LogFile, "-w", "-t", pgCtlTimeout(ctx), "start")
		if err == nil {
			return nil
		}
		log := c.logSince(off)
		if strings.Contains(log, "shutdown at recovery target") && !c.Running() {
			return nil // recovery_target_action = shutdown, reached before pg_ctl saw it up
		}
		if attempt < 3 && pgctl.PortTaken(log) && !c.Running() {
			port, perr := FreePort()
			if perr == nil {
				c.Port = port
				if werr := c.writeConf(); werr == nil {
					continue
				}
			}
		}
		return fmt.Errorf("pgtest: start cluster %s on port %d: %w%s", c.Dir, c.Port, err, section("server log", tailLines(log, 40)))
	}
}

// Stop shuts the server down in fast mode (clients disconnected, shutdown
// checkpoint, WAL archived as far as the archiver gets) and waits. Stopping
// a stopped cluster is not an error.
func (c *Cluster) Stop(ctx context.Context) error {
	return c.stop(ctx, "fast")
}

// Kill stops the server in immediate mode: no shutdown checkpoint, so the
// next Start runs crash recovery, as after a power cut minus the lost page
// cache.
func (c *Cluster) Kill(ctx context.Context) error {
	return c.stop(ctx, "immediate")
}

func (c *Cluster) stop(ctx context.Context, mode string) error {
	if !c.Running() {
		return nil
	}
	if _, err := c.runServer(ctx, "pg_ctl", "-D", c.DataDir, "-m", mode, "-w", "-t", pgCtlTimeout(ctx), "stop"); err != nil {
		return fmt.Errorf("pgtest: stop (%s) cluster %s: %w%s", mode, c.Dir, err, section("server log", c.LogTail(20)))
	}
	return nil
}

// Restart stops the server (fast) and starts it again, with the current
// Env and settings.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx)
}

// Reload makes the running server reread its settings (pg_ctl reload).
// The environment cannot change this way; see Restart.
func (c *Cluster) Reload(ctx context.Context) error {
	if _, err := c.runServer(ctx, "pg_ctl", "-D", c.DataDir, "reload"); err != nil {
		return fmt.Errorf("pgtest: reload cluster %s: %w", c.Dir, err)
	}
	return nil
}

// Running reports whether the postmaster named in postmaster.pid is alive.
func (c *Cluster) Running() bool { return pgctl.Running(c.DataDir) }

// WaitReady waits until a connection and "SELECT 1" succeed. It fails at
// once, with the log tail, if the server is not running.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		if !c.Running() {
			return fmt.Errorf("pgtest: cluster %s is not running%s", c.Dir, section("server log", c.LogTail(30)))
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.QueryString(qctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: cluster %s not ready: %w (last error: %v)%s", c.Dir, ctx.Err(), err, section("server log", c.LogTail(30)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Remove deletes the cluster's directory. The server must be stopped.
func (c *Cluster) Remove() error {
	if c.Running() {
		return fmt.Errorf("pgtest: remove %s: server still running; Stop it first", c.Dir)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("pgtest: remove cluster: %w", err)
	}
	return nil
}

// LogTail returns the last n lines of the server log.
func (c *Cluster) LogTail(n int) string {
	return tailLines(c.logSince(0), n)
}

func (c *Cluster) logSize() int64 { return pgctl.LogSize(c.LogFile) }

func (c *Cluster) logSince(off int64) string {
	log, err := pgctl.LogSince(c.LogFile, off)
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	return log
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Start moves to another port if it was taken in between.
func FreePort() (int, error) {
	port, err := pgctl.FreePort()
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	return port, nil
}
