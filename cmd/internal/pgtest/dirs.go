package pgtest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SharedDir returns a new empty directory that the server user owns and
// this process can use too, for things both sides touch: a WAL archive for
// "cp %p <dir>/%f", a file archive_command writes, a gateway's spool. It is
// removed at cleanup.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := MakeSharedDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("PGTEST_KEEP") != "" {
			t.Logf("pgtest: PGTEST_KEEP is set: keeping %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// MakeSharedDir is SharedDir for callers without a testing.TB; they remove
// the directory themselves.
func MakeSharedDir() (string, error) {
	owner, err := lookupServerUser()
	if err != nil {
		return "", err
	}
	return makeServerDir(owner, "walgate-pgtest-shared-")
}

// makeServerDir makes a fresh directory, mode 0755 and owned by the server
// user, under os.TempDir(), or under /tmp when the server user cannot reach
// os.TempDir() (TMPDIR under /root, say).
func makeServerDir(owner serverUser, pattern string) (string, error) {
	bases := []string{os.TempDir()}
	if bases[0] != "/tmp" {
		bases = append(bases, "/tmp")
	}
	var errs []string
	for _, base := range bases {
		dir, err := os.MkdirTemp(base, pattern)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := prepareServerDir(owner, dir); err != nil {
			os.RemoveAll(dir)
			errs = append(errs, err.Error())
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("pgtest: cannot make a directory for the server: %s", strings.Join(errs, "; "))
}

// prepareServerDir makes dir (if needed) empty, mode 0755, owned by the
// server user, and checks that the server user can really write in it:
// every parent directory must be searchable by that user.
func prepareServerDir(owner serverUser, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("pgtest: directory %s is not empty", dir)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := owner.Chown(dir); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if owner.Runuser == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = owner.run(ctx, command{
		asServer: true, dir: "/", env: baseEnv("/"),
		program: "/usr/bin/test", args: []string{"-w", dir},
	})
	if err != nil {
		return fmt.Errorf("pgtest: OS user %s cannot write in %s (is a parent directory closed to others?): %w",
			ServerUserName, dir, err)
	}
	return nil
}

// InstallExecutable copies the program at src into the cluster directory
// with mode 0755 and returns its new path, which the server user can run:
// use it in archive_command and restore_command. The file stays owned by
// this process, so the server cannot change it.
func (c *Cluster) InstallExecutable(src string) (string, error) {
	dst := filepath.Join(c.Dir, filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("pgtest: install executable: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(c.Dir, ".install-*")
	if err != nil {
		return "", fmt.Errorf("pgtest: install executable: %w", err)
	}
	_, err = io.Copy(tmp, in)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("pgtest: install executable %s: %w", src, err)
	}
	return dst, nil
}

// copyTree copies the directory src to dst (which must not exist), keeping
// permission bits and symbolic links, and gives every copy to owner.
func copyTree(owner serverUser, src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(target, mode.Perm()|0o700); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := copyFile(path, target, mode.Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported file type %v", path, mode.Type())
		}
		return owner.Chown(target)
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
