package configs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/walgate/walgate/client"
)

// needTool returns the path of a program the checks run. Missing, it fails
// the test (.ci/install-deps.sh, step promtool, installs both); under
// -short it skips.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not installed (-short)", name)
		}
		t.Fatalf("%s not found: run 'STEPS=promtool bash .ci/install-deps.sh' (Debian packages prometheus and systemd)", name)
	}
	return p
}

// unitFiles lists the systemd units and timers shipped in systemd/.
func unitFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"systemd/*.service", "systemd/*.timer"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 7 {
		t.Fatalf("expected the gateway unit and three jobs with their timers in systemd/, found %v", files)
	}
	return files
}

// unitKeys reads a unit file's Key=value lines (continuations are not used
// in the shipped units), in order.
func unitKeys(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kv [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not Key=value", path, line)
		}
		kv = append(kv, [2]string{k, v})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kv
}

func unitValues(t *testing.T, path, key string) []string {
	var vs []string
	for _, kv := range unitKeys(t, path) {
		if kv[0] == key {
			vs = append(vs, kv[1])
		}
	}
	return vs
}

// verifyRoot makes a root directory in which systemd-analyze verify can
// load the units: the system's targets (copied, so their links resolve
// inside the root), the units under etc/systemd/system, and an executable
// at every ExecStart path. It returns the root.
func verifyRoot(t *testing.T, units map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "usr/lib/systemd/system")
	etc := filepath.Join(root, "etc/systemd/system")
	for _, d := range []string{sys, etc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	if len(targets) == 0 {
		targets, _ = filepath.Glob("/lib/systemd/system/*.target")
	}
	if len(targets) == 0 {
		t.Fatal("no systemd targets in /usr/lib/systemd/system: is Debian's systemd package installed?")
	}
	for _, tg := range targets {
		b, err := os.ReadFile(tg) // follows links
		if err != nil {
			continue // a dangling alias
		}
		if err := os.WriteFile(filepath.Join(sys, filepath.Base(tg)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range units {
		path := filepath.Join(etc, name)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, ex := range unitValues(t, path, "ExecStart") {
			bin := strings.Fields(strings.TrimLeft(ex, "-@:+!"))[0]
			p := filepath.Join(root, bin)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// analyzeVerify runs systemd-analyze verify on one unit of root and
// returns what it printed: empty when systemd has nothing to say.
func analyzeVerify(t *testing.T, tool, root, name string) string {
	t.Helper()
	cmd := exec.Command(tool, "verify", "--man=no", "--root="+root, "/etc/systemd/system/"+name)
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil && s == "" {
		s = err.Error()
	}
	return s
}

// TestSystemdUnitsVerify: systemd-analyze verify accepts every unit and
// timer without a warning, and each timer starts a shipped service.
func TestSystemdUnitsVerify(t *testing.T) {
	tool := needTool(t, "systemd-analyze")
	units := map[string][]byte{}
	for _, f := range unitFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		units[filepath.Base(f)] = b
	}
	root := verifyRoot(t, units)
	for name := range units {
		if out := analyzeVerify(t, tool, root, name); out != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", name, out)
		}
		if strings.HasSuffix(name, ".timer") {
			svc := strings.TrimSuffix(name, ".timer") + ".service"
			if _, ok := units[svc]; !ok {
				t.Errorf("%s starts %s, which is not shipped", name, svc)
			}
			if len(unitValues(t, "systemd/"+name, "OnCalendar")) == 0 || !slices.Contains(unitValues(t, "systemd/"+name, "Persistent"), "true") {
				t.Errorf("%s: needs OnCalendar= and Persistent=true (a run missed while down starts at boot)", name)
			}
		}
	}

	// The check can fail: a misspelt key and a missing binary are reported.
	bad := map[string][]byte{"bad.service": []byte("[Service]\nExecStart=/usr/local/bin/walgate serve\nNoNewPrivilege=yes\n")}
	badRoot := verifyRoot(t, bad)
	if out := analyzeVerify(t, tool, badRoot, "bad.service"); !strings.Contains(out, "NoNewPrivilege") {
		t.Errorf("verify did not report a misspelt key: %q", out)
	}
	os.Remove(filepath.Join(badRoot, "usr/local/bin/walgate"))
	if out := analyzeVerify(t, tool, badRoot, "bad.service"); !strings.Contains(out, "/usr/local/bin/walgate") {
		t.Errorf("verify did not report a missing ExecStart binary: %q", out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)

// securityScore runs systemd-analyze security --offline on a unit file.
func securityScore(t *testing.T, tool, path string) (float64, string, string) {
	t.Helper()
	out, _ := exec.Command(tool, "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security --offline=yes %s printed no exposure level:\n%s", path, out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return score, string(m[2]), string(out)
}

// TestGatewayUnitSecurity: the gateway unit scores at most 3.0 ("OK") in
// systemd-analyze security, runs as its own user with its state and
// configuration directories, and reads the config file the README names.
func TestGatewayUnitSecurity(t *testing.T) {
	tool := needTool(t, "systemd-analyze")
	const unit = "systemd/walgate.service"
	score, verdict, out := securityScore(t, tool, unit)
	t.Logf("systemd-analyze security: %.1f %s", score, verdict)
	if score > 3.0 || verdict != "OK" {
		t.Errorf("walgate.service exposure %.1f %s, want at most 3.0 OK:\n%s", score, verdict, out)
	}
	want := map[string]string{
		"User": "walgate", "StateDirectory": "walgate", "ConfigurationDirectory": "walgate",
		"ProtectSystem": "strict", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
		"PrivateTmp": "yes", "ProtectHome": "yes", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"SystemCallFilter": "@system-service", "LimitNOFILE": "65536",
		"ExecStart": "/usr/local/bin/walgate serve --config /etc/walgate/walgate.yaml",
	}
	for k, v := range want {
		if got := unitValues(t, unit, k); !slices.Contains(got, v) {
			t.Errorf("walgate.service %s=%q, want %q among them", k, got, v)
		}
	}
	// The user comes from the shipped sysusers.d entry.
	su, err := os.ReadFile("systemd/walgate.sysusers")
	if err != nil || !regexp.MustCompile(`(?m)^u walgate - `).Match(su) {
		t.Errorf("systemd/walgate.sysusers does not declare the walgate user (%v)", err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "/etc/walgate/walgate.yaml") || strings.Contains(string(readme), "/etc/walgate.yaml") {
		t.Error("README.md must name the unit's config path /etc/walgate/walgate.yaml, and never /etc/walgate.yaml")
	}

	// The score moves: the unit without its hardening is exposed.
	var bare strings.Builder
	for _, kv := range unitKeys(t, unit) {
		switch kv[0] {
		case "User", "Group", "ExecStart", "Type":
			bare.WriteString(kv[0] + "=" + kv[1] + "\n")
		}
	}
	p := filepath.Join(t.TempDir(), "walgate.service")
	if err := os.WriteFile(p, []byte("[Service]\n"+bare.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, v, _ := securityScore(t, tool, p); s <= 3.0 {
		t.Errorf("an unhardened unit scored %.1f %s: the check cannot fail", s, v)
	}
}

// jobVerbs maps each database-host job unit to the client verb it runs.
var jobVerbs = map[string]string{
	"walgate-backup-full.service":  "backup-push",
	"walgate-backup-delta.service": "backup-push",
	"walgate-drill.service":        "drill",
}

// readsFor says whether the client reads v for verb: variables whose help
// names verbs ("backup-push: ...", "backup-fetch and drill: ...") belong
// to those; the others to every verb that talks to the gateway.
func readsFor(v client.EnvVar, verb string) bool {
	prefix, _, ok := strings.Cut(v.Help, ":")
	if !ok || strings.ContainsAny(prefix, ",()'") {
		return true
	}
	words := strings.Fields(prefix)
	if !slices.ContainsFunc(words, func(w string) bool {
		return slices.Contains([]string{"wal-push", "wal-fetch", "backup-push", "backup-fetch", "drill"}, w)
	}) {
		return true
	}
	return slices.Contains(words, verb)
}

var envLineRE = regexp.MustCompile(`(?m)^#? ?([A-Z][A-Z0-9_]*)=`)

// TestJobEnvironmentFiles: each job unit reads its own environment file
// from /etc/walgate, shipped in systemd/, which lists every variable
// walgate-client reads for that job, sets every variable the unit's
// ExecStart uses, and names nothing the client does not read.
func TestJobEnvironmentFiles(t *testing.T) {
	// The client's variables, the ones their help names (..._FILE), and
	// the units' own.
	known := map[string]bool{"PGDATA": true, "PG_BIN": true, "DRILL_TIMEOUT": true}
	for _, v := range client.EnvVars {
		for _, n := range regexp.MustCompile(`\b(?:WALGATE|WALG|PG)[A-Z_]*\b`).FindAllString(v.Name+" "+v.Help, -1) {
			known[n] = true
		}
	}
	for unit, verb := range jobVerbs {
		path := "systemd/" + unit
		ef := unitValues(t, path, "EnvironmentFile")
		if len(ef) != 1 || !strings.HasPrefix(ef[0], "/etc/walgate/") {
			t.Errorf("%s: EnvironmentFile=%q, want one file in /etc/walgate", unit, ef)
			continue
		}
		body, err := os.ReadFile("systemd/" + filepath.Base(ef[0]))
		if err != nil {
			t.Errorf("%s: its environment file is not shipped: %v", unit, err)
			continue
		}
		listed, set := map[string]bool{}, map[string]bool{}
		for _, m := range envLineRE.FindAllStringSubmatch(string(body), -1) {
			listed[m[1]] = true
			if !strings.HasPrefix(m[0], "#") {
				set[m[1]] = true
			}
			if !known[m[1]] {
				t.Errorf("%s names %s, which walgate-client does not read", ef[0], m[1])
			}
		}
		for _, v := range client.EnvVars {
			if !readsFor(v, verb) {
				continue
			}
			for _, n := range strings.Split(v.Name, ", ") {
				if n != "..." && !listed[n] {
					t.Errorf("%s (%s): %s is not listed; the client reads it for %s", filepath.Base(ef[0]), unit, n, verb)
				}
			}
		}
		for _, ex := range unitValues(t, path, "ExecStart") {
			if !strings.Contains(ex, "walgate-client "+verb) {
				t.Errorf("%s: ExecStart %q does not run walgate-client %s", unit, ex, verb)
			}
			for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)\}`).FindAllStringSubmatch(ex, -1) {
				if !set[m[1]] {
					t.Errorf("%s: ExecStart uses ${%s}, which %s does not set", unit, m[1], ef[0])
				}
			}
		}
		if verb == "drill" && !slices.ContainsFunc(unitValues(t, path, "ExecStart"), func(s string) bool { return strings.Contains(s, "--check-sql /etc/walgate/drill-check.sql") }) {
			t.Errorf("%s: the drill must run the shipped check SQL", unit)
		}
	}
	if _, err := os.Stat("systemd/drill-check.sql"); err != nil {
		t.Error(err)
	}
}
