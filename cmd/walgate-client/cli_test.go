package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func runClient(env map[string]string, args ...string) (string, string, int) {
	var o, e bytes.Buffer
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	code := run(context.Background(), args, func(k string) string { return env[k] }, environ, &o, &e)
	return o.String(), e.String(), code
}

// VERB --help prints that verb's usage, flags and exit codes and exits 0,
// with no configuration at all.
func TestClientVerbHelp(t *testing.T) {
	for _, v := range []string{"wal-push", "wal-fetch", "backup-push", "backup-fetch", "backup-list", "drill", "wal-verify", "check", "delete", "version"} {
		for _, h := range []string{"--help", "-h"} {
			out, errOut, code := runClient(nil, v, h)
			if code != 0 || errOut != "" {
				t.Errorf("%s %s: exit %d, stderr %q", v, h, code, errOut)
			}
			if !strings.HasPrefix(out, "Usage: walgate-client "+v) || !strings.Contains(out, "Exit codes:") {
				t.Errorf("%s %s: not the verb's help:\n%s", v, h, out)
			}
		}
	}
	out, _, _ := runClient(nil, "backup-push", "/srv/pg", "--help")
	for _, want := range []string{"--permanent", "--fail-on-corrupt-pages", "--full", "--delta"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup-push --help lacks %s", want)
		}
	}
	out, _, _ = runClient(nil, "wal-verify", "--help")
	if !strings.Contains(out, "8   wal-verify") {
		t.Errorf("wal-verify --help lacks exit 8:\n%s", out)
	}
}

// The global help lists every exit code.
func TestClientHelpListsEveryExitCode(t *testing.T) {
	out, _, code := runClient(nil, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	i := strings.Index(out, "Exit codes:")
	if i < 0 {
		t.Fatalf("no exit codes:\n%s", out)
	}
	for _, c := range []int{exitOK, exitUnavailable, exitUsage, exitAuth, exitIntegrity, exitConflict, exitRejected,
		exitDrillFailed, exitWALVerify, exitNotFound, exitStopRecovery} {
		if !strings.Contains(out[i:], fmt.Sprintf("\n  %-3d ", c)) {
			t.Errorf("exit code %d not in the help", c)
		}
	}
}

// Flags after the data directory are read; a misspelt one is named with
// the flag it likely meant, exit 2, before any connection.
func TestClientFlagsAnywhere(t *testing.T) {
	env := map[string]string{"WALGATE_URL": "http://127.0.0.1:1", "WALGATE_TOKEN": "wgt1.main." + strings.Repeat("A", 43)}
	_, errOut, code := runClient(env, "backup-push", "/nonexistent/pgdata", "--permanant")
	if code != exitUsage || !strings.Contains(errOut, "unknown flag --permanant; did you mean --permanent?") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, errOut, code = runClient(env, "backup-push", "/nonexistent/pgdata", "--permanent", "--full", "--delta")
	if code != exitUsage || !strings.Contains(errOut, "--full and --delta exclude each other") {
		t.Fatalf("flags after PGDATA not read: exit %d: %s", code, errOut)
	}
	_, errOut, code = runClient(env, "bakup-push")
	if code != exitUsage || !strings.Contains(errOut, `did you mean "backup-push"?`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, errOut, code = runClient(env, "drill", "--target-time", "yesterday")
	if code != exitUsage || !strings.Contains(errOut, "RFC 3339") {
		t.Fatalf("drill --target-time yesterday: exit %d: %s", code, errOut)
	}
}

// TestCPUProfile: WALGATE_CPUPROFILE=PATH leaves a Go CPU profile (gzipped
// protocol buffers) in PATH.PID once the process has exited, and nothing
// without it.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	expectExit(t, "version", walClient(t, map[string]string{"WALGATE_CPUPROFILE": filepath.Join(dir, "cpu")}, "version"), 0)
	got, err := filepath.Glob(filepath.Join(dir, "cpu.*"))
	if err != nil || len(got) != 1 {
		t.Fatalf("profiles %q (%v), want one cpu.PID", got, err)
	}
	if _, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(got[0]), "cpu.")); err != nil {
		t.Fatalf("profile %s is not named PATH.PID", got[0])
	}
	data, err := os.ReadFile(got[0])
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("profile %s: %d bytes, not gzip (%v)", got[0], len(data), err)
	}
	expectExit(t, "version", walClient(t, map[string]string{}, "version"), 0)
	if again, _ := filepath.Glob(filepath.Join(dir, "*")); len(again) != 1 {
		t.Fatalf("a run without WALGATE_CPUPROFILE wrote a profile: %q", again)
	}
}
