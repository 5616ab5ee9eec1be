package gateway

import (
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestConnListenerBounds: connections over the per-address bound and over
// the total are closed at accept and counted by reason; a closed
// connection gives its slot back.
func TestConnListenerBounds(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan string, 16)
	l := newConnListener(tcp, 5, 2, slog.New(slog.DiscardHandler), func(r string) { refused <- r })
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// dial connects from a loopback source address and says what the
	// listener did with the connection: "" accepted, else the reason.
	dial := func(from string) (client, server net.Conn, reason string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case s := <-accepted:
			return c, s, ""
		case r := <-refused:
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("a refused connection delivered data")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a refused connection was left open")
			}
			return c, nil, r
		case <-time.After(10 * time.Second):
			t.Fatal("the listener neither accepted nor refused a connection")
		}
		return nil, nil, ""
	}
	want := func(from, reason string) net.Conn {
		t.Helper()
		_, s, got := dial(from)
		if got != reason {
			t.Fatalf("connection from %s: refused %q, want %q", from, got, reason)
		}
		return s
	}
	a1 := want("127.0.0.2", "")
	want("127.0.0.2", "")
	want("127.0.0.2", refusedPerAddr)
	want("127.0.0.3", "")
	want("127.0.0.3", "")
	want("127.0.0.4", "")
	want("127.0.0.4", refusedTotal)
	if n := l.Open(); n != 5 {
		t.Fatalf("open connections: %d, want 5", n)
	}
	// Closing one (twice: the slot comes back once) makes room for
	// another from the same address.
	a1.Close()
	a1.Close()
	if n := l.Open(); n != 4 {
		t.Fatalf("open connections after a close: %d, want 4", n)
	}
	want("127.0.0.2", "")
	want("127.0.0.5", refusedTotal)
}

// failingListener is a real listener whose first fails Accept calls fail
// with err, as accept(2) does when the process runs out of descriptors.
type failingListener struct {
	net.Listener
	fails int
	err   error
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.fails > 0 {
		f.fails--
		return nil, f.err
	}
	return f.Listener.Accept()
}

// TestConnListenerBacksOff: accept errors never reach the server; Accept
// waits 5 ms doubling to 1 s between them and then returns the next
// connection. A closed listener still ends Accept.
func TestConnListenerBacksOff(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	l := newConnListener(&failingListener{Listener: tcp, fails: 10, err: emfile}, 10, 10, slog.New(slog.DiscardHandler), nil)
	var slept []time.Duration
	l.sleep = func(d time.Duration) { slept = append(slept, d) }
	go func() {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after transient errors: %v", err)
	}
	c.Close()
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	if len(slept) != len(want) {
		t.Fatalf("waits %v, want %v ms", slept, want)
	}
	for i, d := range want {
		if slept[i] != d*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", slept, want)
		}
	}
	l.Close()
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept on a closed listener succeeded")
	}
}

func TestConnectionCap(t *testing.T) {
	for _, tc := range []struct {
		configured int
		nofile     uint64
		want       int
	}{
		{4096, 0, 4096},
		{4096, 1 << 20, 4096},
		{4096, 1024, 480},
		{4096, 256, 96},
		{4096, 100, 1},
		{50, 1024, 50},
	} {
		if got := connectionCap(tc.configured, tc.nofile); got != tc.want {
			t.Errorf("connectionCap(%d, %d) = %d, want %d", tc.configured, tc.nofile, got, tc.want)
		}
	}
}
