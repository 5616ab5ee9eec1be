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
	u, err := user.Lookup(name)
	if err != nil {
		return Account{}, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return Account{}, fmt.Errorf("OS user %s has a non-numeric uid/gid %q/%q", name, u.Uid, u.Gid)
	}
	ru, err := RunuserPath()
	if err != nil {
		return Account{}, err
	}
	return Account{Name: name, UID: uid, GID: gid, Runuser: ru}, nil
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
