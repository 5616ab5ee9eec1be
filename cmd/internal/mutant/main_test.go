package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseDryRun(t *testing.T) {
	in := `Starting...
    RUNNABLE CONDITIONALS_BOUNDARY at size.go:8:7
 NOT COVERED ARITHMETIC_BASE at secretstream.go:126:29
    RUNNABLE INVERT_NEGATIVES at sub/x.go:11:11
Runnable: 2, Not covered: 1
`
	got, err := parseDryRun(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mutant{{"CONDITIONALS_BOUNDARY", "size.go", 8, 7}, {"INVERT_NEGATIVES", "sub/x.go", 11, 11}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestApply(t *testing.T) {
	src := "package p\n\nfunc f(a, b int) bool {\n\tc := -a + b*2\n\ta++\n\treturn a <= b && c != 0\n}\n"
	cases := []struct {
		m    Mutant
		line string // the mutated line
	}{
		{Mutant{"ARITHMETIC_BASE", "p.go", 4, 10}, "\tc := -a - b*2"},
		{Mutant{"ARITHMETIC_BASE", "p.go", 4, 13}, "\tc := -a + b/2"},
		{Mutant{"INVERT_NEGATIVES", "p.go", 4, 7}, "\tc := +a + b*2"},
		{Mutant{"INCREMENT_DECREMENT", "p.go", 5, 3}, "\ta--"},
		{Mutant{"CONDITIONALS_BOUNDARY", "p.go", 6, 11}, "\treturn a < b && c != 0"},
		{Mutant{"CONDITIONALS_NEGATION", "p.go", 6, 11}, "\treturn a > b && c != 0"},
		{Mutant{"INVERT_LOGICAL", "p.go", 6, 16}, "\treturn a <= b || c != 0"},
		{Mutant{"CONDITIONALS_NEGATION", "p.go", 6, 21}, "\treturn a <= b && c == 0"},
	}
	for _, c := range cases {
		out, _, err := apply([]byte(src), c.m)
		if err != nil {
			t.Errorf("%s: %v", c.m, err)
			continue
		}
		lines := strings.Split(string(out), "\n")
		if got := lines[c.m.Line-1]; got != c.line {
			t.Errorf("%s: %q, want %q", c.m, got, c.line)
		}
		// Only that line changed.
		orig := strings.Split(src, "\n")
		for i := range orig {
			if i != c.m.Line-1 && orig[i] != lines[i] {
				t.Errorf("%s: line %d changed too", c.m, i+1)
			}
		}
	}
	// A position without an operator the mutator changes is an error,
	// never a silent no-op (which would count as a living mutant).
	for _, m := range []Mutant{{"ARITHMETIC_BASE", "p.go", 6, 11}, {"CONDITIONALS_BOUNDARY", "p.go", 1, 1}, {"NO_SUCH", "p.go", 4, 10}} {
		if _, _, err := apply([]byte(src), m); err == nil {
			t.Errorf("%s: applied", m)
		}
	}
}

func TestParseProfileAndSelect(t *testing.T) {
	prof := `mode: set
example.com/p/a.go:3.20,5.2 2 1
example.com/p/a.go:7.20,9.2 2 0
example.com/p/b.go:10.5,10.30 1 1
`
	blocks, err := parseProfile(strings.NewReader(prof))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks["example.com/p/a.go"]) != 1 || len(blocks["example.com/p/b.go"]) != 1 {
		t.Fatalf("blocks that ran: %+v", blocks)
	}
	for _, bad := range []string{"example.com/p/a.go:3.20,5.2 2\n", "a.go 3.20,5.2 2 1\n", "a.go:3.x,5.2 2 1\n", "a.go:3.20,5.2 2 z\n"} {
		if _, err := parseProfile(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: parsed", bad)
		}
	}
	c := &coverage{
		importPath: "example.com/p",
		tests:      []string{"TestA", "TestB", "TestNone"},
		blocks: map[string]map[string][]block{
			"TestA":    {"example.com/p/a.go": {{3, 20, 5, 2}}},
			"TestB":    {"example.com/p/a.go": {{3, 20, 5, 2}}, "example.com/p/b.go": {{10, 5, 10, 30}}},
			"TestNone": {},
		},
		always: []string{"TestAlone"},
	}
	cases := []struct {
		m    Mutant
		want string // the tests selected, or "" for none (run all)
	}{
		{Mutant{"X", "a.go", 4, 1}, "TestA TestB TestAlone"},
		{Mutant{"X", "a.go", 3, 20}, "TestA TestB TestAlone"}, // first column of the block
		{Mutant{"X", "a.go", 5, 2}, "TestA TestB TestAlone"},  // last column
		{Mutant{"X", "a.go", 3, 19}, ""},                      // just before it
		{Mutant{"X", "a.go", 5, 3}, ""},                       // just after it
		{Mutant{"X", "a.go", 8, 1}, ""},                       // a block no test ran
		{Mutant{"X", "b.go", 10, 29}, "TestB TestAlone"},
		{Mutant{"X", "c.go", 10, 29}, ""},
	}
	for _, tc := range cases {
		got, ok := c.selectTests(tc.m)
		if strings.Join(got, " ") != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: %v %v, want %q", tc.m, got, ok, tc.want)
		}
	}
	if got := runPattern([]string{"TestA", "TestB.x"}); got != `^(TestA|TestB\.x)$` {
		t.Errorf("runPattern: %s", got)
	}
}

// TestSelectionEndToEnd mutates a small module: each mutant is tested by
// exactly the test that reaches it, the one a test catches is killed and
// the one no test checks lives, and a test that fails alone runs against
// every mutant.
func TestSelectionEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a module's tests several times")
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("m.go", "package m\n\nfunc Checked(a int) bool {\n\treturn a > 1\n}\n\nfunc Unchecked(a int) bool {\n\treturn a > 1\n}\n")
	write("m_test.go", `package m

import (
	"os"
	"testing"
)

func TestChecked(t *testing.T) {
	if Checked(1) || !Checked(2) {
		t.Fatal("Checked")
	}
}

func TestUnchecked(t *testing.T) { Unchecked(1) }

func TestOther(t *testing.T) { _ = os.Getenv }

func TestSkipped(t *testing.T) { t.Fatal("run although -skip names it") }
`)
	write("dry", "    RUNNABLE CONDITIONALS_BOUNDARY at m.go:4:11\n    RUNNABLE CONDITIONALS_BOUNDARY at m.go:8:11\n")
	t.Chdir(dir)
	cov, err := measureCoverage(context.Background(), "./", "", "TestSkipped", t.TempDir(), time.Minute, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cov.tests, " "); got != "TestChecked TestUnchecked TestOther" {
		t.Fatalf("tests listed: %s", got)
	}
	if sel, _ := cov.selectTests(Mutant{"CONDITIONALS_BOUNDARY", "m.go", 4, 11}); strings.Join(sel, " ") != "TestChecked" {
		t.Errorf("m.go:4: %v", sel)
	}
	if sel, _ := cov.selectTests(Mutant{"CONDITIONALS_BOUNDARY", "m.go", 8, 11}); strings.Join(sel, " ") != "TestUnchecked" {
		t.Errorf("m.go:8: %v", sel)
	}
	out := filepath.Join(t.TempDir(), "r.json")
	if err := mainErr("./", "", "TestSkipped", 10, time.Minute, "dry", out, "", true, false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Line   int
		Result Result `json:"result"`
		Tests  []string
	}
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Result != Killed || recs[1].Result != Lived ||
		strings.Join(recs[0].Tests, " ") != "TestChecked" || strings.Join(recs[1].Tests, " ") != "TestUnchecked" {
		t.Fatalf("results: %+v", recs)
	}

	// A test that fails alone has no profile: it joins every selection.
	write("m_test.go", strings.Replace(string(must(os.ReadFile(filepath.Join(dir, "m_test.go")))), `func TestOther(t *testing.T) { _ = os.Getenv }`,
		`func TestOther(t *testing.T) { if os.Getenv("MUTANT_TEST_PASS") == "" { t.Fatal("alone") } }`, 1))
	t.Setenv("MUTANT_TEST_PASS", "")
	cov, err = measureCoverage(context.Background(), "./", "", "TestSkipped", t.TempDir(), time.Minute, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if sel, _ := cov.selectTests(Mutant{"CONDITIONALS_BOUNDARY", "m.go", 4, 11}); strings.Join(sel, " ") != "TestChecked TestOther" {
		t.Errorf("with a test failing alone: %v", sel)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSchemaMatchesOverlay tests the same mutants through a schema and
// through one overlay each: every verdict must agree, and the mutants a
// schema cannot hold (a constant, a for clause's post statement, a type
// the file cannot name, a loop a rewrite would make non-terminating) go to
// overlays.
func TestSchemaMatchesOverlay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a module's tests many times")
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := `package m

import (
	"os"
	"time"
)

type flag bool

const limit = 4 * 2

func Sum(xs []int) int {
	s := 0
	for i := 0; i < len(xs); i++ {
		s += xs[i]
	}
	return s
}

func Neg(a int) int { return -a }

func First(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v && n >= 0 {
			break
		}
		n++
	}
	return n
}

func Half(d time.Duration) time.Duration { return d / 2 }

func Big(a int) flag { return a > limit }

func Mode(fi os.FileInfo) os.FileMode { return fi.Mode() | 1 }

func Loop() int {
	for i := 0; ; i++ {
		if i > 3 {
			return i
		}
		continue
	}
}
`
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("m.go", src)
	write("m_test.go", `package m

import "testing"

func TestSum(t *testing.T) {
	if Sum([]int{1, 2, 3}) != 6 {
		t.Fatal("Sum")
	}
}

func TestNeg(t *testing.T) {
	if Neg(2) != -2 {
		t.Fatal("Neg")
	}
}

func TestFirst(t *testing.T) {
	if First([]int{1, 2, 3}, 2) != 1 {
		t.Fatal("First")
	}
}

func TestBig(t *testing.T) {
	if !Big(9) || Big(8) {
		t.Fatal("Big")
	}
}

func TestLoop(t *testing.T) { Loop() }
`)
	// at is the dry-run line of a mutant at the n-th operator op on the
	// line holding marker.
	lines := strings.Split(src, "\n")
	var dry strings.Builder
	at := func(typ, marker, op string) string {
		for i, l := range lines {
			if j := strings.Index(l, marker); j >= 0 {
				k := strings.Index(l[j:], op)
				if k < 0 {
					t.Fatalf("%q not in %q", op, marker)
				}
				loc := fmt.Sprintf("m.go:%d:%d", i+1, j+k+1)
				fmt.Fprintf(&dry, "    RUNNABLE %s at %s\n", typ, loc)
				return loc
			}
		}
		t.Fatalf("no line holds %q", marker)
		return ""
	}
	want := map[string]string{} // location+type -> how
	add := func(typ, marker, op, how string) { want[typ+" "+at(typ, marker, op)] = how }
	add("ARITHMETIC_BASE", "4 * 2", "*", "overlay")                 // constant
	add("CONDITIONALS_BOUNDARY", "i < len(xs)", "<", "schema")      // killed (index out of range)
	add("INCREMENT_DECREMENT", "i < len(xs); i++", "++", "overlay") // for clause post statement
	add("INVERT_ASSIGNMENTS", "s += xs[i]", "+=", "schema")
	add("INVERT_NEGATIVES", "return -a", "-", "schema")
	add("CONDITIONALS_NEGATION", "x == v && n >= 0", "==", "schema")
	add("CONDITIONALS_BOUNDARY", "n >= 0", ">=", "schema") // lives
	add("INVERT_LOGICAL", "x == v && n >= 0", "&&", "schema")
	add("INVERT_LOOPCTRL", "break", "break", "schema")
	add("INCREMENT_DECREMENT", "n++", "++", "schema")
	add("ARITHMETIC_BASE", "d / 2", "/", "schema")            // lives: no test
	add("CONDITIONALS_BOUNDARY", "a > limit", ">", "schema")  // a bool of a named type
	add("INVERT_BITWISE", "fi.Mode() | 1", "|", "overlay")    // its type's package (io/fs) is not imported there
	add("INVERT_LOOPCTRL", "continue", "continue", "overlay") // the loop would not terminate
	write("dry", dry.String())
	t.Chdir(dir)

	type rec struct {
		Type   string
		File   string
		Line   int
		Col    int
		Result Result `json:"result"`
		How    string `json:"how"`
	}
	results := func(schema bool) []rec {
		out := filepath.Join(t.TempDir(), "r.json")
		if err := mainErr("./", "", "", 10, time.Minute, "dry", out, "", true, schema); err != nil {
			t.Fatal(err)
		}
		var recs []rec
		if err := json.Unmarshal(must(os.ReadFile(out)), &recs); err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(want) {
			t.Fatalf("%d results for %d mutants", len(recs), len(want))
		}
		return recs
	}
	withSchema, withOverlay := results(true), results(false)
	lived := 0
	for i, r := range withSchema {
		key := fmt.Sprintf("%s %s:%d:%d", r.Type, r.File, r.Line, r.Col)
		if r.How != want[key] {
			t.Errorf("%s: tested by %s, want %s", key, r.How, want[key])
		}
		if o := withOverlay[i]; o.Result != r.Result || o.How != "overlay" {
			t.Errorf("%s: %s by %s, %s by %s", key, r.Result, r.How, o.Result, o.How)
		}
		if r.Result == Lived {
			lived++
		}
	}
	if lived != 3 {
		t.Errorf("%d mutants lived, want 3 (n >= 0, d / 2, fi.Mode() | 1): %+v", lived, withSchema)
	}
}

// TestSandbox: as root, what a mutant's tests run cannot write outside
// /tmp, /dev/shm and the build cache.
func TestSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		if cmd := sandboxed(context.Background(), nil, "true"); filepath.Base(cmd.Path) != "true" {
			t.Fatalf("not root, yet sandboxed: %v", cmd.Args)
		}
		return
	}
	if err := checkSandbox(goWritable()); err != nil {
		t.Fatal(err)
	}
	here := filepath.Join(must(os.Getwd()), ".sandbox-probe")
	defer os.Remove(here)
	out, err := sandboxed(context.Background(), goWritable(), "sh", "-c", `touch "$1"`, "sh", here).CombinedOutput()
	if err == nil {
		t.Fatalf("created %s from the sandbox: %s", here, out)
	}
	if _, err := os.Stat(here); err == nil {
		t.Fatalf("%s exists", here)
	}
	dir := t.TempDir()
	if out, err := sandboxed(context.Background(), nil, "sh", "-c", `echo x > "$1/f"`, "sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("writing under /tmp from the sandbox: %v %s", err, out)
	}
	cache := goWritable()[0]
	if out, err := sandboxed(context.Background(), goWritable(), "sh", "-c", `f=$(mktemp -p "$1") && rm "$f"`, "sh", cache).CombinedOutput(); err != nil {
		t.Fatalf("writing the build cache from the sandbox: %v %s", err, out)
	}
}

