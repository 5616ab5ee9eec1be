package configs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAlertRules: promtool accepts the shipped rules, and their unit tests
// (recorded series for each alert firing and not firing) pass.
func TestAlertRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("prometheus", "check", "rules", "alerts.yml"); err != nil {
		t.Fatalf("promtool check rules alerts.yml: %v\n%s", err, out)
	}
	if out, err := run("prometheus", "test", "rules", "alerts_test.yml"); err != nil {
		t.Fatalf("promtool test rules alerts_test.yml: %v\n%s", err, out)
	}

	// The unit tests can fail: with the backup age threshold moved from 2
	// to 20 days, the recorded old backup no longer fires.
	rules, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	const threshold = "walgate_cluster_last_backup_timestamp_seconds > 2 * 86400"
	if !strings.Contains(string(rules), threshold) {
		t.Fatalf("alerts.yml no longer has %q: update this test", threshold)
	}
	dir := t.TempDir()
	broken := strings.Replace(string(rules), threshold, "walgate_cluster_last_backup_timestamp_seconds > 20 * 86400", 1)
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(dir, "test", "rules", "alerts_test.yml"); err == nil || !strings.Contains(out, "WalgateBackupTooOld") {
		t.Fatalf("promtool test rules passed with a wrong threshold: %v\n%s", err, out)
	}
}
