package emulators

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultTools is where .ci/install-deps.sh caches the emulators.
const DefaultTools = "/var/cache/walgate-tools/v1"

// Tool returns the path of an emulator binary in the tools cache, or an
// error that says how to install it.
func Tool(name string) (string, error) {
	dir := os.Getenv("WALGATE_TOOLS")
	if dir == "" {
		dir = DefaultTools
	}
	p := filepath.Join(dir, "bin", name)
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s not found at %s: run `make deps` (.ci/install-deps.sh) to install the test emulators", name, p)
	}
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a running emulator.
type Process struct {
	name string
	cmd  *exec.Cmd
	Dir  string // its temp directory (data and log)
	log  *os.File

	once sync.Once
	done chan struct{}
	err  error
}

// startProcess runs bin with args in a new temp directory, output to
// <dir>/log, killed with the test process.
func startProcess(name, bin string, env []string, args ...string) (*Process, error) {
	dir, err := os.MkdirTemp("", "walgate-"+name+"-")
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, Dir: dir, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls ready until it returns nil, the process exits, or timeout.
func (p *Process) waitReady(timeout time.Duration, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting (%v); its log:\n%s", p.name, p.err, p.tail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = ready(ctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (last probe: %v); its log:\n%s", p.name, timeout, last, p.tail())
}

// tail returns the end of the process's log.
func (p *Process) tail() string {
	data, _ := os.ReadFile(filepath.Join(p.Dir, "log"))
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(bytes.TrimSpace(data))
}

// Stop kills the process group and removes the temp directory.
func (p *Process) Stop() error {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.log.Close()
		os.RemoveAll(p.Dir)
	})
	return nil
}

// Pid is the emulator's process id (for tests that stop it to simulate an
// outage: see Pause and Resume).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Pause stops the emulator's processes (SIGSTOP): connections hang, as with
// a store that stopped answering. Resume continues them.
func (p *Process) Pause() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused emulator.
func (p *Process) Resume() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT) }

// httpProbe succeeds when url answers any HTTP status accepted by ok.
func httpProbe(url string, ok func(status int) bool) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if !ok(resp.StatusCode) {
			return errors.New("status " + strconv.Itoa(resp.StatusCode))
		}
		return nil
	}
}
