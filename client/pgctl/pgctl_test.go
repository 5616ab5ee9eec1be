package pgctl

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestQuoteConf(t *testing.T) {
	for in, want := range map[string]string{
		"":              "''",
		"cp %p /a/%f":   "'cp %p /a/%f'",
		"it's":          "'it''s'",
		`C:\dir\'x'`:    `'C:\\dir\\''x'''`,
		"/tmp/a b/sock": "'/tmp/a b/sock'",
	} {
		if got := QuoteConf(in); got != want {
			t.Errorf("QuoteConf(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRecoverySettings(t *testing.T) {
	got, err := Recovery{RestoreCommand: "x %f %p", TargetLSN: "0/3000000", TargetExclusive: true,
		TargetTimeline: "2", TargetAction: "promote"}.Settings()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"restore_command", "x %f %p"}, {"recovery_target_lsn", "0/3000000"},
		{"recovery_target_inclusive", "off"}, {"recovery_target_timeline", "2"}, {"recovery_target_action", "promote"}}
	if len(got) != len(want) {
		t.Fatalf("Settings = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Settings[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	if s, err := (Recovery{}).Settings(); err != nil || len(s) != 0 {
		t.Errorf("empty Recovery: %q, %v; want nothing", s, err)
	}
	if _, err := (Recovery{TargetTime: "2026-01-01 00:00:00+00", TargetXID: "7"}).Settings(); err == nil {
		t.Error("two targets accepted")
	}
}

func TestStartRecovery(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "postgresql.auto.conf"), []byte("work_mem = '8MB'"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := StartRecovery(dir, "test settings", [][2]string{{"restore_command", "cp '/a'/%f %p"}}, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^work_mem = '8MB'\n# test settings, \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\nrestore_command = 'cp ''/a''/%f %p'\n$`)
	if !want.Match(b) {
		t.Errorf("postgresql.auto.conf:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "standby.signal")); !os.IsNotExist(err) {
		t.Errorf("standby.signal still there (%v): the server would never end recovery", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err != nil {
		t.Errorf("recovery.signal: %v", err)
	}
	// A line break would let a value write a setting of its own.
	if err := AppendAutoConf(dir, "c", [][2]string{{"restore_command", "x\narchive_mode = on"}}, false); err == nil {
		t.Error("a value with a line break was written")
	}
	if b2, _ := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf")); string(b2) != string(b) {
		t.Errorf("a refused setting changed postgresql.auto.conf:\n%s", b2)
	}
}

func TestRunningAndLog(t *testing.T) {
	dir := t.TempDir()
	if Running(dir) {
		t.Error("Running without postmaster.pid")
	}
	pid := filepath.Join(dir, "postmaster.pid")
	if err := os.WriteFile(pid, []byte(strings.Repeat("9", 9)+"\n"+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if Running(dir) {
		t.Error("Running with the pid of no process")
	}
	if err := os.WriteFile(pid, []byte("1\n"+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !Running(dir) {
		t.Error("not Running with the pid of a live process (init)")
	}

	log := filepath.Join(dir, "server.log")
	if LogSize(log) != 0 {
		t.Error("LogSize of a missing log")
	}
	if _, err := LogSince(log, 0); err == nil {
		t.Error("LogSince of a missing log: no error")
	}
	if err := os.WriteFile(log, []byte("first start\nsecond start\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := LogSince(log, 12); got != "second start\n" {
		t.Errorf("LogSince(12) = %q", got)
	}
	if got, _ := LogSince(log, 1000); got != "first start\nsecond start\n" {
		t.Errorf("LogSince past the end of a replaced log = %q, want all of it", got)
	}
	if !PortTaken(`LOG:  could not bind IPv4 address "127.0.0.1": Address already in use`) || PortTaken("LOG:  database system is ready") {
		t.Error("PortTaken")
	}
	if p, err := FreePort(); err != nil || p <= 0 {
		t.Errorf("FreePort = %d, %v", p, err)
	}
}
