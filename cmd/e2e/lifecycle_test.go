package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// TestLifecycleOnObjectStores runs tiering and retention on a real
// cluster archived to S3 (SeaweedFS), GCS (fake-gcs-server) and Azure
// (Azurite): two full backups and a delta, WAL tiered to warm after a
// second, retention keeping one full backup with its delta. The host's
// token cannot delete; an admin token's dry run deletes nothing; while a
// copy is pending the gateway refuses; `walgate lifecycle apply` then
// deletes the oldest backup and the WAL before the kept full backup's
// start from every store and the catalog, and moves the rest: the stores
// show the new classes (S3 HeadObject, Azure access tier; GCS shows the
// class objects were written in, as its emulator ignores changes). The
// oldest kept backup still restores, byte for byte, to the end of the
// archive.
func TestLifecycleOnObjectStores(t *testing.T) {
	requirePostgres(t)
	const bucket = "walgate-lifecycle"
	st := startStores(t, bucket)
	bcs := st.backendConfigs(bucket)
	for i := range bcs {
		if bcs[i].Name == "gcs" {
			// Written NEARLINE: what fake-gcs-server can show.
			bcs[i].Classes = map[string]string{"hot": "NEARLINE", "warm": "NEARLINE", "cold": "COLDLINE"}
		}
	}
	policy := lifecycle.Policy{
		Tiers: []lifecycle.Tier{
			{Kind: lifecycle.WAL, After: time.Second, Class: lifecycle.Warm},
			{Kind: lifecycle.BackupData, After: time.Second, Class: lifecycle.Warm},
		},
		RetainFull: 1,
		Prices:     map[lifecycle.Class]float64{lifecycle.Hot: 0.023, lifecycle.Warm: 0.0125, lifecycle.Cold: 0.004, lifecycle.Archive: 0.00099},
	}
	cfg := gateway.Config{
		Backends:    bcs,
		Groups:      []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"s3", "gcs", "azure"}, Ack: "all", Lifecycle: policy}},
		Replication: config.ReplicationConfig{RetryMin: 100 * time.Millisecond, RetryMax: time.Second},
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})
	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "2", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, `CREATE TABLE probe AS SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 50000) g`); err != nil {
		t.Fatal(err)
	}
	old := e.pushKind(t, "full", "--full")
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "2", "-n"); err != nil {
		t.Fatal(err)
	}
	kept := e.pushKind(t, "full", "--full")
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "2", "-n"); err != nil {
		t.Fatal(err)
	}
	delta := e.pushKind(t, "delta", "--delta")
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "2", "-n"); err != nil {
		t.Fatal(err)
	}
	e.archiveAll(t)
	want := checksums(t, ctx, e.src)
	e.archiveAll(t)
	waitReplicated(t, g)
	time.Sleep(1100 * time.Millisecond) // everything is older than the tier rules' second

	// What will go: the first backup and the WAL before the kept one.
	cat := g.Server.Catalog()
	oldRec, err := cat.Backup("db", old.Name)
	if err != nil {
		t.Fatal(err)
	}
	keptStart := lifecycle.SegmentName(1, lifecycle.SegmentOf(kept.StartLSN, 0), 0)
	var walGone, walKept []index.WALObject
	if err := cat.ListWAL("db", "", func(o index.WALObject) error {
		if len(o.Name) >= 24 && o.Name[:24] < keptStart && strings.HasPrefix(o.Name, "00000001") {
			walGone = append(walGone, o)
		} else {
			walKept = append(walKept, o)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(walGone) == 0 || len(walKept) == 0 {
		t.Fatalf("test setup: %d WAL files before %s, %d from it", len(walGone), keptStart, len(walKept))
	}

	// Database hosts cannot delete.
	out, code := e.client(t, nil, "delete", "retain", "FULL", "1", "--confirm")
	if code != 3 || !strings.Contains(out, "admin") {
		t.Fatalf("host token: delete exit %d, want 3 (not authorised):\n%s", code, out)
	}
	admin := []string{"WALGATE_TOKEN=" + g.Token("db", "admin")}
	// Usage errors, before anything reaches the gateway.
	for _, args := range [][]string{{"delete"}, {"delete", "retain", "0"}, {"delete", "retain", "FULL"}, {"delete", "retain", "x"},
		{"delete", "before", "../base_000000010000000000000001"}, {"delete", "everything", "--confirm"}, {"delete", "retain", "1", "--bogus"}} {
		if out, code := e.client(t, admin, args...); code != 2 {
			t.Errorf("walgate-client %s: exit %d, want 2 (usage):\n%s", strings.Join(args, " "), code, out)
		}
	}
	// An admin's dry run says what would go and deletes nothing.
	out, code = e.client(t, admin, "delete", "retain", "FULL", "1")
	if code != 0 || !strings.Contains(out, "would delete 1 backups") || !strings.Contains(out, old.Name) || !strings.Contains(out, "add --confirm") {
		t.Fatalf("admin dry run: exit %d:\n%s", code, out)
	}
	if _, err := cat.Backup("db", old.Name); err != nil {
		t.Fatalf("the dry run deleted %s: %v", old.Name, err)
	}

	// A copy still to be replicated: deletion is refused everywhere.
	if err := cat.Enqueue([]index.Copy{{Backend: "azure", Cluster: "db", Kind: index.CopyWAL, Name: walKept[0].Name,
		Key: walKept[0].Key, Size: walKept[0].Size, SHA256: walKept[0].SHA256, Enqueued: time.Now().UTC()}}); err != nil {
		t.Fatal(err)
	}
	out, code = e.client(t, admin, "delete", "retain", "FULL", "1", "--confirm")
	if code != 5 || !strings.Contains(out, "replicated") {
		t.Fatalf("delete with a copy pending: exit %d, want 5:\n%s", code, out)
	}
	walgate := func(args ...string) (string, int) {
		cmd := exec.Command(walgateBin(t), args...)
		b, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(b), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), 0
	}
	for _, args := range [][]string{{"lifecycle", "apply", "--data", g.Data}, {"lifecycle", "plan", "--confirm", "--data", g.Data},
		{"lifecycle", "prune", "--data", g.Data}, {"lifecycle", "plan"}} {
		if out, code := walgate(args...); code != 2 {
			t.Errorf("walgate %s: exit %d, want 2 (usage):\n%s", strings.Join(args, " "), code, out)
		}
	}
	if out, code := walgate("lifecycle", "plan", "--cluster", "nope", "--data", g.Data); code != 1 || !strings.Contains(out, "nope") {
		t.Errorf("plan of an unknown cluster: exit %d:\n%s", code, out)
	}
	// The plan: moves on every store whose classes change, the deletions,
	// and the refusal.
	out, code = walgate("lifecycle", "plan", "--data", g.Data)
	t.Logf("walgate lifecycle plan:\n%s", out)
	if code != 0 {
		t.Fatalf("lifecycle plan: exit %d", code)
	}
	for _, s := range []string{"dry run", "set-class", "STANDARD -> STANDARD_IA", "Hot -> Cool", "delete", old.Name, "monthly cost",
		"one of the newest 1 full backups", "Refused for db", "replicated"} {
		if !strings.Contains(out, s) {
			t.Errorf("the plan lacks %q", s)
		}
	}
	// Applied while refused: the classes change, nothing is deleted.
	out, code = walgate("lifecycle", "apply", "--confirm", "--data", g.Data)
	if code != 3 || !strings.Contains(out, "Refused for db") {
		t.Fatalf("lifecycle apply with a copy pending: exit %d, want 3:\n%s", code, out)
	}
	if _, err := cat.Backup("db", old.Name); err != nil {
		t.Fatalf("a refused run deleted %s: %v", old.Name, err)
	}
	for _, o := range walGone {
		if _, err := cat.WAL("db", o.Name); err != nil {
			t.Fatalf("a refused run deleted WAL %s: %v", o.Name, err)
		}
	}
	waitReplicated(t, g) // the replicator finds the copy there already

	out, code = walgate("lifecycle", "apply", "--confirm", "--data", g.Data)
	t.Logf("walgate lifecycle apply --confirm:\n%s", out)
	if code != 0 {
		t.Fatalf("lifecycle apply: exit %d", code)
	}

	// Gone from the catalog and from every store.
	if _, err := cat.Backup("db", old.Name); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("backup %s still in the catalog: %v", old.Name, err)
	}
	stores := map[string]backends.Backend{}
	for _, bc := range g.Server.Config().Backends {
		be, err := all.Open(context.Background(), bc)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		stores[bc.Name] = be
	}
	gone := []string{oldRec.SentinelKey}
	for _, f := range oldRec.Files {
		gone = append(gone, f.Key)
	}
	for _, o := range walGone {
		gone = append(gone, o.Key)
		if _, err := cat.WAL("db", o.Name); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("WAL %s still in the catalog: %v", o.Name, err)
		}
	}
	for name, be := range stores {
		for _, key := range gone {
			if _, err := be.Stat(context.Background(), key); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("%s still holds %s (%v)", name, key, err)
			}
		}
	}

	// The classes the stores show.
	wantClass := map[string]string{"s3": "STANDARD_IA", "azure": "Cool", "gcs": "NEARLINE"}
	checked := 0
	for _, o := range walKept {
		if !strings.HasPrefix(o.Name, "00000001") || len(o.Name) != 24 {
			continue
		}
		rec, err := cat.WAL("db", o.Name)
		if err != nil {
			t.Fatal(err)
		}
		for name, be := range stores {
			info, err := be.Stat(context.Background(), o.Key)
			if err != nil {
				t.Fatalf("%s: %s: %v", name, o.Key, err)
			}
			if info.Class != wantClass[name] {
				t.Errorf("%s: %s is in class %q, want %q", name, o.Key, info.Class, wantClass[name])
			}
			if name != "gcs" && rec.Classes[name] != wantClass[name] {
				t.Errorf("the catalog says %s's copy of %s is %q", name, o.Name, rec.Classes[name])
			}
		}
		checked++
	}
	keptRec, err := cat.Backup("db", kept.Name)
	if err != nil {
		t.Fatal(err)
	}
	for f, rec := range keptRec.Files {
		if !strings.HasPrefix(f, "tar_partitions/part_") {
			continue
		}
		if info, err := stores["s3"].Stat(context.Background(), rec.Key); err != nil || info.Class != "STANDARD_IA" {
			t.Errorf("s3: backup object %s: class %q (%v), want STANDARD_IA", f, info.Class, err)
		}
		if info, err := stores["azure"].Stat(context.Background(), rec.Key); err != nil || info.Class != "Cool" {
			t.Errorf("azure: backup object %s: class %q (%v), want Cool", f, info.Class, err)
		}
	}
	t.Logf("%d WAL segments checked in their new classes on %d stores", checked, len(stores))

	// A second run finds nothing left to do.
	res, err := g.Server.Lifecycle(context.Background(), apply.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 0 {
		t.Errorf("a second plan still has steps: %+v", res.Steps)
	}

	// The oldest kept backup restores to the end of the archive.
	list := e.list(t)
	if len(list) != 2 || list[0].Name != kept.Name || list[1].Name != delta.Name {
		t.Fatalf("backups after retention: %+v", list)
	}
	c := e.restore(t, kept.Name, pgtest.Recovery{})
	sameTables(t, "restore of the oldest kept backup after the lifecycle", want, checksums(t, ctx, c))
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(pgtest.SharedDir(t), "restore"))
}
