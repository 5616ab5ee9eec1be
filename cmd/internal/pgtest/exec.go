package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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
		if _, err := runuserPath(); err != nil {
			missing = append(missing, "runuser (package util-linux)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pgtest: real PostgreSQL 15 clusters cannot run here; missing: %s; %s",
			strings.Join(missing, ", "), installHint)
	}
	return nil
}

func runuserPath() (string, error) {
	if p, err := exec.LookPath("runuser"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("runuser not found")
}

// serverUser is the OS account that owns cluster files and runs the server.
type serverUser struct {
	uid, gid int
	runuser  string // path of runuser when we are root and must switch user; "" otherwise
}

func lookupServerUser() (serverUser, error) {
	if os.Geteuid() != 0 {
		return serverUser{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(ServerUserName)
	if err != nil {
		return serverUser{}, fmt.Errorf("pgtest: look up OS user %q: %w; %s", ServerUserName, err, installHint)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return serverUser{}, fmt.Errorf("pgtest: OS user %q has non-numeric uid/gid %q/%q", ServerUserName, u.Uid, u.Gid)
	}
	ru, err := runuserPath()
	if err != nil {
		return serverUser{}, fmt.Errorf("pgtest: %w; %s", err, installHint)
	}
	return serverUser{uid: uid, gid: gid, runuser: ru}, nil
}

// chown gives path to the server user (a no-op when we are that user).
func (u serverUser) chown(path string) error {
	if u.runuser == "" {
		return nil
	}
	return os.Lchown(path, u.uid, u.gid)
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
	var cmd *exec.Cmd
	if c.asServer && u.runuser != "" {
		// runuser keeps most of root's environment; "env -i" replaces it
		// with exactly c.env.
		args := append([]string{"-u", ServerUserName, "--", "/usr/bin/env", "-i"}, c.env...)
		args = append(args, c.program)
		args = append(args, c.args...)
		cmd = exec.CommandContext(ctx, u.runuser, args...)
		cmd.Env = baseEnv(c.dir)
	} else {
		cmd = exec.CommandContext(ctx, c.program, c.args...)
		cmd.Env = c.env
	}
	cmd.Dir = c.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
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
