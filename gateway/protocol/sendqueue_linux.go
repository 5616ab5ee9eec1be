package protocol

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// SendQueue is how many bytes written to c the peer has not acknowledged
// yet (TIOCOUTQ), or -1 when that cannot be known (c is not a socket).
// Both ends time a stream out only when it makes no progress, and a send
// queue that shrinks is progress: Linux wakes a writer blocked on a full
// send buffer only once a third of it has drained, which on a slow link
// takes longer than any sensible idle timeout.
func SendQueue(c net.Conn) int {
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
