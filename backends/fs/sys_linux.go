package fs

import "golang.org/x/sys/unix"

// errNoAttr is what reading a missing extended attribute fails with.
const errNoAttr = unix.ENODATA

// fsync flushes fd to stable storage.
func fsync(fd int) error {
	for {
		err := unix.Fsync(fd)
		if err != unix.EINTR {
			return err
		}
	}
}
