package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/jsondoc"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// statusCatalog makes a stopped gateway's data directory: cluster main
// with archived WAL and a failed drill, and a storage team's admin token
// for "ops".
func statusCatalog(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, _, err := admin.CreateToken(cat, "main", []index.Scope{index.ScopePush, index.ScopeFetch}, "db1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.CreateToken(cat, "ops", []index.Scope{index.ScopeAdmin}, "storage team"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, name := range []string{"000000010000000000000001", "000000010000000000000003"} {
		seg := index.WALObject{Name: name, Key: "main/wal_005/" + name + ".zst", Backend: "local", Size: 100, PlainSize: 16 << 20,
			SHA256: strings.Repeat("0", 64), ContentID: "c" + name, Compression: "zstd", Encryption: "none", StoredAt: now.Add(-2 * time.Hour)}
		if _, _, err := cat.AddWAL("main", seg); err != nil {
			t.Fatal(err)
		}
	}
	rep := protocol.DrillReport{Cluster: "main", Backup: "base_000000010000000000000002", Started: now.Add(-time.Hour), Finished: now.Add(-50 * time.Minute),
		Checks: []protocol.Check{{Name: "connect postgres", Passed: true}, {Name: "check-sql", Output: "ERROR: division by zero"}}, Host: "db1"}
	rep.Error = rep.Reason()
	b, _ := json.Marshal(rep)
	if err := cat.AddDrill("main", index.DrillRecord{Received: now.Add(-50 * time.Minute), Report: b}); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStatusJSONAndFailOn(t *testing.T) {
	data := statusCatalog(t)
	out, errOut, code := runWalgate("status", "--json", "--data", data)
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errOut)
	}
	doc := filepath.Join("..", "..", "docs", "json.md")
	for _, p := range jsondoc.Check(doc, "walgate status --json", []byte(out)) {
		t.Error(p)
	}
	var st []struct {
		Cluster   string `json:"cluster"`
		Status    string `json:"status"`
		LastDrill struct {
			Error       string `json:"error"`
			FailedCheck string `json:"failed_check"`
		} `json:"last_drill"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Cluster != "main" {
		t.Fatalf("clusters: %+v (an admin-only name is no cluster)", st)
	}
	if st[0].LastDrill.FailedCheck != "check-sql" || !strings.Contains(st[0].LastDrill.Error, "division by zero") {
		t.Errorf("the failed drill's reason: %+v", st[0].LastDrill)
	}
	out, errOut, code = runWalgate("status", "--backends", "--json", "--data", data)
	if code != 0 {
		t.Fatalf("status --backends --json: exit %d: %s", code, errOut)
	}
	for _, p := range jsondoc.Check(doc, "walgate status --backends --json", []byte(out)) {
		t.Error(p)
	}

	// The table says why the drill failed.
	out, _, _ = runWalgate("status", "--data", data)
	if !strings.Contains(out, "division by zero") {
		t.Errorf("status table lacks the drill's reason:\n%s", out)
	}
	// main is critical (no backup): --fail-on exits 3 at either level;
	// without it, 0.
	for _, level := range []string{"warning", "critical"} {
		_, errOut, code = runWalgate("status", "--data", data, "--fail-on", level)
		if code != 3 || !strings.Contains(errOut, "main critical") {
			t.Errorf("--fail-on %s: exit %d: %s", level, code, errOut)
		}
	}
	if _, errOut, code = runWalgate("status", "--data", data, "--fail-on", "bad"); code != 2 {
		t.Errorf("--fail-on bad: exit %d: %s", code, errOut)
	}
}
