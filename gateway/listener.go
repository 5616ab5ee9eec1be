package gateway

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connListener bounds the connections the gateway holds open, in total
// and per client address, and keeps accepting through transient accept
// failures. A connection over a bound is closed as soon as it is
// accepted, before a byte of it is read. Accept errors other than a
// closed listener (EMFILE and ENFILE when file descriptors run out,
// ECONNABORTED, ENOBUFS, ...) never reach the HTTP server, which would
// stop serving on them: Accept waits 5 ms, doubling up to 1 s while they
// last, and tries again.
type connListener struct {
	net.Listener
	max, perAddr int
	log          *slog.Logger
	refused      func(reason string) // counts a connection closed at accept

	mu     sync.Mutex
	open   int
	byAddr map[string]int

	sleep func(time.Duration) // time.Sleep; tests shorten it
}

// Reasons a connection is refused at accept, the metric's label.
const (
	refusedTotal   = "max_connections"
	refusedPerAddr = "max_connections_per_address"
)

// acceptBackoff bounds the wait between failing accepts.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

func newConnListener(ln net.Listener, max, perAddr int, log *slog.Logger, refused func(string)) *connListener {
	return &connListener{Listener: ln, max: max, perAddr: perAddr, log: log, refused: refused,
		byAddr: map[string]int{}, sleep: time.Sleep}
}

// Accept returns the next connection within the bounds.
func (l *connListener) Accept() (net.Conn, error) {
	var delay time.Duration
	var lastLog time.Time
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			if time.Since(lastLog) >= 10*time.Second {
				attrs := []any{"err", err, "retry_in", delay}
				if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
					attrs = append(attrs, "hint", "out of file descriptors: raise LimitNOFILE (ulimit -n) or lower limits.max_connections")
				}
				l.log.Warn("accepting a connection failed; backing off", attrs...)
				lastLog = time.Now()
			}
			l.sleep(delay)
			continue
		}
		delay = 0
		addr := remoteHost(c)
		l.mu.Lock()
		reason := ""
		switch {
		case l.open >= l.max:
			reason = refusedTotal
		case l.byAddr[addr] >= l.perAddr:
			reason = refusedPerAddr
		default:
			l.open++
			l.byAddr[addr]++
		}
		l.mu.Unlock()
		if reason != "" {
			c.Close()
			if l.refused != nil {
				l.refused(reason)
			}
			continue
		}
		return &limitedConn{Conn: c, l: l, addr: addr}, nil
	}
}

// Open is how many accepted connections are open now.
func (l *connListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *connListener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// remoteHost is the client address of c without its port.
func remoteHost(c net.Conn) string {
	a := c.RemoteAddr()
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// limitedConn gives its slot back when closed (once), and remembers
// whether the client ended its side of the connection.
type limitedConn struct {
	net.Conn
	l      *connListener
	addr   string
	once   sync.Once
	sawEOF atomic.Bool
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == io.EOF {
		c.sawEOF.Store(true)
	}
	return n, err
}

// ReadFrom keeps the connection's own ReadFrom (sendfile, splice) for
// response bodies: written straight to the socket, every byte a body
// reader returned before an error is sent (a damaged copy's client gets
// the whole body and fails its own check, not a cut connection).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// peerClosed reports whether a read on conn (a connection of the
// gateway's listener, possibly under TLS) found that the client closed
// its side. A chunked body cut off between two chunks reads to the
// parser as a body that ended; the end of the connection under it is
// what tells them apart.
func peerClosed(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	lc, ok := conn.(*limitedConn)
	return ok && lc.sawEOF.Load()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// fdReserve is how many file descriptors the gateway keeps for its
// catalog, stores, logs and listeners whatever the connections take.
const fdReserve = 64

// raiseOpenFiles raises the soft limit on open files to the hard limit
// (Linux starts most services with a soft limit of 1024; the Go runtime
// raises it too, this makes it explicit and logged) and returns the soft
// limit in force, 0 when it cannot be read.
func raiseOpenFiles(log *slog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("reading the open files limit", "err", err)
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("raising the open files limit", "soft", lim.Cur, "hard", lim.Max, "err", err)
		} else {
			lim = raised
		}
	}
	log.Info("open files limit", "soft", lim.Cur, "hard", lim.Max)
	return lim.Cur
}

// connectionCap is the number of connections the gateway holds open:
// limits.max_connections, lowered so that every open connection can also
// hold a file of a store (two descriptors each) within the open files
// limit, after fdReserve.
func connectionCap(configured int, nofile uint64) int {
	if nofile == 0 {
		return configured
	}
	fit := 1
	if nofile > 2*fdReserve {
		fit = int((nofile - fdReserve) / 2)
	}
	return min(configured, fit)
}
