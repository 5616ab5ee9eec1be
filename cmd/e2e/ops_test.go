package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// fleetView is what the three operator surfaces say about cluster db.
type fleetView struct {
	lost, delayed uint64
	stalled       bool
	restorable    bool
	status        string
	table         string // walgate status, the terminal table
	metrics       map[string]float64
	verify        string // walgate-client wal-verify output
	verifyCode    int
}

func (e *backupEnv) fleet(t *testing.T) fleetView {
	t.Helper()
	var v fleetView
	// walgate status --json and the table, through the admin socket.
	out, err := exec.Command(walgateBin(t), "status", "--data", e.g.Data, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("walgate status --json: %v\n%s", err, out)
	}
	var st []gateway.ClusterStatus
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("walgate status --json: %v\n%s", err, out)
	}
	for _, c := range st {
		if c.Cluster == "db" {
			v.lost, v.delayed, v.stalled, v.restorable, v.status = c.LostSegments, c.Delayed, c.Stalled, c.RestorableToNow, string(c.Status)
		}
	}
	table, err := exec.Command(walgateBin(t), "status", "--data", e.g.Data).CombinedOutput()
	if err != nil {
		t.Fatalf("walgate status: %v\n%s", err, table)
	}
	v.table = string(table)
	// /metrics.
	resp, err := http.Get("http://" + e.g.Server.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	v.metrics = map[string]float64{}
	re := regexp.MustCompile(`(?m)^(walgate_cluster_[a-z_]+)\{([^}]*cluster="db"[^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		f, _ := strconv.ParseFloat(m[3], 64)
		v.metrics[m[1]+"{"+m[2]+"}"] = f
	}
	// wal-verify.
	v.verify, v.verifyCode = e.client(t, nil, "wal-verify")
	return v
}

func (e *backupEnv) setArchiveCommand(t *testing.T, cmd string) {
	t.Helper()
	if err := e.src.Exec(e.ctx, "ALTER SYSTEM SET archive_command = "+pgtest.QuoteConf(cmd)); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(e.ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
}

// A real cluster archiving through the gateway: archive_command that
// "succeeds" without storing loses segments, and the gap appears in
// walgate status, /metrics and wal-verify; a failing archive_command
// stalls archiving, and that appears too; fixing archive_command and
// pushing the lost segments from pg_wal clears both.
func TestOperationsGapAndStall(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{
		Health:  config.HealthConfig{ArchiveTimeout: time.Second, StallFactor: 6, DelayedFor: 2 * time.Second},
		Metrics: config.MetricsConfig{Listen: "127.0.0.1:0"},
	}})
	e := newBackupEnvWith(t, g, true, pgtest.Options{Conf: []string{"wal_keep_size = '1GB'"}})
	ctx := e.ctx
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "1", "-q"); err != nil {
		t.Fatal(err)
	}
	e.mustClient(t, "backup-push", e.src.DataDir)
	switchWAL := func() string {
		t.Helper()
		if err := e.src.Exec(ctx, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())"); err != nil {
			t.Fatal(err)
		}
		seg, err := e.src.SwitchWAL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return seg
	}
	e.archiveAll(t)

	v := e.fleet(t)
	if v.lost != 0 || v.stalled || !v.restorable || v.verifyCode != 0 || v.metrics[`walgate_cluster_wal_missing_segments{class="lost",cluster="db"}`] != 0 ||
		v.metrics[`walgate_cluster_restorable_to_latest{cluster="db"}`] != 1 {
		t.Fatalf("healthy archive reported as %+v", v)
	}

	// archive_command = /bin/true: three segments "archived" nowhere.
	e.setArchiveCommand(t, "/bin/true")
	var lost []string
	for range 3 {
		seg := switchWAL()
		if _, err := e.src.WaitArchived(ctx, seg); err != nil {
			t.Fatal(err)
		}
		lost = append(lost, seg)
	}
	archived := func() {
		t.Helper()
		seg := switchWAL()
		st, err := e.src.WaitArchived(ctx, seg)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastArchivedWAL < seg {
			t.Fatalf("%s not archived: %+v", seg, st)
		}
	}
	e.setArchiveCommand(t, e.bin+" wal-push %p")
	archived()
	time.Sleep(2500 * time.Millisecond) // past delayed_for: the gap is lost
	archived()
	v = e.fleet(t)
	if v.lost != 3 || v.restorable || v.status != "critical" || v.metrics[`walgate_cluster_wal_missing_segments{class="lost",cluster="db"}`] != 3 ||
		v.metrics[`walgate_cluster_status{cluster="db"}`] != 2 {
		t.Fatalf("lost segments %v not reported: %+v", lost, v)
	}
	if v.verifyCode != 8 || !strings.Contains(v.verify, "missing (lost): "+lost[0]+" .. "+lost[2]) {
		t.Fatalf("wal-verify with a gap: exit %d\n%s", v.verifyCode, v.verify)
	}
	if !strings.Contains(v.table, "3 lost") || !strings.Contains(v.table, "walgate-client wal-push") {
		t.Fatalf("walgate status table lacks the gap or its remedy:\n%s", v.table)
	}

	// A failing archive_command: nothing arrives, archiving stalls.
	e.setArchiveCommand(t, "/bin/false")
	switchWAL()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v = e.fleet(t)
		if v.stalled || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if !v.stalled || v.metrics[`walgate_cluster_archiving_stalled{cluster="db"}`] != 1 || !strings.Contains(v.table, "archiving stalled") {
		t.Fatalf("stall not reported: %+v", v)
	}
	if v.verifyCode != 8 || !strings.Contains(v.verify, "archive_command has failed") || !strings.Contains(v.verify, "still expected") {
		t.Fatalf("wal-verify during the stall: exit %d\n%s", v.verifyCode, v.verify)
	}

	// The fix: archive_command back, and the lost segments pushed from
	// pg_wal by hand.
	e.setArchiveCommand(t, e.bin+" wal-push %p")
	for _, seg := range lost {
		e.mustClient(t, "wal-push", filepath.Join(e.src.DataDir, "pg_wal", seg))
	}
	archived()
	v = e.fleet(t)
	if v.lost != 0 || v.delayed != 0 || v.stalled || !v.restorable || v.verifyCode != 0 ||
		v.metrics[`walgate_cluster_wal_missing_segments{class="lost",cluster="db"}`] != 0 || v.metrics[`walgate_cluster_archiving_stalled{cluster="db"}`] != 0 {
		t.Fatalf("after the fix: %+v", v)
	}
}
