package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// How a client's peak memory is measured.
//
// A child's ru_maxrss is not its own peak: Go starts children with
// clone(CLONE_VM|CLONE_VFORK), so until the exec the child runs in its
// parent's address space, and Linux's exec records that address space's
// peak RSS in the child's ru_maxrss. Whenever the parent's peak is the
// larger, the child "uses" the parent's memory. So the helper runs each
// command under ptrace with PTRACE_O_TRACEEXIT: the command stops once
// more as it exits, while its memory is still mapped, and the helper reads
// its VmHWM from /proc/PID/status there. That figure is the peak of the
// command's own address space, whatever the helper's size.
//
// Why a helper process runs the timed commands: timing and tracing are
// kept out of this program, which grows past 100 MiB in its in-process
// measurements and runs goroutines that would share the tracing thread.

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
	MaxRSS int64  `json:"maxrss_kib"` // the command's VmHWM at exit; ru_maxrss if that could not be read
	RUMax  int64  `json:"ru_maxrss_kib"`
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
		res := runTraced(req)
		if err := out.Encode(res); err != nil {
			return 2
		}
	}
	return 0
}

// maxOutput bounds the output a result carries (its end is kept).
const maxOutput = 64 << 10

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

// peakRSS is the helper's own VmHWM in KiB, reported beside the clients'
// figures to show they are not the helper's.
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

// runTraced runs one command under ptrace (see the top of this file) and
// reports its wall time, rusage and own peak RSS. ptrace requests must come
// from the thread that started the tracee, so the goroutine keeps its thread.
func runTraced(req spawnRequest) spawnResult {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var res spawnResult
	outf, err := os.CreateTemp("", "walgate-bench-out-*")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer os.Remove(outf.Name())
	defer outf.Close()
	cmd := exec.Command(req.Path, req.Args...)
	cmd.Env = req.Env
	// Files, not buffers: no copying goroutines, so nothing but the loop
	// below waits for the command.
	cmd.Stdout, cmd.Stderr = outf, outf
	// Dies with the helper: the parent kills the helper on Ctrl-C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Ptrace: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		res.Err = err.Error()
		return res
	}
	pid := cmd.Process.Pid
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	hwm := int64(0)
	first := true
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, &ru); err != nil {
			if err == syscall.EINTR {
				continue
			}
			res.Err = "wait: " + err.Error()
			break
		}
		if ws.Exited() || ws.Signaled() {
			if ws.Signaled() {
				res.Err = "signal: " + ws.Signal().String()
			} else if ws.ExitStatus() != 0 {
				res.Err = fmt.Sprintf("exit status %d", ws.ExitStatus())
			}
			break
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		inject := 0
		switch {
		case first && sig == syscall.SIGTRAP:
			// The stop after exec: ask for one more at exit.
			first = false
			if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACEEXIT); err != nil {
				res.Err = "ptrace: " + err.Error()
			}
		case sig == syscall.SIGTRAP && ws.TrapCause() == syscall.PTRACE_EVENT_EXIT:
			if m, err := procStatus(pid, "VmHWM"); err == nil {
				hwm = m["VmHWM"]
			}
		default:
			inject = int(sig) // the command's own signal (Go's SIGURG, ...)
		}
		if err := syscall.PtraceCont(pid, inject); err != nil && err != syscall.ESRCH {
			res.Err = "ptrace: " + err.Error()
		}
	}
	res.WallNS = int64(time.Since(t0))
	res.UserNS, res.SysNS = ru.Utime.Nano(), ru.Stime.Nano()
	res.CPUNS = res.UserNS + res.SysNS
	res.RUMax, res.MinFlt = ru.Maxrss, ru.Minflt // KiB on Linux
	res.MaxRSS = hwm
	if hwm == 0 {
		res.MaxRSS = ru.Maxrss
	}
	if fi, err := outf.Stat(); err == nil {
		if _, err := outf.Seek(max(0, fi.Size()-maxOutput), io.SeekStart); err == nil {
			b, _ := io.ReadAll(outf)
			res.Output = string(b)
		}
	}
	return res
}
