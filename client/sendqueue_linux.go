package client

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendQueue is how many bytes written to c the peer has not acknowledged
// yet (TIOCOUTQ), or -1 when that cannot be known.
func sendQueue(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	q := -1
	if rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.TIOCOUTQ); err == nil {
			q = v
		}
	}) != nil {
		return -1
	}
	return q
}
