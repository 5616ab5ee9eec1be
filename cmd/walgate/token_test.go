package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/audit"
	"github.com/walgate/walgate/index"
)

// walgate runs the CLI in-process and returns its exit code and output.
func walgate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The token verbs offline (no gateway on the directory): add with
// --expires and --all-clusters, list with expiry and successor, rotate
// with --grace, revoke; bad input is a usage error (exit 2), an empty ID
// included; every act is a line in DATA/audit.log without the secret.
func TestTokenVerbsOffline(t *testing.T) {
	dir := t.TempDir()
	code, secret, stderr := walgate(t, "token", "add", "--data", dir, "--cluster", "main", "--scope", "push", "--expires", "10d")
	if code != 0 {
		t.Fatalf("token add: exit %d: %s", code, stderr)
	}
	secret = strings.TrimSpace(secret)
	if !strings.Contains(stderr, "expires ") {
		t.Errorf("token add says %q; want its expiry", stderr)
	}
	code, fleetSecret, stderr := walgate(t, "token", "add", "--data", dir, "--all-clusters", "--scope", "admin")
	if code != 0 || !strings.Contains(stderr, "all clusters") {
		t.Fatalf("token add --all-clusters: exit %d: %s", code, stderr)
	}
	for _, bad := range [][]string{
		{"add", "--all-clusters", "--scope", "push"},
		{"add", "--all-clusters", "--cluster", "main", "--scope", "admin"},
		{"add", "--cluster", "main", "--expires", "10x"},
		{"add", "--cluster", "main", "--expires", "-3d"},
		{"add", "--cluster", "main", "--expires", "0s"},
		{"revoke", ""},
		{"revoke", " "},
		{"rotate", ""},
		{"revoke"},
		{"rotate", "a", "b"},
	} {
		code, _, stderr := walgate(t, append([]string{"token", bad[0], "--data", dir}, bad[1:]...)...)
		if code != 2 || strings.Contains(stderr, "404") {
			t.Errorf("token %q: exit %d %q, want a usage error (2)", bad, code, stderr)
		}
	}

	list := func() []string {
		t.Helper()
		code, out, stderr := walgate(t, "token", "list", "--data", dir)
		if code != 0 {
			t.Fatalf("token list: exit %d: %s", code, stderr)
		}
		return strings.Split(strings.TrimSpace(out), "\n")
	}
	lines := list()
	if !strings.Contains(lines[0], "EXPIRES") || !strings.Contains(lines[0], "SUCCESSOR") || len(lines) != 3 {
		t.Fatalf("token list:\n%s", strings.Join(lines, "\n"))
	}
	id := strings.Fields(lines[2])[0]
	if !strings.Contains(lines[2], "main") {
		id = strings.Fields(lines[1])[0]
	}

	// walgate status shows the token expiring within 14 days.
	code, out, stderr := walgate(t, "status", "--data", dir, "--json", "--tokens")
	var expiring []index.Token
	if code != 0 || json.Unmarshal([]byte(out), &expiring) != nil || len(expiring) != 1 || expiring[0].ID != id {
		t.Fatalf("status --json --tokens: exit %d %s %s", code, out, stderr)
	}
	if code, out, _ := walgate(t, "status", "--data", dir); code != 0 || !strings.Contains(out, "EXPIRING TOKEN") || !strings.Contains(out, id) {
		t.Errorf("status: exit %d, no expiring token %s:\n%s", code, id, out)
	}

	code, next, stderr := walgate(t, "token", "rotate", id, "--data", dir, "--grace", "2h")
	if code != 0 {
		t.Fatalf("token rotate: exit %d: %s", code, stderr)
	}
	next = strings.TrimSpace(next)
	if !strings.HasPrefix(next, "wgt1.main.") || next == secret {
		t.Fatalf("token rotate printed %q", next)
	}
	var nextID string
	for _, l := range list() {
		f := strings.Fields(l)
		if f[0] == id && f[5] == "-" {
			t.Errorf("the rotated token shows no successor: %q", l)
		}
		if f[0] != id && f[1] == "main" {
			nextID = f[0]
		}
	}
	if code, _, stderr := walgate(t, "token", "revoke", "--data", dir, nextID); code != 0 {
		t.Fatalf("token revoke: exit %d: %s", code, stderr)
	}

	raw, err := os.ReadFile(audit.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, strings.TrimSpace(fleetSecret), next} {
		if i := strings.LastIndexByte(s, '.'); i < 0 || strings.Contains(string(raw), s[i+1:]) {
			t.Fatalf("audit.log holds a secret (or no secret was printed: %q):\n%s", s, raw)
		}
	}
	entries, err := audit.Tail(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Client != "local" || e.Result != "ok" || e.Time.IsZero() || time.Since(e.Time) > time.Hour {
			t.Errorf("audit entry %+v", e)
		}
		acts = append(acts, e.Action+" "+e.Target)
	}
	want := []string{"token.add " + id + " main", "token.add", "token.rotate " + id + " -> " + nextID, "token.revoke " + nextID}
	if len(acts) != len(want) {
		t.Fatalf("audit acts %q, want %q", acts, want)
	}
	for i := range want {
		if !strings.HasPrefix(acts[i], want[i]) {
			t.Errorf("audit act %d is %q, want %q", i, acts[i], want[i])
		}
	}
}

// Durations: Go's, and whole days and weeks.
func TestParseLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "12w": 84 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseLifetime("--expires", in); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "1.5d", "-1w", "0d", "1y", "99999999d"} {
		if _, err := parseLifetime("--expires", in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

// An index rebuild and a backend check done offline are in the audit log.
func TestOfflineActsAudited(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "walgate.yaml")
	yaml := "data: " + filepath.Join(dir, "data") + "\nbackends:\n  - {name: local, type: fs, path: " + filepath.Join(dir, "store") + "}\n"
	if err := os.MkdirAll(filepath.Join(dir, "store"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := walgate(t, "token", "add", "--config", cfgPath, "--cluster", "main"); code != 0 {
		t.Fatalf("token add: %d %s", code, stderr)
	}
	if code, _, stderr := walgate(t, "backend", "check", "local", "--config", cfgPath); code != 0 {
		t.Fatalf("backend check: %d %s", code, stderr)
	}
	if code, _, stderr := walgate(t, "index", "rebuild", "--from", "local", "--config", cfgPath); code != 0 {
		t.Fatalf("index rebuild: %d %s", code, stderr)
	}
	entries, err := audit.Tail(filepath.Join(dir, "data"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Action != "index.rebuild" || entries[0].Target != "from local" || entries[0].Result != "ok" ||
		entries[1].Action != "backend.check" || entries[1].Target != "local" || entries[1].Result != "ok" {
		t.Fatalf("audit entries %+v", entries)
	}
}
