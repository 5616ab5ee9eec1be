// Command walgate-client runs on a PostgreSQL host: it archives WAL through
// a walgate gateway (archive_command) and restores it (restore_command).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/walgate/walgate/client"
)

// Exit codes. PostgreSQL treats any non-zero code of restore_command below
// 126 as "file not available" (archive recovery ends there), and retries
// archive_command on any failure; wal-fetch therefore answers 0, 74 or
// exitStopRecovery (see walfetch.go).
const (
	exitOK          = 0
	exitUnavailable = 1  // gateway unreachable or failing; retry later
	exitUsage       = 2  // bad arguments or configuration
	exitAuth        = 3  // token refused, scope missing, certificate not trusted
	exitIntegrity   = 4  // hash mismatch, wrong key, tampered or corrupt data
	exitConflict    = 5  // wal-push: archived before with different content
	exitRejected    = 6  // request refused as invalid, or a local file problem
	exitDrillFailed = 7  // drill: the restore drill ran and failed; its report was sent
	exitWALVerify   = 8  // wal-verify: the archive cannot restore the newest backup to now
	exitNotFound    = 74 // wal-fetch: not archived (WAL-G uses 74 too)
)

func usage() string {
	var b strings.Builder
	b.WriteString(`walgate-client: archive and restore PostgreSQL WAL through a walgate gateway.

Usage (in postgresql.conf):
  archive_command = 'walgate-client wal-push %p'
  restore_command = 'walgate-client wal-fetch %f %p'

Verbs:
  wal-push PATH         compress, encrypt and archive one WAL file; exits 0 only
                        when the gateway acknowledged it durably, hash verified
  wal-fetch NAME DEST   restore WAL file NAME to DEST; DEST appears complete and
                        verified, or not at all. Exits 0 (restored), 74 (the
                        gateway's catalog has no such file: recovery ends here)
                        or 200 (anything else: recovery stops with FATAL rather
                        than end early); on a standby (standby.signal in the
                        working directory, which is the data directory
                        PostgreSQL runs it in) an unreachable gateway exits 1
  backup-push PGDATA [--full|--delta] [--permanent] [--fail-on-corrupt-pages]
                        take a base backup of the local cluster (PG* variables
                        say how to connect): tar partitions compressed and
                        encrypted here, several at once; visible only when all
                        are stored and verified. A delta (WALGATE_DELTA_MAX_STEPS
                        > 0, or --delta) stores only the pages changed since its
                        parent, found by a page-LSN scan on this host (on
                        PostgreSQL 17+ with summarize_wal = on, from its WAL
                        summaries); --permanent: retention never deletes it.
                        PostgreSQL 13 to 18; refuses a standby, wal_level =
                        minimal and archive_mode = off
  backup-list [--json]  list the cluster's committed backups, oldest first, with
                        each delta's parent, chain depth and stored size
  backup-fetch DIR NAME|LATEST [--recovery [--target-time T | --target-lsn L]]
               [--tablespace OID=DIR]... [--pg-bin DIR]
                        restore a backup into DIR (empty or missing), every
                        object verified; tablespaces go where they were unless
                        moved with --tablespace; --recovery writes
                        recovery.signal and restore_command through this program
                        (a target promotes when reached); on failure DIR is left
                        as it was; --pg-bin: refuse, before writing, a backup
                        of another PostgreSQL major than the server programs
                        in DIR. WALGATE_DOWNLOAD_CONCURRENCY
                        [WALG_DOWNLOAD_CONCURRENCY] parts at once (default 4)
  drill [NAME|LATEST] [--target-time T] [--check-sql FILE] [--keep]
        [--timeout D] [--pg-bin DIR]
                        restore drill: fetch into a scratch directory (under
                        WALGATE_DRILL_DIR or $TMPDIR), recover with a private
                        PostgreSQL, check every database (amcheck where
                        installed) and run FILE, then stop, clean up and send the
                        report to the gateway; exit 7 if the drill failed,
                        also when recovery (without --target-time) ended
                        short of the newest archived segment or timeline
  wal-verify [--json] [--no-db]
                        can the archive restore the newest backup to now? WAL
                        gaps per timeline (delayed or lost), stalls, segments
                        still waiting on this host; exit 8 when it cannot
  wal-verify --keys [--json]
                        WAL and backups per encryption key (by fingerprint);
                        what still needs each of WALGATE_ENCRYPTION_OLD_KEYS
  delete retain [FULL] N | delete before NAME [--confirm] [--json]
                        delete older backups and the WAL only they needed,
                        through the gateway's retention guard rails; needs a
                        token with the admin scope; without --confirm it only
                        says what would go (see delete --help)
  check                 check URL, TLS and token against every gateway of
                        WALGATE_URL; fails only when none works
  version

Configuration (environment; WAL-G's names in brackets are read too):
`)
	for _, v := range client.EnvVars {
		name := v.Name
		if v.Also != "" {
			name += " [" + v.Also + "]"
		}
		def := ""
		if v.Default != "" {
			def = " (default: " + v.Default + ")"
		}
		fmt.Fprintf(&b, "  %s\n      %s%s\n", name, v.Help, def)
	}
	b.WriteString(`
Exit codes:
  0   success
  1   gateway unreachable or failing: retry later; wal-fetch only on a standby
      (standby.signal), which retries by itself
  2   usage or configuration error: fix the command or the environment
  3   not authorised: token refused, scope missing, or gateway certificate not trusted
  4   integrity failure: hash mismatch, wrong key, tampered or corrupt data
  5   wal-push: this name was archived before with different content; nothing overwritten;
      delete: the gateway's guard rails refused the deletion; nothing deleted
  6   request rejected as invalid, or a local file could not be read or written
  7   drill: the restore drill ran and failed (its report was sent to the gateway)
  74  wal-fetch: the gateway's catalog has no such file (normal at the end of
      recovery: PostgreSQL ends archive recovery and promotes)
  200 wal-fetch: the file may be archived but could not be restored (gateway
      unreachable after retries, every copy damaged, token or TLS refused,
      configuration or local write error); above 125, so PostgreSQL stops
      recovery with FATAL instead of promoting early. Fix the cause and start
      PostgreSQL again. Codes 2-6 are not used by wal-fetch.
`)
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one verb. environ is the whole environment (os.Environ), in
// which unknown WALGATE_* names are refused (client.CheckEnvironment).
func run(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	verb, args := args[0], args[1:]
	for _, a := range args {
		if a == "-h" || a == "--help" {
			fmt.Fprint(stdout, usage())
			return exitOK
		}
	}
	switch verb {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, "walgate-client", client.Version)
		return exitOK
	case "wal-push":
		if len(args) != 1 {
			return fail(stderr, "wal-push", usageError("wal-push takes one argument, the WAL file path (%%p)"))
		}
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runWALPush(ctx, c, args[0], getenv) })
	case "wal-fetch":
		// PostgreSQL runs restore_command in the data directory.
		dataDir, err := os.Getwd()
		if err != nil {
			dataDir = "."
		}
		return runWALFetch(ctx, args, getenv, environ, dataDir, stderr)
	case "wal-prefetch":
		return runWALPrefetch(ctx, args, getenv, environ, stderr)
	case "backup-push":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runBackupPush(ctx, c, args, getenv, stderr) })
	case "backup-fetch":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runBackupFetch(ctx, c, args, getenv, stdout, stderr) })
	case "backup-list":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runBackupList(ctx, c, args, stdout) })
	case "drill":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runDrill(ctx, c, args, getenv, stdout, stderr) })
	case "wal-verify":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runWALVerify(ctx, c, args, stdout, stderr) })
	case "check":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runCheck(ctx, c, stdout) })
	case "delete":
		return withClient(stderr, verb, getenv, environ, func(c *client.Client) error { return runDelete(ctx, c, args, stdout, stderr) })
	}
	fmt.Fprintf(stderr, "walgate-client: unknown verb %q\n\n%s", verb, usage())
	return exitUsage
}

