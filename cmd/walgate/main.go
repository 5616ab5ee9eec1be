// Command walgate is the gateway daemon and its admin verbs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/walgate/walgate/cmd/internal/cli"
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
  walgate index migrate --from-data DIR --config FLEET.yaml
                                                       copy a gateway's catalog into a fleet's PostgreSQL catalog
  walgate cert init DIR [--host NAME ...]              make a trial CA, server and client certificate
  walgate config check --config FILE [--connect]
                                                       check a config before a (re)start: keys, values, backends
  walgate version

Flags may come before or after a verb's arguments. Run 'walgate VERB --help'
(or 'walgate VERB SUB --help') for a verb's usage, flags and exit codes.

Exit codes: 0 success; 1 failure (the message says what); 2 usage or configuration error;
3 lifecycle apply: done, but the guard rails kept deletions back for some clusters;
index migrate and index rebuild: refused, the PostgreSQL catalog holds other data;
4 index migrate: copied, but the verification found a difference.
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

// Exit codes every verb shares.
var (
	exitSuccess = cli.ExitCode{Code: 0, Meaning: "success"}
	exitFailure = cli.ExitCode{Code: 1, Meaning: "failure: the message says what"}
	exitUsage   = cli.ExitCode{Code: 2, Meaning: "usage or configuration error: fix the command line or the config"}
	commonExits = []cli.ExitCode{exitSuccess, exitFailure, exitUsage}
)

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
		err = runServe(args[1:], stdout, stderr)
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
	case "config":
		err = runConfig(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "walgate", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		hint := ""
		if s := cli.Closest(args[0], verbs); s != "" {
			hint = fmt.Sprintf("; did you mean %q?", s)
		}
		fmt.Fprintf(stderr, "walgate: unknown verb %q%s\n\n%s", args[0], hint, usage)
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
	if cli.IsUsage(err) {
		return 2
	}
	return 1
}

// verbs are walgate's verbs, for "did you mean".
var verbs = []string{"serve", "token", "status", "backend", "cert", "index", "lifecycle", "config", "version", "help"}

// parseArgs parses a verb's command line, flags anywhere among its
// arguments, and returns the arguments; --help prints h on stdout and
// returns flag.ErrHelp (exit 0).
func parseArgs(fs *flag.FlagSet, h cli.Help, args []string, stdout io.Writer) ([]string, error) {
	return cli.Parse(fs, h, args, stdout)
}

// subVerb splits "VERB SUB ARGS...": with no SUB, or SUB asking for help,
// it prints h (on stdout for help, on stderr otherwise) and returns the
// error run maps to the exit code.
func subVerb(args []string, subs []string, h cli.Help, stdout, stderr io.Writer) (string, []string, error) {
	if len(args) == 0 {
		h.Write(stderr, nil)
		return "", nil, cli.Usagef("say which: %s", joinOr(subs))
	}
	if cli.WantsHelp(args[:1]) || args[0] == "help" {
		h.Write(stdout, nil)
		return "", nil, flag.ErrHelp
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	hint := ""
	if s := cli.Closest(args[0], subs); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	return "", nil, cli.Usagef("unknown sub-verb %q%s: use %s", args[0], hint, joinOr(subs))
}

func joinOr(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	out := ""
	for i, x := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " or "
		default:
			out += ", "
		}
		out += x
	}
	return out
}
