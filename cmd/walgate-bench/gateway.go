package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// gateway is a running 'walgate serve' on a fresh data directory.
type gateway struct {
	bin     string
	data    string
	config  string // the --config it runs with, "" for none
	url     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// startGateway starts bin serve on data (with the default fs store under
// data/store unless extra names a config) and waits until /healthz answers.
func startGateway(ctx context.Context, bin, data, logPath string, extra ...string) (*gateway, error) {
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	g := &gateway{bin: bin, data: data, url: "http://" + addr, logPath: logPath, done: make(chan struct{})}
	g.cmd = exec.Command(bin, append([]string{"serve", "--data", data, "--listen", addr}, extra...)...)
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	// Its own process group, so that a Ctrl-C on the terminal reaches only
	// this program, which then stops the gateway after the running push;
	// and SIGTERM if this program dies without cleaning up.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()

	deadline := time.Now().Add(20 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(g.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("gateway exited at start (%v):\n%s", g.waitErr, tailFile(logPath, 20))
		case <-ctx.Done():
			g.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("gateway did not answer %s/healthz within 20 s:\n%s", g.url, tailFile(logPath, 20))
		}
	}
}

// stop ends the gateway gracefully (SIGTERM), or kills it after 30 s.
func (g *gateway) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// addToken runs 'walgate token add' for cluster and returns the token.
func (g *gateway) addToken(ctx context.Context, cluster string) (string, error) {
	args := []string{"token", "add", "--data", g.data, "--cluster", cluster, "--scope", "push,fetch", "--comment", "walgate-bench"}
	if g.config != "" {
		args = append(args, "--config", g.config) // the catalog it names
	}
	cmd := exec.CommandContext(ctx, g.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("walgate token add --cluster %s: %v: %s", cluster, err, strings.TrimSpace(stderr.String()))
	}
	tok := strings.TrimSpace(stdout.String())
	if tok == "" {
		return "", fmt.Errorf("walgate token add --cluster %s printed no token", cluster)
	}
	return tok, nil
}

// procStatus reads fields of /proc/<pid>/status in KiB, e.g. VmHWM, VmRSS.
func procStatus(pid int, fields ...string) (map[string]int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bool{}
	for _, k := range fields {
		want[k] = true
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !want[k] {
			continue
		}
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil {
			m[k] = n
		}
	}
	return m, sc.Err()
}

// procCPU returns the user+system CPU time a process has used so far.
func procCPU(pid int) (time.Duration, error) {
	u, s, err := procTimes(pid)
	return u + s, err
}

// procTimes returns the user and the system CPU time a process has used
// so far.
func procTimes(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	// USER_HZ is 100 on every Linux platform Go supports.
	tick := time.Second / 100
	return time.Duration(ut) * tick, time.Duration(st) * tick, nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