func withClient(stderr io.Writer, verb string, getenv func(string) string, environ []string, fn func(*client.Client) error) int {
	if err := client.CheckEnvironment(environ); err != nil {
		return fail(stderr, verb, err)
	}
	cfg, err := client.LoadConfig(getenv)
	if err != nil {
		return fail(stderr, verb, err)
	}
	c, err := client.New(cfg)
	if err != nil {
		return fail(stderr, verb, err)
	}
	defer c.Close()
	return fail(stderr, verb, fn(c))
}

type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error { return &usageErr{fmt.Sprintf(format, args...)} }

// exitCode maps an error to its documented exit code.
func exitCode(err error) int {
	var ue *usageErr
	var df *drillFailedError
	var wv *walVerifyFailed
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &df):
		return exitDrillFailed
	case errors.As(err, &wv):
		return exitWALVerify
	case errors.As(err, &ue), client.IsConfigError(err):
		return exitUsage
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case errors.Is(err, client.ErrAuth):
		return exitAuth
	case errors.Is(err, client.ErrIntegrity):
		return exitIntegrity
	case errors.Is(err, client.ErrConflict):
		return exitConflict
	case errors.Is(err, client.ErrRejected):
		return exitRejected
	}
	return exitUnavailable
}

// fail prints one line for err and returns its exit code.
func fail(stderr io.Writer, verb string, err error) int {
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "walgate-client %s: %v (exit %d)\n", verb, err, code)
	}
	return code
}
