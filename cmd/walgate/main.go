// Command walgate is the gateway daemon and its admin verbs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `walgate: the WAL and backup gateway for PostgreSQL.

Usage:
  walgate serve --data DIR [--listen 127.0.0.1:7480]   run the gateway (embedded defaults)
  walgate serve --config FILE                          run the gateway from a YAML config
  walgate token add --data DIR --cluster NAME --scope push,fetch
                                                       print a new token for a database host
  walgate token add --data DIR --all-clusters --scope admin [--expires 90d]
                                                       a fleet-wide admin token (dashboard, every cluster)
  walgate token list --data DIR                        list tokens (IDs, clusters, scopes, expiry, successor)
  walgate token revoke --data DIR ID                   revoke a token by its ID
  walgate token rotate --data DIR ID [--grace 24h]     print a successor; the old token works until the grace ends
  walgate status --data DIR [--json] [--backends|--tokens]
                                                       per cluster: WAL, backups, last drill; per backend: replication;
                                                       tokens expiring within 14 days
  walgate lifecycle plan [--cluster NAME] [--json] (--config FILE | --data DIR)
                                                       what tiering and retention would move and delete (dry run)
  walgate lifecycle apply --confirm [--cluster NAME]   carry the lifecycle plan out
  walgate backend check NAME --config FILE             try a configured backend: what works, what does not
  walgate index rebuild --from NAME [-c FILE|--data DIR]
                                                       rebuild the catalog from one backend (gateway stopped)
  walgate cert init DIR [--host NAME ...]              make a trial CA, server and client certificate
  walgate version

Run 'walgate VERB --help' for a verb's flags.

Exit codes: 0 success; 1 failure (the message says what); 2 usage or configuration error;
3 lifecycle apply: done, but the guard rails kept deletions back for some clusters.
`

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(args[1:], stderr)
	case "token":
		err = runToken(args[1:], stdout, stderr)
	case "status":
		err = runStatus(args[1:], stdout, stderr)
	case "backend":
		err = runBackend(args[1:], stdout, stderr)
	case "cert":
		err = runCert(args[1:], stdout, stderr)
	case "index":
		err = runIndex(args[1:], stdout, stderr)
	case "lifecycle":
		err = runLifecycle(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "walgate", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "walgate: unknown verb %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "walgate:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// newFlags makes a verb's flag set that prints its help to stderr.
func newFlags(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2, err: err}
	}
	return nil
}
