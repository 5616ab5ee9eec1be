package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"0": 0, "90s": 90 * time.Second, "15m": 15 * time.Minute, "36h": 36 * time.Hour,
		"14d": 14 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1w2d12h": (9*24 + 12) * time.Hour, "1.5h": 90 * time.Minute,
		"500ms": 500 * time.Millisecond, "-1d": -24 * time.Hour}
	for in, want := range good {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "14", "14 days", "d", "2y", "1h x", "fortnight"} {
		if _, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), "14d or 2w") {
			t.Errorf("ParseDuration(%q): %v, want a refusal that says how to write one", in, err)
		}
	}
}

// Every duration field of the config, the gateway's own and those of the
// sections other packages own (lifecycle tiers and window, store
// timeouts), takes d and w.
func TestConfigDurationsEverywhere(t *testing.T) {
	cfg, err := Parse([]byte(`data: /x
limits:
  backup_session_timeout: 1d
  idle_timeout: 2m
replication:
  retry_max: 1w
health:
  backup_max_age: 8d
  drill_max_age: 13w
lifecycle:
  interval: 1d
backends:
  - name: s
    type: s3
    s3: {bucket: b, region: r, timeout: 1d}
groups:
  - name: g
    clusters: ["*"]
    backends: [s]
    lifecycle:
      pitr_window: 2w
      tiers:
        - {kind: wal, after: 14d, class: cold}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	checks := map[string][2]time.Duration{
		"limits.backup_session_timeout":      {cfg.Limits.BackupSessionTimeout, day},
		"replication.retry_max":              {cfg.Replication.RetryMax, 7 * day},
		"health.backup_max_age":              {cfg.Health.BackupMaxAge, 8 * day},
		"health.drill_max_age":               {cfg.Health.DrillMaxAge, 91 * day},
		"lifecycle.interval":                 {cfg.Lifecycle.Interval, day},
		"backends[0].s3.timeout":             {cfg.Backends[0].S3.Timeout, day},
		"groups[0].lifecycle.pitr_window":    {cfg.Groups[0].Lifecycle.PITRWindow, 14 * day},
		"groups[0].lifecycle.tiers[0].after": {cfg.Groups[0].Lifecycle.Tiers[0].After, 14 * day},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", k, v[0], v[1])
		}
	}
}

func TestParseErrorsWithLineAndPath(t *testing.T) {
	_, err := Parse([]byte(`data: /x
health:
  stall_facter: 3
  delayed_for: yesterday
limits:
  max_wal_bytes: lots
backends:
  - name: a
    type: fs
    pth: /srv
`), "walgate.yaml")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("want a *ParseError, got %v", err)
	}
	want := []struct {
		line int
		path string
		msg  string
	}{
		{3, "health.stall_facter", "unknown key"},
		{4, "health.delayed_for", "14d or 2w"},
		{6, "limits.max_wal_bytes", "want a whole number"},
		{10, "backends[0].pth", "unknown key"},
	}
	if len(pe.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(pe.Problems), len(want), err)
	}
	for i, w := range want {
		p := pe.Problems[i]
		if p.Line != w.line || p.Path != w.path || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %+v, want line %d %s %q", i, p, w.line, w.path, w.msg)
		}
	}
	if !strings.Contains(strings.Join(pe.Problems[0].Known, " "), "stall_factor") {
		t.Errorf("known keys of health lack stall_factor: %v", pe.Problems[0].Known)
	}
	pe.Suggest = func(w string, known []string) string {
		if w == "stall_facter" {
			return "stall_factor"
		}
		return ""
	}
	msg := pe.Error()
	for _, s := range []string{"walgate.yaml:3: health.stall_facter: unknown key; did you mean stall_factor?",
		"walgate.yaml:10: backends[0].pth: unknown key (known here: name, type, path"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
	_, err = Parse([]byte("data: /x\n  listen: [\n"), "bad.yaml")
	if !errors.As(err, &pe) || pe.Problems[0].Line == 0 {
		t.Errorf("a YAML syntax error should carry its line: %v", err)
	}
}
