package gcs_test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// cuttingProxy is a TCP proxy in front of the emulator that cuts the
// connection through which the budget of bytes from client to server runs
// out, as a network that drops mid-upload does; then the budget is
// unlimited again. While refuse is set it closes new
// connections at once, as a store that is down does.
type cuttingProxy struct {
	ln     net.Listener
	target string
	budget atomic.Int64 // bytes still allowed towards the server; < 0: unlimited
	refuse atomic.Bool
	cuts   atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
}

func startCuttingProxy(t *testing.T, target string) *cuttingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target}
	p.budget.Store(-1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *cuttingProxy) addr() string { return p.ln.Addr().String() }

func (p *cuttingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() {
			p.pipeUp(s, c)
			c.Close()
			s.Close()
		}()
		go func() {
			io.Copy(c, s)
			c.Close()
			s.Close()
		}()
	}
}

// pipeUp copies client to server until the budget runs out.
func (p *cuttingProxy) pipeUp(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if left := p.budget.Load(); left >= 0 {
				if int64(n) > left {
					n = int(left)
					p.budget.Store(-1) // one cut
					dst.Write(buf[:n])
					p.cuts.Add(1)
					return
				}
				p.budget.Add(-int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
