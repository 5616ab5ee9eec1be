package backendtest

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a real server, for fault
// tests of clients that speak to it over the network: it can refuse
// connections (down), cut every connection after a number of bytes sent
// upstream (a server dying mid-upload), and delay each chunk (a slow link).
type Proxy struct {
	ln     net.Listener
	target string

	down     atomic.Bool
	cutAfter atomic.Int64 // bytes upstream per connection before it is cut; 0: never
	cutNext  atomic.Int64 // connections left that CutNext cuts
	cutNextN atomic.Int64 // after how many bytes upstream
	delay    atomic.Int64 // per chunk, nanoseconds
	rate     atomic.Int64 // bytes per second in each direction of a connection; 0: no limit
	stalled  atomic.Bool  // forward nothing, keep the connections open
	closed   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target
// (host:port).
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDown makes the proxy refuse new connections and drop open ones (true),
// or forward again (false).
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.dropAll()
	}
}

// CutAfter makes every connection opened from now on close after n bytes
// went upstream (0: never).
func (p *Proxy) CutAfter(n int64) { p.cutAfter.Store(n) }

// CutNext makes only the next conns connections opened close after n bytes
// went upstream (a transient failure: the connections after them forward
// everything). CutAfter, when set, takes precedence.
func (p *Proxy) CutNext(n int64, conns int) {
	p.cutNextN.Store(n)
	p.cutNext.Store(int64(conns))
}

// SetDelay delays every chunk forwarded in either direction.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// SetRate limits every connection to about bytesPerSecond in each
// direction (a slow link that keeps progressing); 0 lifts the limit.
func (p *Proxy) SetRate(bytesPerSecond int64) { p.rate.Store(bytesPerSecond) }

// SetStalled makes every open and new connection forward nothing in
// either direction while keeping it open (a link or peer that hangs), or
// forward again (false).
func (p *Proxy) SetStalled(stalled bool) { p.stalled.Store(stalled) }

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	err := p.ln.Close()
	p.dropAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

func (p *Proxy) handle(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, true)
	p.track(up, true)
	defer func() {
		c.Close()
		up.Close()
		p.track(c, false)
		p.track(up, false)
	}()
	cut := p.cutAfter.Load()
	if cut == 0 && p.cutNext.Add(-1) >= 0 {
		cut = p.cutNextN.Load()
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c, cut); done <- struct{}{} }()
	go func() { p.pipe(c, up, 0); done <- struct{}{} }()
	<-done // either side ending ends both
}

// pipe copies src to dst, closing both after limit bytes (0: no limit).
func (p *Proxy) pipe(dst, src net.Conn, limit int64) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := p.delay.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if r := p.rate.Load(); r > 0 {
				time.Sleep(time.Duration(int64(n) * int64(time.Second) / r))
			}
			for p.stalled.Load() && !p.closed.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if limit > 0 && total+int64(n) >= limit {
				dst.Write(buf[:limit-total])
				return
			}
			total += int64(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
