package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
)

// idleSend is a response body that the connection must keep taking: a
// download whose client stopped reading fails after limits.idle_timeout
// and frees its store reader, while one that keeps moving is never cut
// however long it takes (unless limits.write_timeout, which bounds a
// whole response and is off by default, is set: its end stays the
// latest deadline).
//
// Moving is either handing on bytes or the connection's send queue
// shrinking: a write blocked on a full send buffer is woken only once a
// third of it has drained, which with a buffer of some MiB on a slow link
// takes longer than the idle timeout. A watcher samples the queue every
// quarter of the idle timeout and moves the write deadline on while it
// shrinks. The deadline is cleared at the body's end, before the
// connection serves its next request.
type idleSend struct {
	rc    io.ReadCloser
	conn  net.Conn // where the deadline is set
	sock  net.Conn // the socket under TLS and the listener's wrapper
	idle  time.Duration
	until time.Time // limits.write_timeout's end (zero: none)
	eof   bool      // rc ended with the last bytes handed on

	mu     sync.Mutex
	done   bool        // the body ended or was closed: no deadline any more
	queued int         // the send queue at the watcher's last look (-1: unknown)
	watch  *time.Timer // the watcher, started by the first bytes
}

// sendBody streams rc as the response body with idleSend's deadlines.
func (s *Server) sendBody(conn net.Conn, rc io.ReadCloser) io.ReadCloser {
	if conn == nil || s.cfg.Limits.IdleTimeout <= 0 {
		return rc
	}
	b := &idleSend{rc: rc, conn: conn, sock: socketOf(conn), idle: s.cfg.Limits.IdleTimeout, queued: -1}
	if wt := s.cfg.Limits.WriteTimeout; wt > 0 {
		b.until = time.Now().Add(wt)
	}
	return b
}

// socketOf is the socket under a connection of the gateway's listener.
func socketOf(conn net.Conn) net.Conn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if lc, ok := conn.(*limitedConn); ok {
		conn = lc.Conn
	}
	return conn
}

func (b *idleSend) Read(p []byte) (int, error) {
	if b.eof {
		b.end()
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.mu.Lock()
		b.extend()
		if b.watch == nil && !b.done {
			b.watch = time.AfterFunc(b.tick(), b.look)
		}
		b.mu.Unlock()
		if err == io.EOF {
			// These bytes are written after this read returns, under
			// the deadline just set; the next read, after them, ends.
			b.eof = true
			err = nil
		}
		return n, err
	}
	if err == io.EOF {
		b.end()
	}
	return n, err
}

func (b *idleSend) tick() time.Duration { return max(b.idle/4, 10*time.Millisecond) }

// extend moves the write deadline to idle from now (b.mu held).
func (b *idleSend) extend() {
	if b.done {
		return
	}
	d := time.Now().Add(b.idle)
	if !b.until.IsZero() && b.until.Before(d) {
		d = b.until
	}
	_ = b.conn.SetWriteDeadline(d)
}

// look is the watcher: a send queue shorter than at the last look is the
// client taking bytes.
func (b *idleSend) look() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	if q := protocol.SendQueue(b.sock); q >= 0 {
		if b.queued >= 0 && q < b.queued {
			b.extend()
		}
		b.queued = q
	}
	b.watch.Reset(b.tick())
}

// end stops the watcher and clears the deadline for the connection's
// next request.
func (b *idleSend) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if b.watch != nil {
		b.watch.Stop()
	}
	_ = b.conn.SetWriteDeadline(time.Time{})
}

func (b *idleSend) Close() error {
	b.end()
	return b.rc.Close()
}
