package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseFlagsAnywhere(t *testing.T) {
	fs := NewFlags("backup-push")
	perm := fs.Bool("permanent", false, "never deleted by retention")
	conc := fs.Int("n", 1, "how many")
	pos, err := Parse(fs, Help{Usage: "x"}, []string{"/srv/pg", "--permanent", "-n", "4", "extra", "--", "--not-a-flag"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !*perm || *conc != 4 {
		t.Fatalf("permanent=%v n=%d, want true 4", *perm, *conc)
	}
	if strings.Join(pos, "|") != "/srv/pg|extra|--not-a-flag" {
		t.Fatalf("positional %q", pos)
	}
	fs2 := NewFlags("x")
	v := fs2.String("target-time", "", "")
	if _, err := Parse(fs2, Help{}, []string{"--target-time=2026-01-02 03:04:05+00", "a"}, &bytes.Buffer{}); err != nil || *v != "2026-01-02 03:04:05+00" {
		t.Fatalf("--name=value: %q %v", *v, err)
	}
}

func TestParseMisspeltFlag(t *testing.T) {
	fs := NewFlags("walgate-client backup-push")
	fs.Bool("permanent", false, "")
	fs.Bool("full", false, "")
	_, err := Parse(fs, Help{}, []string{"/srv/pg", "--permanant"}, &bytes.Buffer{})
	if !IsUsage(err) || !strings.Contains(err.Error(), "unknown flag --permanant; did you mean --permanent?") {
		t.Fatalf("got %v", err)
	}
	_, err = Parse(fs, Help{}, []string{"--zzzzzzzzzz"}, &bytes.Buffer{})
	if !IsUsage(err) || strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "--full, --permanent") {
		t.Fatalf("far-off flag: %v", err)
	}
	_, err = Parse(fs, Help{}, []string{"--permanent=maybe"}, &bytes.Buffer{})
	if !IsUsage(err) {
		t.Fatalf("bad bool: %v", err)
	}
	fs.String("pg-bin", "", "")
	_, err = Parse(fs, Help{}, []string{"--pg-bin"}, &bytes.Buffer{})
	if !IsUsage(err) || !strings.Contains(err.Error(), "needs a value") {
		t.Fatalf("missing value: %v", err)
	}
}

func TestParseHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"dir", "-h"}, {"-help"}} {
		fs := NewFlags("x")
		fs.String("target-time", "", "recover up to `TIME`")
		var out bytes.Buffer
		_, err := Parse(fs, Help{Usage: "walgate-client x DIR", Text: "does x", Exits: []ExitCode{{0, "ok"}, {8, "eight"}}}, args, &out)
		if !errors.Is(err, ErrHelp) {
			t.Fatalf("%q: %v", args, err)
		}
		for _, want := range []string{"Usage: walgate-client x DIR", "does x", "--target-time TIME", "recover up to TIME", "Exit codes:", "8   eight"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("%q: help lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

func TestClosest(t *testing.T) {
	cases := map[string]string{"permanant": "permanent", "stall_facter": "stall_factor", "jsno": "json", "q": "", "backend": "backends"}
	cands := []string{"permanent", "stall_factor", "json", "backends", "full"}
	for in, want := range cases {
		if got := Closest(in, cands); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
