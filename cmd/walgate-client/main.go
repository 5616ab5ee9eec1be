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
	"github.com/walgate/walgate/cmd/internal/cli"
	"github.com/walgate/walgate/cmd/internal/cpuprofile"
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
                        PostgreSQL, check every database (amcheck, created
                        in the copy) and run FILE, then stop, clean up and send the
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
	b.WriteString("\nFlags may come before or after a verb's arguments. 'walgate-client VERB --help'\nprints a verb's usage, flags and exit codes.\n\nExit codes:\n")
	for _, e := range clientExits {
		fmt.Fprintf(&b, "  %-3d %s\n", e.Code, e.Meaning)
	}
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	if len(os.Args) > 1 && os.Args[1] == "wal-push" {
		tuneGCForPush(os.Getenv)
	}
	stopProfile := cpuprofile.Start(os.Getenv("WALGATE_CPUPROFILE"))
	code := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
	stopProfile()
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
	// withClient runs fn with a client made from the environment; --help
	// runs it with none: every verb parses its command line before it
	// touches the client, so help needs no configuration.
	withClient := func(fn func(*client.Client) error) int {
		if cli.WantsHelp(args) {
			return fail(stderr, verb, fn(nil))
		}
		return runWithClient(stderr, verb, getenv, environ, fn)
	}
	switch verb {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return exitOK
	case "version", "--version":
		if _, err := cli.Parse(cli.NewFlags("walgate-client version"), versionHelp, args, stdout); err != nil {
			return fail(stderr, verb, err)
		}
		fmt.Fprintln(stdout, "walgate-client", client.Version)
		return exitOK
	case "wal-push":
		pos, err := cli.Parse(cli.NewFlags("walgate-client wal-push"), walPushHelp, args, stdout)
		if err == nil && len(pos) != 1 {
			err = usageError("wal-push takes one argument, the WAL file path (%%p)")
		}
		if err != nil {
			return fail(stderr, verb, err)
		}
		return withClient(func(c *client.Client) error { return runWALPush(ctx, c, pos[0], getenv) })
	case "wal-fetch":
		pos, err := cli.Parse(cli.NewFlags("walgate-client wal-fetch"), walFetchHelp, args, stdout)
		if errors.Is(err, cli.ErrHelp) {
			return exitOK
		}
		if err != nil {
			pos = args // wal-fetch answers PostgreSQL with its own codes
		}
		// PostgreSQL runs restore_command in the data directory.
		dataDir, err := os.Getwd()
		if err != nil {
			dataDir = "."
		}
		return runWALFetch(ctx, pos, getenv, environ, dataDir, stderr)
	case "wal-prefetch":
		return runWALPrefetch(ctx, args, getenv, environ, stderr)
	case "wal-push-ahead":
		return runWALPushAhead(ctx, args, getenv, environ, stderr)
	case "backup-push":
		return withClient(func(c *client.Client) error { return runBackupPush(ctx, c, args, getenv, stdout, stderr) })
	case "backup-fetch":
		return withClient(func(c *client.Client) error { return runBackupFetch(ctx, c, args, getenv, stdout, stderr) })
	case "backup-list":
		return withClient(func(c *client.Client) error { return runBackupList(ctx, c, args, stdout) })
	case "drill":
		return withClient(func(c *client.Client) error { return runDrill(ctx, c, args, getenv, stdout, stderr) })
	case "wal-verify":
		return withClient(func(c *client.Client) error { return runWALVerify(ctx, c, args, stdout, stderr) })
	case "check":
		return withClient(func(c *client.Client) error { return runCheck(ctx, c, args, stdout) })
	case "delete":
		return withClient(func(c *client.Client) error { return runDelete(ctx, c, args, stdout, stderr) })
	}
	hint := ""
	if s := cli.Closest(verb, clientVerbs); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	fmt.Fprintf(stderr, "walgate-client: unknown verb %q%s\n\n%s", verb, hint, usage())
	return exitUsage
}

// clientVerbs are the verbs a user types, for "did you mean".
var clientVerbs = []string{"wal-push", "wal-fetch", "backup-push", "backup-fetch", "backup-list", "drill", "wal-verify", "check", "delete", "version", "help"}

// runWithClient refuses unknown WALGATE_* names in environ
// (client.CheckEnvironment), then runs fn with a client made from getenv.
func runWithClient(stderr io.Writer, verb string, getenv func(string) string, environ []string, fn func(*client.Client) error) int {
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

type usageErr = cli.UsageError

func usageError(format string, args ...any) error { return cli.Usagef(format, args...) }

// exitCode maps an error to its documented exit code.
func exitCode(err error) int {
	var ue *usageErr
	var df *drillFailedError
	var wv *walVerifyFailed
	switch {
	case err == nil, errors.Is(err, cli.ErrHelp):
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
	if err != nil && !errors.Is(err, cli.ErrHelp) {
		fmt.Fprintf(stderr, "walgate-client %s: %v (exit %d)\n", verb, err, code)
	}
	return code
}
