package fs

import "golang.org/x/sys/unix"

// errNoAttr is what reading a missing extended attribute fails with.
const errNoAttr = unix.ENOATTR

// fsync flushes fd to stable storage. On macOS fsync(2) only reaches the
// drive's cache; F_FULLFSYNC is what os.File.Sync uses too.
func fsync(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0)
	return err
}
