package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/cmd/internal/catalogdb"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// index rebuild with a PostgreSQL catalog, gateway running: records the
// catalog lost (as after a failover to a standby that missed the last
// commits) come back from the store as they were, records it kept are not
// touched, tokens and drills stay, a second run adds nothing, and a record
// that differs from the store is refused with nothing added.
func TestIndexRebuildIntoPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := catalogdb.NewServer(t)
	dsn := srv.NewDatabase(t, "")
	store := t.TempDir()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{
		Catalog:  config.CatalogConfig{Type: config.CatalogPostgres, Postgres: config.PostgresCatalog{DSN: dsn}},
		Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: store}},
	}})
	push := g.Token(migCluster, "push", "fetch")
	names := []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003"}
	wal := map[string][]byte{}
	for _, name := range names {
		wal[name] = randomBytes(t, 5000)
		if st := pushWALTo(t, g.URL, push, name, wal[name]); st != http.StatusCreated {
			t.Fatalf("push %s: HTTP %d", name, st)
		}
	}
	full := pushFullBackupAndDrill(t, g.URL, push)
	cat := openPG(t, dsn)
	before := walRecords(t, cat, migCluster)
	backupBefore, err := cat.Backup(migCluster, full)
	if err != nil {
		t.Fatal(err)
	}
	// The running gateway adds trend buckets on its own: left out.
	records := func() string { s, _, _ := strings.Cut(tableCounts(t, cat), " trends="); return s }
	tables := records()

	// The catalog loses two WAL records and the backup.
	ctx := context.Background()
	if _, err := cat.Pool().Exec(ctx, `DELETE FROM walgate.wal WHERE cluster = $1 AND name = ANY($2)`, migCluster, names[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Pool().Exec(ctx, `DELETE FROM walgate.backups WHERE cluster = $1`, migCluster); err != nil {
		t.Fatal(err)
	}
	if st, _ := call(t, http.MethodGet, g.URL+protocol.WALPath(migCluster, names[2]), push, nil, nil); st != http.StatusNotFound {
		t.Fatalf("a WAL file the catalog lost: HTTP %d, want 404", st)
	}
	cfgPath := writeFleetConfig(t, dsn, store, t.TempDir())
	code, out, errOut := walgate(t, "index", "rebuild", "--from", "local", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("rebuild into PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("rebuild:\n%s", out)
	if !strings.Contains(out, "WAL records     3 (2 added)") || !strings.Contains(out, "backups         1 (1 added)") {
		t.Errorf("the summary does not say what was added:\n%s", out)
	}
	after := walRecords(t, cat, migCluster)
	if mustJSON(t, after[names[0]]) != mustJSON(t, before[names[0]]) {
		t.Errorf("a record the catalog kept was changed:\nbefore %+v\nafter  %+v", before[names[0]], after[names[0]])
	}
	for _, name := range names[1:] {
		b, a := before[name], after[name]
		if a.Key != b.Key || a.SHA256 != b.SHA256 || a.Size != b.Size || a.ContentID != b.ContentID || a.PlainSize != b.PlainSize {
			t.Errorf("WAL %s rebuilt as %+v, was %+v", name, a, b)
		}
		if st, body := call(t, http.MethodGet, g.URL+protocol.WALPath(migCluster, name), push, nil, nil); st != http.StatusOK || !bytes.Equal(body, wal[name]) {
			t.Errorf("fetch %s after the rebuild: HTTP %d, identical %v", name, st, bytes.Equal(body, wal[name]))
		}
	}
	backupAfter, err := cat.Backup(migCluster, full)
	if err != nil {
		t.Fatal(err)
	}
	if backupAfter.State != index.BackupCommitted || backupAfter.SentinelKey != backupBefore.SentinelKey || len(backupAfter.Files) != len(backupBefore.Files) {
		t.Errorf("backup rebuilt as %+v, was %+v", backupAfter, backupBefore)
	}
	for f, rec := range backupBefore.Files {
		if backupAfter.Files[f].SHA256 != rec.SHA256 || backupAfter.Files[f].Key != rec.Key {
			t.Errorf("backup file %s rebuilt as %+v, was %+v", f, backupAfter.Files[f], rec)
		}
	}
	if got := records(); got != tables {
		t.Errorf("after the rebuild the tables hold %s, before the loss %s", got, tables)
	}
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}

	// Again: nothing to add.
	code, out, errOut = walgate(t, "index", "rebuild", "--from", "local", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "WAL records     3 (0 added)") {
		t.Fatalf("second rebuild: exit %d\n%s%s", code, out, errOut)
	}

	// A record that differs from the store: refused, nothing added.
	if _, err := cat.Pool().Exec(ctx, `DELETE FROM walgate.wal WHERE cluster = $1 AND name = $2`, migCluster, names[2]); err != nil {
		t.Fatal(err)
	}
	other := before[names[1]]
	other.SHA256 = strings.Repeat("ab", 32)
	if _, err := cat.Pool().Exec(ctx, `UPDATE walgate.wal SET record = $3, brief = $4 WHERE cluster = $1 AND name = $2`,
		migCluster, names[1], []byte(mustJSON(t, other)), index.EncodeBrief(other)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = walgate(t, "index", "rebuild", "--from", "local", "--config", cfgPath)
	if code != 3 || !strings.Contains(errOut, "WAL "+names[1]) || !strings.Contains(errOut, "nothing was added") {
		t.Fatalf("rebuild over a differing record: exit %d, want 3 naming it\n%s%s", code, out, errOut)
	}
	if _, err := cat.WAL(migCluster, names[2]); err == nil {
		t.Fatal("the refused rebuild added a record")
	}
	if rec, err := cat.WAL(migCluster, names[1]); err != nil || rec.SHA256 != other.SHA256 {
		t.Fatalf("the refused rebuild changed the differing record: %+v %v", rec, err)
	}
	if files := gatewaytest.ListFiles(t, filepath.Dir(cfgPathData(t, cfgPath))); len(files) > 0 {
		for _, f := range files {
			if strings.Contains(f, "catalog-rebuild") {
				t.Errorf("the scratch catalog %s was left behind", f)
			}
		}
	}
}

// cfgPathData is the data directory a config written by writeFleetConfig
// names (a file inside it, for ListFiles of its parent).
func cfgPathData(t *testing.T, cfgPath string) string {
	t.Helper()
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(cfg.Data, "x")
}
