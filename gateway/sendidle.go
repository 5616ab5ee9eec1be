package gateway

import (
	"io"
	"net"
	"time"
)

// idleSend is a response body that the connection must keep taking: each
// time it hands on bytes it gives the connection idle to write them
// (limits.idle_timeout), so that a download whose client stopped reading
// fails and frees its store reader, while one that keeps moving is never
// cut however long it takes (unless limits.write_timeout, which bounds a
// whole response and is off by default, is set: its end stays the
// latest deadline). The deadline is cleared at the body's end, before
// the connection serves its next request.
type idleSend struct {
	rc    io.ReadCloser
	conn  net.Conn
	idle  time.Duration
	until time.Time // limits.write_timeout's end (zero: none)
	eof   bool      // rc ended with the last bytes handed on
}

// sendBody streams rc as the response body with idleSend's deadlines.
func (s *Server) sendBody(conn net.Conn, rc io.ReadCloser) io.ReadCloser {
	if conn == nil {
		return rc
	}
	b := &idleSend{rc: rc, conn: conn, idle: s.cfg.Limits.IdleTimeout}
	if wt := s.cfg.Limits.WriteTimeout; wt > 0 {
		b.until = time.Now().Add(wt)
	}
	return b
}

func (b *idleSend) Read(p []byte) (int, error) {
	if b.eof {
		_ = b.conn.SetWriteDeadline(time.Time{})
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		d := time.Now().Add(b.idle)
		if !b.until.IsZero() && b.until.Before(d) {
			d = b.until
		}
		_ = b.conn.SetWriteDeadline(d)
		if err == io.EOF {
			// These bytes are written after this read returns, under
			// the deadline just set; the next read, after them, ends.
			b.eof = true
			err = nil
		}
		return n, err
	}
	if err == io.EOF {
		_ = b.conn.SetWriteDeadline(time.Time{})
	}
	return n, err
}

func (b *idleSend) Close() error { return b.rc.Close() }
