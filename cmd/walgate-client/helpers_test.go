package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Binaries built once for the package's tests.
var (
	clientBin  string
	gatewayBin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "walgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	clientBin, gatewayBin = filepath.Join(dir, "walgate-client"), filepath.Join(dir, "walgate")
	for bin, pkg := range map[string]string{clientBin: "./cmd/walgate-client", gatewayBin: "./cmd/walgate"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if bin == clientBin {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build does
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// result is what one run of a binary did.
type result struct {
	code   int
	stdout string
	stderr string
	took   time.Duration
}

// runBin runs bin with exactly env (no inherited environment) and a
// timeout; a run that hits the timeout fails the test.
func runBin(t testing.TB, env map[string]string, bin string, args ...string) result {
	t.Helper()
	return runBinIn(t, "", env, bin, args...)
}

// runBinIn is runBin in working directory dir ("" = this process's).
func runBinIn(t testing.TB, dir string, env map[string]string, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not finish within 60s; stderr: %s", filepath.Base(bin), args, stderr.String())
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(began)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %s: %v", bin, err)
	}
	return r
}

// walClient runs walgate-client with env.
func walClient(t testing.TB, env map[string]string, args ...string) result {
	t.Helper()
	r := runBin(t, env, clientBin, args...)
	if os.Getenv("WALGATE_TEST_TRACE") != "" {
		t.Logf("walgate-client %q: exit %d in %v", args, r.code, r.took)
	}
	return r
}

// expectExit checks the exit code and that stderr holds one line
// containing every want (and the exit code), for a failure.
func expectExit(t testing.TB, what string, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d; stderr: %s", what, r.code, code, r.stderr)
	}
	if code == 0 {
		return
	}
	line := strings.TrimSpace(r.stderr)
	if line == "" || strings.Contains(line, "\n") {
		t.Fatalf("%s: want one line on stderr, got %q", what, r.stderr)
	}
	if !strings.Contains(line, fmt.Sprintf("(exit %d)", code)) {
		t.Fatalf("%s: stderr does not state the exit code: %s", what, line)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Fatalf("%s: stderr does not mention %q: %s", what, w, line)
		}
	}
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dirHolds fails unless dir holds exactly names (no temp files either).
func dirHolds(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, "\n") != strings.Join(names, "\n") {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
}

// storeFiles lists every file under <data>/store, relative to it.
func storeFiles(t testing.TB, data string) []string {
	return gatewaytest.ListFiles(t, filepath.Join(data, "store"))
}

// waitStore polls until the store holds exactly want: a failed write
// removes its temp file when its handler ends, which can be a moment
// after the client gave up.
func waitStore(t testing.TB, data string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := storeFiles(t, data)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store holds %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// cutProxy forwards TCP connections to target and cuts each one (both
// directions) once up bytes went to the target or down bytes came back
// (0: no limit in that direction).
type cutProxy struct {
	ln       net.Listener
	target   string
	up, down int64
	cuts     atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func (p *cutProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func startProxy(t testing.TB, target string, up, down int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, up: up, down: down}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *cutProxy) handle(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	p.track(server)
	var once sync.Once
	cut := func() {
		// As a gateway process that dies does: the kernel closes its
		// sockets.
		once.Do(func() {
			p.cuts.Add(1)
			client.Close()
			server.Close()
		})
	}
	// pipe copies src to dst, at most limit bytes (0: no limit). At the
	// limit it cuts both connections; at the end of src it passes the
	// end on.
	pipe := func(dst, src net.Conn, limit int64) {
		buf := make([]byte, 16<<10)
		var n int64
		for {
			want := buf
			if limit > 0 && limit-n < int64(len(want)) {
				want = buf[:limit-n]
			}
			m, err := src.Read(want)
			if m > 0 {
				if _, werr := dst.Write(want[:m]); werr != nil {
					return
				}
				n += int64(m)
			}
			if limit > 0 && n >= limit {
				cut()
				return
			}
			if err != nil {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				return
			}
		}
	}
	done := make(chan struct{})
	go func() {
		pipe(server, client, p.up)
		close(done)
	}()
	pipe(client, server, p.down)
	<-done
}

// readAll reads a file or fails.
func readAll(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
