package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runWalgate(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// Every verb and sub-verb answers --help and -h with its own usage, flags
// and exit codes on stdout, and exits 0.
func TestVerbHelp(t *testing.T) {
	verbs := [][]string{{"serve"}, {"status"}, {"token"}, {"token", "add"}, {"token", "list"}, {"token", "revoke"},
		{"lifecycle"}, {"lifecycle", "plan"}, {"lifecycle", "apply"}, {"backend"}, {"backend", "check"},
		{"cert"}, {"cert", "init"}, {"index"}, {"index", "rebuild"}, {"index", "migrate"}, {"config"}, {"config", "check"}}
	for _, v := range verbs {
		for _, h := range []string{"--help", "-h"} {
			out, errOut, code := runWalgate(append(append([]string{}, v...), h)...)
			name := strings.Join(v, " ")
			if code != 0 {
				t.Errorf("walgate %s %s: exit %d, stderr %q", name, h, code, errOut)
			}
			if !strings.Contains(out, "Usage: walgate "+v[0]) || !strings.Contains(out, "Exit codes:") {
				t.Errorf("walgate %s %s: no usage line or exit codes:\n%s", name, h, out)
			}
			if len(v) == 2 && !strings.Contains(out, "Flags:") {
				t.Errorf("walgate %s %s: no flags:\n%s", name, h, out)
			}
		}
	}
}

func TestMisspeltFlagAndVerb(t *testing.T) {
	_, errOut, code := runWalgate("status", "--data", t.TempDir(), "--jsno")
	if code != 2 || !strings.Contains(errOut, "unknown flag --jsno; did you mean --json?") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, errOut, code = runWalgate("lifecycle", "plna")
	if code != 2 || !strings.Contains(errOut, `did you mean "plan"?`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, errOut, code = runWalgate("stauts")
	if code != 2 || !strings.Contains(errOut, `did you mean "status"?`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// Flags go before or after the arguments.
func TestFlagsAfterArguments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, errOut, code := runWalgate("cert", "init", dir, "--days", "2", "--host", "db1.example")
	if code != 0 || !strings.Contains(out, "db1.example") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheck(t *testing.T) {
	data := t.TempDir()
	good := writeFile(t, "good.yaml", "data: "+data+"\nhealth:\n  backup_max_age: 8d\n  drill_max_age: 13w\n")
	out, errOut, code := runWalgate("config", "check", "--config", good, "--connect")
	if code != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, "backend local (fs): reachable") ||
		!strings.Contains(out, "catalog: none yet") {
		t.Fatalf("good config: exit %d\n%s%s", code, out, errOut)
	}
	bad := writeFile(t, "bad.yaml", "data: "+data+"\nhealth:\n  stall_facter: 3\n  backup_max_age: 14 days\n")
	_, errOut, code = runWalgate("config", "check", "--config", bad)
	for _, want := range []string{"bad.yaml:3: health.stall_facter: unknown key; did you mean stall_factor?",
		"bad.yaml:4: health.backup_max_age:", "14d or 2w"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad config: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code != 2 {
		t.Errorf("bad config: exit %d, want 2", code)
	}
	// serve reads through the same strict parse and says the same.
	_, serveErr, code := runWalgate("serve", "--config", bad)
	if code != 2 || !strings.Contains(serveErr, "did you mean stall_factor?") {
		t.Errorf("serve: exit %d: %s", code, serveErr)
	}
	// An unreachable backend fails --connect.
	gone := writeFile(t, "gone.yaml", "data: "+data+"\nbackends:\n  - {name: s3a, type: s3, s3: {bucket: b, region: us-east-1, endpoint: 'http://127.0.0.1:1', access_key_id: a, secret_access_key: b, path_style: true, max_attempts: 1, timeout: 2s}}\n")
	out, errOut, code = runWalgate("config", "check", "--config", gone, "--connect", "--timeout", "5s")
	if code != 2 || !strings.Contains(out, "backend s3a (s3): FAILED") {
		t.Errorf("unreachable backend: exit %d\n%s%s", code, out, errOut)
	}
}
