package main

import (
	"strings"
	"testing"
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
