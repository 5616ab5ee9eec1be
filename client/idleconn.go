package client

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
)

// idleConn fails a connection only when it makes no progress for idle
// (WALGATE_TIMEOUT): no byte read, none written, and none of what was
// written leaving the kernel's send queue. However long a transfer takes
// on a slow link, it is never cut while it moves; a gateway or link that
// stalls is detected within idle, in either direction and while the
// client waits for the answer to a body it has sent (the last bytes of
// which may still be queued in the kernel when the last write returns).
type idleConn struct {
	net.Conn
	idle time.Duration
	// last is when the connection last made progress (UnixNano).
	last atomic.Int64
	// queued is the send queue's length when last sampled (-1: unknown).
	queued atomic.Int64
}

func newIdleConn(c net.Conn, idle time.Duration) *idleConn {
	ic := &idleConn{Conn: c, idle: idle}
	ic.moved()
	ic.queued.Store(-1)
	return ic
}

// errNoProgress is the failure of a connection that made no progress for
// WALGATE_TIMEOUT. It is a timeout (net.Error).
type errNoProgress struct{ idle time.Duration }

func (e *errNoProgress) Error() string {
	return fmt.Sprintf("no progress on the connection for %s (WALGATE_TIMEOUT): the gateway or the network stalled", e.idle)
}
func (e *errNoProgress) Timeout() bool   { return true }
func (e *errNoProgress) Temporary() bool { return true }

// idleTick is how often a blocked read or write checks for progress.
func (c *idleConn) tick() time.Duration { return max(c.idle/4, 10*time.Millisecond) }

func (c *idleConn) moved() { c.last.Store(time.Now().UnixNano()) }

// stalled reports whether the connection made no progress for idle. A
// send queue shorter than at the last look counts as progress: the peer
// is taking what was written.
func (c *idleConn) stalled() bool {
	if q := protocol.SendQueue(c.Conn); q >= 0 {
		if prev := c.queued.Swap(int64(q)); prev >= 0 && int64(q) < prev {
			c.moved()
		}
	}
	return time.Since(time.Unix(0, c.last.Load())) >= c.idle
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *idleConn) Read(p []byte) (int, error) {
	for {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.tick()))
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.moved()
			return n, err
		}
		if err == nil {
			continue
		}
		if !isTimeout(err) {
			return n, err
		}
		if c.stalled() {
			return n, &errNoProgress{idle: c.idle}
		}
	}
}

func (c *idleConn) Write(p []byte) (int, error) {
	done := 0
	for {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.tick()))
		n, err := c.Conn.Write(p[done:])
		done += n
		if n > 0 {
			c.moved()
			c.queued.Store(int64(protocol.SendQueue(c.Conn)))
		}
		if err == nil || done == len(p) {
			return done, err
		}
		if !isTimeout(err) {
			return done, err
		}
		if c.stalled() {
			return done, &errNoProgress{idle: c.idle}
		}
	}
}
