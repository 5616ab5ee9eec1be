package pgctl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoRunuser: we are root and runuser (util-linux), which runs the
// server as another account, is not installed.
var ErrNoRunuser = errors.New("runuser not found")

// Account is the OS account that owns a server's files and runs it.
type Account struct {
	Name     string // "" when we run the server as ourselves
	UID, GID int
	Runuser  string // path of runuser when we are root and switch to Name; "" otherwise
}

// RunuserPath finds runuser in PATH or its usual places.
func RunuserPath() (string, error) {
	if p, err := exec.LookPath("runuser"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/runuser", "/sbin/runuser"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoRunuser
}

// LookupAccount returns ourselves when we are not root, else the OS
// account name, which the server then runs as through runuser. A missing
// runuser is ErrNoRunuser.
func LookupAccount(name string) (Account, error) {
	if os.Geteuid() != 0 {
		return Account{UID: os.Geteuid(), GID: os.Getegid()}, nil
	}
	uid, gid, err := lookupUser(name)
	if err != nil {
		return Account{}, err
	}
	ru, err := RunuserPath()
	if err != nil {
		return Account{}, err
	}
	return Account{Name: name, UID: uid, GID: gid, Runuser: ru}, nil
}

// lookupUser finds the OS account name's uid and gid: through os/user,
// which in walgate-client's static build (no cgo) reads only /etc/passwd,
// and when that does not know the name through "getent passwd", which asks
// every source nsswitch.conf names (LDAP, SSSD).
func lookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err == nil {
		return parseIDs(name, u.Uid, u.Gid)
	}
	if uid, gid, gerr := lookupGetent(name); gerr == nil {
		return uid, gid, nil
	}
	return 0, 0, err
}

// lookupGetent asks "getent passwd name".
func lookupGetent(name string) (uid, gid int, err error) {
	out, err := exec.Command("getent", "passwd", name).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("getent passwd %s: %v", name, err)
	}
	return parseGetentPasswd(name, string(out))
}

// parseGetentPasswd reads the uid and gid of name from a passwd line
// (name:password:uid:gid:gecos:home:shell) as getent prints it.
func parseGetentPasswd(name, out string) (uid, gid int, err error) {
	line, _, _ := strings.Cut(out, "\n")
	f := strings.Split(line, ":")
	if len(f) < 4 || f[0] != name {
		return 0, 0, fmt.Errorf("getent passwd %s: unexpected output %q", name, line)
	}
	return parseIDs(name, f[2], f[3])
}

func parseIDs(name, uidText, gidText string) (uid, gid int, err error) {
	uid, err1 := strconv.Atoi(uidText)
	gid, err2 := strconv.Atoi(gidText)
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("OS user %s has a non-numeric uid/gid %q/%q", name, uidText, gidText)
	}
	return uid, gid, nil
}

// Chown gives path (not what it points to) to the account; a no-op when
// we are the account.
func (a Account) Chown(path string) error {
	if a.Runuser == "" {
		return nil
	}
	return os.Lchown(path, a.UID, a.GID)
}

// ChownTree gives path and everything under it to the account.
func (a Account) ChownTree(path string) error {
	if a.Runuser == "" {
		return nil
	}
	return filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, a.UID, a.GID)
	})
}

// Command runs program as the account (through runuser, which keeps the
// environment but for HOME, SHELL, USER and LOGNAME) in its own process
// group: cancelling ctx kills the group. A postmaster started by pg_ctl
// has its own session and survives. The caller sets Env and Dir.
func (a Account) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if a.Runuser != "" {
		cmd = exec.CommandContext(ctx, a.Runuser, append([]string{"-u", a.Name, "--", program}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, program, args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
