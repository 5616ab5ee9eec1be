package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Why a helper process runs the timed commands.
//
// Go starts children with clone(CLONE_VM|CLONE_VFORK): until the exec the
// child runs in its parent's address space, and Linux's exec then records
// that address space's peak RSS in the child's ru_maxrss. A child of a big
// parent therefore reports the parent's peak instead of its own whenever
// the parent's is larger: after the in-process measurements, which grow
// this program past 100 MiB, every exec'd client would "use" 100 MiB. The
// helper is this program re-executed in a mode that does nothing but run
// commands and report their rusage; its own peak RSS stays a few MiB,
// below any client's, so the clients' ru_maxrss is their own.

// spawnHelperArg, as the only argument, makes this program the helper.
const spawnHelperArg = "-internal-spawn-helper"

type spawnRequest struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

type spawnResult struct {
	WallNS int64  `json:"wall_ns"`
	CPUNS  int64  `json:"cpu_ns"`
	UserNS int64  `json:"user_ns"`
	SysNS  int64  `json:"sys_ns"`
	MaxRSS int64  `json:"maxrss_kib"`
	MinFlt int64  `json:"minflt"`
	Err    string `json:"err,omitempty"`
	Output string `json:"output,omitempty"`
}

// spawnHelper serves requests, one JSON line each on stdin, until stdin
// ends. Interrupts are left to the parent, which kills the helper.
func spawnHelper() int {
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req spawnRequest
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "spawn helper:", err)
			return 2
		}
		cmd := exec.Command(req.Path, req.Args...)
		cmd.Env = req.Env
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		// Dies with the helper: the parent kills the helper on Ctrl-C.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		t0 := time.Now()
		err := cmd.Run()
		res := spawnResult{WallNS: int64(time.Since(t0)), Output: tail(buf.Bytes(), maxOutput)}
		if err != nil {
			res.Err = err.Error()
		}
		if ps := cmd.ProcessState; ps != nil {
			res.CPUNS = int64(ps.UserTime() + ps.SystemTime())
			res.UserNS, res.SysNS = int64(ps.UserTime()), int64(ps.SystemTime())
			if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
				res.MaxRSS = ru.Maxrss // KiB on Linux
				res.MinFlt = ru.Minflt
			}
		}
		if err := out.Encode(res); err != nil {
			return 2
		}
	}
	return 0
}

// maxOutput bounds the output a result carries (its end is kept).
const maxOutput = 64 << 10

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// spawner is the parent's handle on the helper.
type spawner struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	dead bool
}

func startSpawner() (*spawner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, spawnHelperArg)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &spawner{cmd: cmd, in: in, out: sc}, nil
}

// run runs path with args and env through the helper.
func (s *spawner) run(ctx context.Context, path string, env []string, args ...string) (execResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return execResult{}, errors.New("spawn helper is gone")
	}
	line, err := json.Marshal(spawnRequest{Path: path, Args: args, Env: env})
	if err != nil {
		return execResult{}, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			s.cmd.Process.Kill() // and so, by Pdeathsig, the command
		case <-done:
		}
	}()
	if _, err := s.in.Write(append(line, '\n')); err != nil {
		s.dead = true
		return execResult{}, s.failure(ctx, err)
	}
	if !s.out.Scan() {
		s.dead = true
		return execResult{}, s.failure(ctx, s.out.Err())
	}
	var res spawnResult
	if err := json.Unmarshal(s.out.Bytes(), &res); err != nil {
		return execResult{}, err
	}
	if res.Err != "" {
		return execResult{}, fmt.Errorf("%s %s: %s: %s", path, strings.Join(args, " "), res.Err, strings.TrimSpace(res.Output))
	}
	return execResult{wall: time.Duration(res.WallNS), cpu: time.Duration(res.CPUNS), user: time.Duration(res.UserNS), sys: time.Duration(res.SysNS),
		maxRSS: res.MaxRSS, minflt: res.MinFlt, output: res.Output}, nil
}

func (s *spawner) failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("spawn helper: %w", err)
}

// peakRSS is the helper's own VmHWM in KiB: the floor below which a
// child's ru_maxrss would be the helper's.
func (s *spawner) peakRSS() int64 {
	m, err := procStatus(s.cmd.Process.Pid, "VmHWM")
	if err != nil {
		return 0
	}
	return m["VmHWM"]
}

// close ends the helper.
func (s *spawner) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.in.Close()
	done := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
