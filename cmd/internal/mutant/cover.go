package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A block is a covered span of a file, as a coverage profile names it:
// from StartLine.StartCol to EndLine.EndCol.
type block struct {
	StartLine, StartCol, EndLine, EndCol int
}

func (b block) contains(line, col int) bool {
	if line < b.StartLine || line > b.EndLine {
		return false
	}
	if line == b.StartLine && col < b.StartCol {
		return false
	}
	if line == b.EndLine && col > b.EndCol {
		return false
	}
	return true
}

// parseProfile reads a coverage profile (go test -coverprofile) and returns
// the blocks that ran at least once, by file as the profile names it
// (import path / file name).
func parseProfile(r io.Reader) (map[string][]block, error) {
	out := map[string][]block{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first {
			first = false
			if strings.HasPrefix(line, "mode:") {
				continue
			}
		}
		if line == "" {
			continue
		}
		// file.go:12.34,15.2 3 1
		colon := strings.LastIndex(line, ":")
		fields := strings.Fields(line[colon+1:])
		if colon < 0 || len(fields) != 3 {
			return nil, fmt.Errorf("coverage profile: malformed line %q", line)
		}
		count, err := strconv.Atoi(fields[2])
		if err != nil {
			return nil, fmt.Errorf("coverage profile: malformed line %q", line)
		}
		if count == 0 {
			continue
		}
		var b block
		if _, err := fmt.Sscanf(fields[0], "%d.%d,%d.%d", &b.StartLine, &b.StartCol, &b.EndLine, &b.EndCol); err != nil {
			return nil, fmt.Errorf("coverage profile: malformed line %q", line)
		}
		file := line[:colon]
		out[file] = append(out[file], b)
	}
	return out, sc.Err()
}

// coverage maps each top-level test of a package to the blocks it runs on
// its own. Tests whose coverage is unknown (they fail or time out when run
// alone) are in always: they run against every mutant.
type coverage struct {
	importPath string
	tests      []string
	blocks     map[string]map[string][]block // test -> file -> blocks
	always     []string
}

// selectTests returns the tests that run m's position, in the order the
// package declares them, plus the tests whose coverage is unknown. ok is
// false when no test's coverage reaches the position: then the caller
// runs every test, as without selection.
func (c *coverage) selectTests(m Mutant) (tests []string, ok bool) {
	file := c.importPath + "/" + filepath.ToSlash(m.File)
	for _, t := range c.tests {
		for _, b := range c.blocks[t][file] {
			if b.contains(m.Line, m.Col) {
				tests = append(tests, t)
				break
			}
		}
	}
	if len(tests) == 0 {
		return nil, false
	}
	return append(tests, c.always...), true
}

// runPattern is a go test -run pattern matching exactly the given
// top-level tests.
func runPattern(tests []string) string {
	q := make([]string, len(tests))
	for i, t := range tests {
		q[i] = regexp.QuoteMeta(t)
	}
	return "^(" + strings.Join(q, "|") + ")$"
}

// measureCoverage builds pkg's tests with coverage once, lists its
// top-level tests (those run and skip select), and runs each one alone
// with a coverage profile. logf reports progress.
func measureCoverage(ctx context.Context, pkg, run, skip, tmp string, limit time.Duration, logf func(string, ...any)) (*coverage, error) {
	ip, err := exec.Command("go", "list", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v", pkg, err)
	}
	dir, err := filepath.Abs(pkg)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(tmp, "cover.test")
	build := exec.Command("go", "test", "-c", "-vet=off", "-cover", "-covermode=set", "-o", bin, pkg)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go test -c -cover %s: %v\n%s", pkg, err, out)
	}
	list := exec.Command(bin, "-test.list", ".")
	list.Dir = dir
	listed, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -test.list: %v", pkg, err)
	}
	var runRE, skipRE *regexp.Regexp
	if run != "" {
		if runRE, err = regexp.Compile(run); err != nil {
			return nil, fmt.Errorf("-run: %v", err)
		}
	}
	if skip != "" {
		if skipRE, err = regexp.Compile(skip); err != nil {
			return nil, fmt.Errorf("-skip: %v", err)
		}
	}
	c := &coverage{importPath: strings.TrimSpace(string(ip)), blocks: map[string]map[string][]block{}}
	for _, name := range strings.Fields(string(listed)) {
		if strings.HasPrefix(name, "Benchmark") || (runRE != nil && !runRE.MatchString(name)) || (skipRE != nil && skipRE.MatchString(name)) {
			continue
		}
		c.tests = append(c.tests, name)
	}
	if len(c.tests) == 0 {
		return nil, fmt.Errorf("%s: no test to run", pkg)
	}
	for i, name := range c.tests {
		prof := filepath.Join(tmp, "cover.out")
		os.Remove(prof)
		tctx, cancel := context.WithTimeout(ctx, limit)
		cmd := exec.CommandContext(tctx, bin, "-test.run", runPattern([]string{name}), "-test.count=1", "-test.coverprofile", prof)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		t0 := time.Now()
		err := cmd.Run()
		cancel()
		if ctx.Err() != nil {
			return nil, errors.New("interrupted")
		}
		var blocks map[string][]block
		if err == nil {
			var f *os.File
			if f, err = os.Open(prof); err == nil {
				blocks, err = parseProfile(f)
				f.Close()
			}
		}
		if err != nil {
			// Unknown coverage: this test runs against every mutant.
			c.always = append(c.always, name)
			logf("mutant: coverage %d/%d %s: not measured alone (%v); it runs against every mutant\n", i+1, len(c.tests), name, err)
			continue
		}
		c.blocks[name] = blocks
		logf("mutant: coverage %d/%d %s (%s)\n", i+1, len(c.tests), name, time.Since(t0).Round(100*time.Millisecond))
	}
	return c, nil
}
