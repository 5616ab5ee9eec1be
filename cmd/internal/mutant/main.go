// Command mutant tests mutants one at a time without copying the module:
// each mutant is one operator changed at one position of one file, given
// to `go test -overlay`, so the source tree stays as it is and the build
// cache stays warm. A mutant whose tests fail is killed; one whose tests
// pass lives; one that runs past its time limit timed out (counted
// neither way).
//
// The mutants come from gremlins' own list (`gremlins unleash --dry-run`,
// lines such as "RUNNABLE CONDITIONALS_BOUNDARY at size.go:8:7"), so the
// mutators and positions are gremlins'; only the way each is tested
// differs. .ci/mutate.sh runs it with MODE=overlay.
//
// Before the mutants, it runs each top-level test of the package alone,
// once, with a coverage profile, and against each mutant it then runs only
// the tests whose profile reaches the mutant's position (-select, on by
// default): a test that never executes a line cannot notice a change to
// it. A test that fails or times out when run alone has no profile of its
// own and runs against every mutant; a position no profile reaches runs
// every test.
//
//	gremlins unleash --dry-run ./client/codec | mutant -pkg ./client/codec [-run RE] [-skip RE]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/scanner"
	"go/token"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mutant is one change: the operator at File:Line:Col replaced by To.
type Mutant struct {
	Type string
	File string // relative to the package directory, as gremlins names it
	Line int
	Col  int
}

func (m Mutant) String() string { return fmt.Sprintf("%s at %s:%d:%d", m.Type, m.File, m.Line, m.Col) }

var dryRunLine = regexp.MustCompile(`^\s*RUNNABLE\s+(\S+)\s+at\s+(\S+):(\d+):(\d+)\s*$`)

// parseDryRun reads the runnable mutants of a gremlins dry run; other
// lines (not covered, totals) are ignored.
func parseDryRun(r io.Reader) ([]Mutant, error) {
	var out []Mutant
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := dryRunLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		line, _ := strconv.Atoi(m[3])
		col, _ := strconv.Atoi(m[4])
		out = append(out, Mutant{Type: m[1], File: m[2], Line: line, Col: col})
	}
	return out, sc.Err()
}

// replacements are gremlins' mutators: for each, the operator it changes
// and what it becomes.
var replacements = map[string]map[token.Token]token.Token{
	"ARITHMETIC_BASE":       {token.ADD: token.SUB, token.SUB: token.ADD, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL},
	"CONDITIONALS_BOUNDARY": {token.GTR: token.GEQ, token.LSS: token.LEQ, token.GEQ: token.GTR, token.LEQ: token.LSS},
	"CONDITIONALS_NEGATION": {token.EQL: token.NEQ, token.NEQ: token.EQL, token.LEQ: token.GTR, token.GTR: token.LEQ, token.LSS: token.GEQ, token.GEQ: token.LSS},
	"INCREMENT_DECREMENT":   {token.INC: token.DEC, token.DEC: token.INC},
	"INVERT_NEGATIVES":      {token.SUB: token.ADD},
	"INVERT_LOGICAL":        {token.LAND: token.LOR, token.LOR: token.LAND},
	"INVERT_LOOPCTRL":       {token.BREAK: token.CONTINUE, token.CONTINUE: token.BREAK},
	"INVERT_ASSIGNMENTS":    {token.ADD_ASSIGN: token.SUB_ASSIGN, token.SUB_ASSIGN: token.ADD_ASSIGN, token.MUL_ASSIGN: token.QUO_ASSIGN, token.QUO_ASSIGN: token.MUL_ASSIGN, token.REM_ASSIGN: token.MUL_ASSIGN},
	"INVERT_BITWISE":        {token.AND: token.OR, token.OR: token.AND, token.XOR: token.AND, token.AND_NOT: token.AND, token.SHL: token.SHR, token.SHR: token.SHL},
}

// apply returns src with m's operator replaced, and a description of the
// change ("<" -> "<="). The position must hold an operator the mutator
// changes.
func apply(src []byte, m Mutant) ([]byte, string, error) {
	repl, ok := replacements[m.Type]
	if !ok {
		return nil, "", fmt.Errorf("%s: unknown mutator", m)
	}
	fset := token.NewFileSet()
	file := fset.AddFile(m.File, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0)
	for {
		pos, tok, _ := s.Scan()
		if tok == token.EOF {
			return nil, "", fmt.Errorf("%s: no operator at that position", m)
		}
		p := fset.Position(pos)
		if p.Line != m.Line || p.Column != m.Col {
			continue
		}
		to, ok := repl[tok]
		if !ok {
			return nil, "", fmt.Errorf("%s: %q is not changed by this mutator", m, tok)
		}
		off := file.Offset(pos)
		out := append(append(append([]byte{}, src[:off]...), to.String()...), src[off+len(tok.String()):]...)
		return out, fmt.Sprintf("%s -> %s", tok, to), nil
	}
}

