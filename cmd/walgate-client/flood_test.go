package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConnectionFlood starts the gateway binary with an open files limit
// of 256 and opens 400 connections to it, each sending one request line
// and then nothing. The gateway must stay up: connections over its cap
// are closed at once and counted, the idle ones it holds are closed after
// limits.header_timeout, and then a real client pushes and fetches a
// segment through it.
func TestConnectionFlood(t *testing.T) {
	const nofile, flood = 256, 400
	data := t.TempDir()
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	conf := filepath.Join(t.TempDir(), "walgate.yaml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "data: %s\nlisten: %s\nmetrics:\n  listen: %s\nlimits:\n  header_timeout: 2s\n",
		data, addr, metricsAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, nil, gatewayBin, "token", "add", "--data", data, "--cluster", cluster, "--scope", "push,fetch")
	if r.code != 0 {
		t.Fatalf("walgate token add: exit %d: %s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	log := filepath.Join(t.TempDir(), "gateway.log")
	cmd := exec.Command("/bin/bash", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), gatewayBin, "serve", "-c", conf)
	gw := startGatewayCmd(t, cmd, addr, log)
	if l := string(readAll(t, log)); !strings.Contains(l, fmt.Sprintf("soft=%d hard=%d", nofile, nofile)) || !strings.Contains(l, "max_connections lowered") {
		t.Errorf("the gateway log does not state the open files limit and the lowered cap:\n%s", l)
	}

	// The flood: every connection sends a request line and stalls.
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			select {
			case werr := <-gw.done:
				gw.done <- werr
				t.Fatalf("connection %d: %v: the gateway exited (%v); log:\n%s", i, err, werr, lastLines(readAll(t, log), 5))
			default:
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		conns = append(conns, c)
		// A refused connection may already be closed: a failed write is fine.
		c.Write([]byte("GET /healthz HTTP/1.1\r\n"))
	}
	// Every flood connection ends on the gateway's side: refused at once,
	// or cut after the header timeout (2 s) while it waits for the rest of
	// the headers. None gets an answer other than a timeout's.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stillOpen int
	var answers []string
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, err := bufio.NewReader(c).ReadString('\n')
			mu.Lock()
			defer mu.Unlock()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				stillOpen++
			}
			if b != "" && !strings.Contains(b, " 408 ") {
				answers = append(answers, strings.TrimSpace(b))
			}
		})
	}
	wg.Wait()
	if stillOpen > 0 {
		t.Errorf("%d of %d idle connections were still open after 30 s (header_timeout is 2 s)", stillOpen, flood)
	}
	if len(answers) > 0 {
		t.Errorf("flood connections got answers: %q", answers[:min(len(answers), 5)])
	}
	select {
	case err := <-gw.done:
		gw.done <- err
		t.Fatalf("the gateway exited under the flood: %v; log:\n%s", err, lastLines(readAll(t, log), 5))
	default:
	}
	if n := refusedConnections(t, metricsAddr); n < 1 {
		t.Errorf("walgate_connections_refused_total{reason=\"max_connections\"} = %v after %d connections to a gateway that holds at most %d", n, flood, (nofile-64)/2)
	}

	// A real client pushes and fetches through the gateway.
	env := clientEnv("http://"+addr, tok)
	src, dst := t.TempDir(), t.TempDir()
	body := randBytes(t, 1<<20)
	expectExit(t, "wal-push after the flood", walClient(t, env, "wal-push", writeFile(t, src, seg1, body)), 0)
	dest := filepath.Join(dst, "RECOVERYXLOG")
	expectExit(t, "wal-fetch after the flood", walClient(t, env, "wal-fetch", seg1, dest), 0)
	if !bytes.Equal(readAll(t, dest), body) {
		t.Fatal("the fetched segment differs from the pushed one")
	}
	gw.stop(t)
}

// refusedConnections reads walgate_connections_refused_total for the
// max_connections limit from the gateway's /metrics.
func refusedConnections(t *testing.T, metricsAddr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	const series = `walgate_connections_refused_total{reason="max_connections"} `
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s%s: %v", series, v, err)
			}
			return f
		}
	}
	return 0
}

// lastLines is the end of a log, at most n lines.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