// TestInterrupted stops a run with SIGTERM, as timeout(1) in
// .ci/mutate.sh does, while a mutant's test hangs: the hanging test is
// ended, the verdicts so far are kept in the report and the work directory
// is removed.
func TestInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a module's tests")
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("m.go", "package m\n\nfunc Big(a int) bool { return a > 5 }\n\nfunc Slow(a int) bool { return a > 1 }\n")
	write("m_test.go", `package m

import (
	"os"
	"testing"
	"time"
)

func TestBig(t *testing.T) {
	if !Big(6) || Big(5) {
		t.Fatal("Big")
	}
}

func TestSlow(t *testing.T) {
	if Slow(1) {
		os.WriteFile(os.Getenv("MUTANT_TEST_MARK"), nil, 0o644)
		time.Sleep(10 * time.Minute)
	}
}
`)
	write("dry", "    RUNNABLE CONDITIONALS_BOUNDARY at m.go:3:33\n    RUNNABLE CONDITIONALS_BOUNDARY at m.go:5:34\n")
	t.Chdir(dir)
	work := t.TempDir()
	t.Setenv("TMPDIR", work)
	mark := filepath.Join(t.TempDir(), "hanging")
	t.Setenv("MUTANT_TEST_MARK", mark)
	go func() {
		for {
			if _, err := os.Stat(mark); err == nil {
				syscall.Kill(os.Getpid(), syscall.SIGTERM)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	out := filepath.Join(t.TempDir(), "r.json")
	t0 := time.Now()
	err := mainErr("./", "", "", 10, 5*time.Minute, "dry", out, "", true, true)
	if err == nil || !strings.Contains(err.Error(), "interrupted after 1 of 2 mutants") {
		t.Fatalf("error: %v", err)
	}
	if d := time.Since(t0); d > 4*time.Minute {
		t.Errorf("the hanging test was not stopped: %s", d)
	}
	var recs []struct {
		Line   int
		Result Result `json:"result"`
	}
	if err := json.Unmarshal(must(os.ReadFile(out)), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Line != 3 || recs[0].Result != Killed {
		t.Fatalf("report: %+v", recs)
	}
	if left, _ := filepath.Glob(filepath.Join(work, "mutant-*")); len(left) > 0 {
		t.Errorf("work directory left: %v", left)
	}
}