// Result of one mutant's tests.
type Result string

const (
	Killed   Result = "KILLED"
	Lived    Result = "LIVED"
	TimedOut Result = "TIMED OUT"
)

func main() {
	pkg := flag.String("pkg", "", "the package the mutants are in, e.g. ./client/codec (required)")
	run := flag.String("run", "", "go test -run pattern: the tests to run against each mutant")
	skip := flag.String("skip", "", "go test -skip pattern")
	coeff := flag.Float64("coeff", 10, "a mutant's tests may take this many times the unmutated run before they count as timed out")
	minLimit := flag.Duration("min-timeout", time.Minute, "the shortest time limit per mutant")
	from := flag.String("from", "-", "gremlins dry-run output to read (- for standard input)")
	out := flag.String("json", "", "write the results to this file as JSON")
	useSchema := flag.Bool("schema", true, "compile every mutant into one test binary behind a switch and run it once per mutant, instead of compiling an overlay per mutant (mutants the switch cannot hold still get an overlay)")
	base := flag.String("base", "", "test only the mutants on lines changed since this commit (git diff BASE in the package directory)")
	sel := flag.Bool("select", true, "run against each mutant only the tests that reach its position (measured once, test by test, with coverage); -select=false runs every test each time")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: gremlins unleash --dry-run PKG | mutant -pkg PKG [-base COMMIT] [-run RE] [-skip RE] [-coeff N] [-select=false] [-schema=false] [-json FILE]\n\n")
		flag.PrintDefaults()
		fmt.Fprintf(os.Stderr, "\nExit status: 0 when every mutant was tested, 1 when the unmutated tests fail or a mutant cannot be applied, 2 on a usage error.\n")
	}
	flag.Parse()
	if *pkg == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := mainErr(*pkg, *run, *skip, *coeff, *minLimit, *from, *out, *base, *sel, *useSchema); err != nil {
		fmt.Fprintln(os.Stderr, "mutant:", err)
		os.Exit(1)
	}
}

