package pgctl

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Running reports whether the postmaster named in dataDir's
// postmaster.pid is alive.
func Running(dataDir string) bool {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago; a
// start that finds it taken moves to another.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LogSize is the size of the server log at path, 0 if unreadable: the
// offset to read from after the next start.
func LogSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogSince returns the server log at path from offset off on (all of it
// if the log is now shorter: it was replaced).
func LogSince(path string, off int64) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:]), nil
}

// PortTaken reports whether a server log says the server could not
// listen because its port was taken.
func PortTaken(log string) bool {
	return strings.Contains(log, "Address already in use")
}
