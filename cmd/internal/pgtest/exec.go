package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/walgate/walgate/client/pgctl"
)

// BinDir holds the PostgreSQL 15 programs (Debian package postgresql-15).
const BinDir = "/usr/lib/postgresql/15/bin"

// ServerUserName is the OS account servers run as when the caller is root.
const ServerUserName = "postgres"

// requiredPrograms are the PostgreSQL programs this package runs.
var requiredPrograms = []string{"initdb", "pg_ctl", "postgres", "psql", "pgbench", "pg_basebackup", "pg_controldata"}

// installHint ends every "missing prerequisite" error.
const installHint = "install them as root with .ci/install-deps.sh (Debian 12: apt-get install postgresql-15)"

// Available reports whether real clusters can be run here: the PostgreSQL
// 15 programs in BinDir and, when running as root, the postgres OS user and
// runuser. The error lists everything missing and how to install it. Tests
// must fail, not skip, on this error.
func Available() error {
	var missing []string
	for _, p := range requiredPrograms {
		fi, err := os.Stat(filepath.Join(BinDir, p))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, filepath.Join(BinDir, p))
		}
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup(ServerUserName); err != nil {
			missing = append(missing, fmt.Sprintf("OS user %q (PostgreSQL refuses to run as root)", ServerUserName))
		}
		if _, err := pgctl.RunuserPath(); err != nil {
			missing = append(missing, "runuser (package util-linux)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pgtest: real PostgreSQL 15 clusters cannot run here; missing: %s; %s",
			strings.Join(missing, ", "), installHint)
	}
	return nil
}

// serverUser is the OS account that owns cluster files and runs the server.
type serverUser struct{ pgctl.Account }

func lookupServerUser() (serverUser, error) {
	a, err := pgctl.LookupAccount(ServerUserName)
	switch {
	case errors.Is(err, pgctl.ErrNoRunuser):
		return serverUser{}, fmt.Errorf("pgtest: %w; %s", err, installHint)
	case err != nil:
		return serverUser{}, fmt.Errorf("pgtest: look up OS user %q: %w; %s", ServerUserName, err, installHint)
	}
	return serverUser{a}, nil
}

// baseEnv is the whole environment of every command this package runs,
// before Options.Env and the libpq variables are added.
func baseEnv(home string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"LC_ALL=C",
		"TZ=UTC",
	}
}

// command describes one program run.
type command struct {
	asServer bool     // run as the server user (initdb, pg_ctl); else as ourselves
	dir      string   // working directory; must be reachable by the server user
	env      []string // the complete environment
	program  string   // absolute path
	args     []string
}

// run runs cmd and returns its stdout. The error names the command and
// carries its stdout and stderr. Cancelling ctx kills the command's process
// group; a postmaster started by pg_ctl has its own session and survives.
func (u serverUser) run(ctx context.Context, c command) (string, error) {
	program, args, env := c.program, c.args, c.env
	runner := u.Account
	if !c.asServer {
		runner = pgctl.Account{} // ourselves
	} else if u.Runuser != "" {
		// runuser keeps most of root's environment; "env -i" replaces it
		// with exactly c.env.
		program, args = "/usr/bin/env", append(append(append([]string{"-i"}, c.env...), c.program), c.args...)
		env = baseEnv(c.dir)
	}
	cmd := runner.Command(ctx, program, args...)
	cmd.Env = env
	cmd.Dir = c.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return stdout.String(), fmt.Errorf("pgtest: %s %s: %w%s%s",
			filepath.Base(c.program), strings.Join(c.args, " "), err,
			section("stdout", stdout.String()), section("stderr", stderr.String()))
	}
	return stdout.String(), nil
}

// section formats command output for an error message, or "" when empty.
func section(name, text string) string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return ""
	}
	return "\n--- " + name + " ---\n" + text
}

// pgCtlTimeout turns ctx's deadline into pg_ctl's -t seconds.
func pgCtlTimeout(ctx context.Context) string {
	secs := 120
	if d, ok := ctx.Deadline(); ok {
		secs = int(time.Until(d)/time.Second) + 1
		if secs < 1 {
			secs = 1
		}
	}
	return strconv.Itoa(secs)
}