func mainErr(pkg, run, skip string, coeff float64, minLimit time.Duration, from, out, base string, sel, useSchema bool) error {
	in := io.Reader(os.Stdin)
	if from != "-" {
		f, err := os.Open(from)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	mutants, err := parseDryRun(in)
	if err != nil {
		return err
	}
	if base != "" {
		changed, err := changedLines(pkg, base)
		if err != nil {
			return err
		}
		kept := mutants[:0]
		for _, m := range mutants {
			if changed[m.File][m.Line] {
				kept = append(kept, m)
			}
		}
		fmt.Printf("mutant: %d of %d mutants on lines changed since %s\n", len(kept), len(mutants), base)
		if mutants = kept; len(mutants) == 0 {
			return nil
		}
	}
	if len(mutants) == 0 {
		return errors.New("no RUNNABLE mutant in the dry-run output")
	}
	testArgs := func(run string) []string {
		args := []string{"test", "-count=1", "-vet=off", "-failfast"}
		if run != "" {
			args = append(args, "-run", run)
		}
		if skip != "" {
			args = append(args, "-skip", skip)
		}
		return args
	}
	if err := checkSandbox(goWritable()); err != nil {
		return err
	}
	// Interrupted (^C, or timeout(1)'s SIGTERM from .ci/mutate.sh), stop
	// the running tests, keep the verdicts so far and remove the work
	// directory instead of leaving gigabytes of binaries in /tmp.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if res, msg := goTest(ctx, testArgs(run), pkg); res != Lived {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return fmt.Errorf("the unmutated tests of %s do not pass:\n%s", pkg, msg)
	}
	limit := max(time.Duration(coeff*float64(time.Since(start))), minLimit)
	fmt.Printf("mutant: %d mutants in %s, each limited to %s\n", len(mutants), pkg, limit.Round(time.Second))

	tmp, err := os.MkdirTemp("", "mutant-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var cov *coverage
	if sel {
		// A test that never reaches a mutant's position cannot notice
		// it: run only those that do.
		if cov, err = measureCoverage(ctx, pkg, run, skip, tmp, limit, func(f string, a ...any) { fmt.Printf(f, a...) }); err != nil {
			return err
		}
	}
	logf := func(f string, a ...any) { fmt.Printf(f, a...) }
	var sch *schema
	if useSchema {
		if sch, err = buildSchema(pkg, mutants, tmp, logf); err != nil {
			logf("mutant: no schema, an overlay per mutant: %v\n", err)
			sch = nil
		} else if res, msg := runSchema(ctx, sch, 0, run, skip); res != Lived {
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			// The schema with no mutant on must be the package as it is.
			logf("mutant: the schema's tests fail with no mutant on; an overlay per mutant:\n%s\n", msg)
			sch = nil
		} else {
			n := 0
			for _, h := range sch.held {
				if h {
					n++
				}
			}
			logf("mutant: schema built: %d of %d mutants in one test binary, the rest by overlay\n", n, len(mutants))
		}
	}
	type record struct {
		Mutant
		Change  string `json:"change"`
		Result  Result `json:"result"`
		Seconds float64
		Tests   []string `json:"tests,omitempty"` // the tests run, when selected by coverage
		How     string   `json:"how"`             // "schema" or "overlay"
	}
	var records []record
	counts := map[Result]int{}
	for i, m := range mutants {
		if ctx.Err() != nil {
			break
		}
		path, err := filepath.Abs(filepath.Join(pkg, m.File))
		if err != nil {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mutated, change, err := apply(src, m)
		if err != nil {
			return err
		}
		mpath := filepath.Join(tmp, "mutant.go")
		if err := os.WriteFile(mpath, mutated, 0o644); err != nil {
			return err
		}
		overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{path: mpath}})
		opath := filepath.Join(tmp, "overlay.json")
		if err := os.WriteFile(opath, overlay, 0o644); err != nil {
			return err
		}
		args := testArgs(run)
		var tests []string
		if cov != nil {
			if sel, ok := cov.selectTests(m); ok {
				tests = sel
				args = testArgs(runPattern(sel))
			}
		}
		mctx, cancel := context.WithTimeout(ctx, limit)
		t0 := time.Now()
		var res Result
		how := "overlay"
		if sch != nil && sch.held[i] {
			how = "schema"
			sel := run
			if tests != nil {
				sel = runPattern(tests)
			}
			res, _ = runSchema(mctx, sch, i+1, sel, skip)
		} else {
			res, _ = goTest(mctx, append(args, "-overlay", opath), pkg)
		}
		timedOut := mctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			break // interrupted: this mutant has no verdict
		}
		if timedOut {
			res = TimedOut
		}
		counts[res]++
		took := time.Since(t0)
		ran := "all tests"
		if tests != nil {
			ran = fmt.Sprintf("%d tests", len(tests))
		}
		fmt.Printf("%4d/%d %-9s %s (%s) %s, %s, %s\n", i+1, len(mutants), res, m, change, took.Round(100*time.Millisecond), ran, how)
		records = append(records, record{Mutant: m, Change: change, Result: res, Seconds: took.Seconds(), Tests: tests, How: how})
	}
	k, l := counts[Killed], counts[Lived]
	eff := 0.0
	if k+l > 0 {
		eff = 100 * float64(k) / float64(k+l)
	}
	fmt.Printf("Killed: %d, Lived: %d, Timed out: %d\nTest efficacy: %.2f%%\n", k, l, counts[TimedOut], eff)
	if out != "" {
		b, _ := json.MarshalIndent(records, "", "  ")
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d of %d mutants (the verdicts above, and in -json, are those of mutants 1 to %d)", len(records), len(mutants), len(records))
	}
	return nil
}

// goTest runs go test in pkg: Lived when the tests pass, Killed when they
// fail (or the mutant does not compile), with the tail of the output.
func goTest(ctx context.Context, args []string, pkg string) (Result, string) {
	return verdict(sandboxed(ctx, goWritable(), "go", append(args, pkg)...))
}

// verdict runs a test command in a process group of its own (the test
// binary may be go's child: a time limit ends the whole group): Lived
// when it passes, Killed when it fails, with the tail of its output.
func verdict(cmd *exec.Cmd) (Result, string) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return Killed, tail(buf.String())
	}
	return Lived, buf.String()
}

// runSchema runs the schema's tests with mutant id on (0: none): Lived
// when they pass, Killed when they fail.
func runSchema(ctx context.Context, sch *schema, id int, run, skip string) (Result, string) {
	args := []string{"-test.count=1", "-test.failfast"}
	if run != "" {
		args = append(args, "-test.run", run)
	}
	if skip != "" {
		args = append(args, "-test.skip", skip)
	}
	cmd := sandboxed(ctx, nil, sch.bin, args...)
	cmd.Dir = sch.dir
	cmd.Env = append(cmd.Environ(), fmt.Sprintf("%s=%d", schemaEnv, id))
	return verdict(cmd)
}

// tail is the last 4000 bytes of a test's output, from a line start.
func tail(msg string) string {
	if i := strings.LastIndex(msg[:max(0, len(msg)-4000)], "\n"); i > 0 {
		return msg[i+1:]
	}
	return msg
}

// goWritable is what go test must write besides /tmp: its build cache.
var goWritable = sync.OnceValue(func() []string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return nil
	}
	return []string{strings.TrimSpace(string(out))}
})
