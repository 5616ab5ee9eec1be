package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/catalogdb"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/index/pgcatalog"
)

const migCluster = "db"

// call sends one request to a test gateway and returns status and body.
func call(t *testing.T, method, u, token string, headers map[string]string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushWALTo stores body as WAL name of migCluster (plain, uncompressed)
// and returns the HTTP status.
func pushWALTo(t *testing.T, base, token, name string, body []byte) int {
	t.Helper()
	st, msg := call(t, http.MethodPut, base+protocol.WALPath(migCluster, name), token, map[string]string{
		protocol.HeaderContentSHA256: hexSum(body),
		protocol.HeaderCompression:   "none",
		protocol.HeaderEncryption:    protocol.EncryptionNone,
		protocol.HeaderContentID:     "sha256:" + hexSum(body),
		protocol.HeaderPlainSize:     strconv.Itoa(len(body)),
	}, body)
	if st >= 500 {
		t.Logf("push %s: HTTP %d %s", name, st, msg)
	}
	return st
}

// pushBackupTo uploads files and, with sentinel non-nil, commits the
// backup.
func pushBackupTo(t *testing.T, base, token, name string, files map[string][]byte, sentinel []byte) {
	t.Helper()
	st, body := call(t, http.MethodPost, base+protocol.BackupPath(migCluster, name), token, nil, nil)
	if st != http.StatusCreated {
		t.Fatalf("begin %s: HTTP %d %s", name, st, body)
	}
	var begin protocol.BeginBackupResult
	if err := json.Unmarshal(body, &begin); err != nil {
		t.Fatal(err)
	}
	commit := protocol.CommitBackup{Sentinel: sentinel, Files: map[string]protocol.BackupFile{}}
	session := map[string]string{protocol.HeaderBackupSession: begin.Session}
	for f, data := range files {
		st, body := call(t, http.MethodPut, base+protocol.BackupFilePath(migCluster, name, f), token, map[string]string{
			protocol.HeaderBackupSession: begin.Session,
			protocol.HeaderCompression:   protocol.FileCompression(f),
			protocol.HeaderEncryption:    protocol.EncryptionNone,
		}, data)
		if st != http.StatusCreated {
			t.Fatalf("upload %s of %s: HTTP %d %s", f, name, st, body)
		}
		commit.Files[f] = protocol.BackupFile{Size: int64(len(data)), SHA256: hexSum(data)}
	}
	if sentinel == nil {
		return
	}
	req, _ := json.Marshal(commit)
	if st, body := call(t, http.MethodPost, base+protocol.BackupCommitPath(migCluster, name), token, session, req); st != http.StatusOK {
		t.Fatalf("commit %s: HTTP %d %s", name, st, body)
	}
}

// pushFullBackupAndDrill commits a full backup of four files with a
// sentinel that names its system, reports a passed drill of it, and
// returns its name.
func pushFullBackupAndDrill(t *testing.T, base, token string) string {
	t.Helper()
	full := "base_000000010000000000000002"
	pushBackupTo(t, base, token, full, map[string][]byte{
		"tar_partitions/part_001.tar": tarBytes(t, 5000), "tar_partitions/pg_control.tar": tarBytes(t, 1024),
		"tar_partitions/backup_label.tar": tarBytes(t, 1024), "metadata.json": []byte(`{"start_lsn":33554472}`),
	}, []byte(`{"LSN":33554472,"FinishLSN":33554688,"StartTime":"2026-11-25T01:00:00Z","FinishTime":"2026-11-25T01:00:05Z","PgVersion":150018,"SystemIdentifier":7711916252778549563,"Hostname":"db1","UncompressedSize":123456}`))
	if st, body := call(t, http.MethodPost, base+protocol.DrillsPath(migCluster), token, nil, []byte(`{"backup":"`+full+`","passed":true}`)); st != http.StatusCreated {
		t.Fatalf("drill report: HTTP %d %s", st, body)
	}
	return full
}

func tarBytes(t *testing.T, n int) []byte {
	b := randomBytes(t, n)
	copy(b[257:], "ustar\x0000")
	return b
}

// writeFleetConfig writes a config naming the PostgreSQL catalog dsn, the
// fs store at store (backend "local") and the data directory data.
func writeFleetConfig(t *testing.T, dsn, store, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	text := fmt.Sprintf("data: %s\ncatalog:\n  type: postgres\n  postgres:\n    dsn: %s\nbackends:\n  - {name: local, type: fs, path: %s}\n", data, dsn, store)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func openPG(t *testing.T, dsn string) *pgcatalog.Catalog {
	t.Helper()
	c, err := pgcatalog.Open(context.Background(), dsn, pgcatalog.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// walRecords lists a cluster's WAL records by name.
func walRecords(t *testing.T, c index.Interface, cluster string) map[string]index.WALObject {
	t.Helper()
	out := map[string]index.WALObject{}
	if err := c.ListWAL(cluster, "", func(o index.WALObject) error { out[o.Name] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameJSON compares two values by their JSON (times as stored).
func sameJSON(t *testing.T, what string, a, b any) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("%s differs:\nsource %s\ntarget %s", what, ja, jb)
	}
}

// A region's gateway (bbolt catalog) with WAL, a committed and an open
// backup, a drill report, push/fetch, rotated, expiring and fleet-wide
// tokens, is migrated into PostgreSQL: refused while the gateway runs,
// then copied; every record is the same in the target; a gateway on the
// PostgreSQL catalog serves the same WAL byte for byte, the same backup
// list and drills, and accepts the migrated tokens; a second run adds
// nothing.
func TestIndexMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := catalogdb.NewServer(t)
	data := t.TempDir()
	g := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})
	push := g.Token(migCluster, "push", "fetch")
	a, err := admin.Dial(g.Data)
	if err != nil {
		t.Fatal(err)
	}
	oldSecret, oldTok, err := a.IssueToken(admin.TokenSpec{Cluster: migCluster, Scopes: []index.Scope{index.ScopePush, index.ScopeFetch}, Comment: "rotated", Lifetime: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	nextSecret, _, _, err := a.RotateToken(oldTok.ID, admin.RotateRequest{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fleet := g.FleetToken()

	wal := map[string][]byte{}
	for _, name := range []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003", "00000002.history"} {
		wal[name] = randomBytes(t, 4000+len(name))
		if st := pushWALTo(t, g.URL, push, name, wal[name]); st != http.StatusCreated {
			t.Fatalf("push %s: HTTP %d", name, st)
		}
	}
	pushFullBackupAndDrill(t, g.URL, push)
	pushBackupTo(t, g.URL, push, "base_000000010000000000000003", map[string][]byte{"tar_partitions/part_001.tar": tarBytes(t, 600)}, nil)
	_, listBefore := call(t, http.MethodGet, g.URL+protocol.BackupsPath(migCluster), push, nil, nil)
	_, drillsBefore := call(t, http.MethodGet, g.URL+protocol.DrillsPath(migCluster), push, nil, nil)

	dsn := srv.NewDatabase(t, "")
	fleetData := t.TempDir()
	cfgPath := writeFleetConfig(t, dsn, filepath.Join(data, "store"), fleetData)

	// While the gateway runs: refused, nothing copied.
	code, out, errOut := walgate(t, "index", "migrate", "--from-data", data, "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Fatalf("migrate with the gateway running: exit %d\n%s%s", code, out, errOut)
	}
	if err := g.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = walgate(t, "index", "migrate", "--from-data", data, "--config", cfgPath)
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, catalogdb.Password) {
		t.Fatalf("migrate printed the catalog password:\n%s%s", out, errOut)
	}
	t.Logf("migrate:\n%s", out)
	if log, err := os.ReadFile(filepath.Join(fleetData, "audit.log")); err != nil || !strings.Contains(string(log), `"index.migrate"`) {
		t.Errorf("the migration is not in the audit log of the fleet config's data directory: %v\n%s", err, log)
	}

	// Every record is the same in both catalogs.
	src, err := index.OpenReadOnly(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dst := openPG(t, dsn)
	if got, want := walRecords(t, dst, migCluster), walRecords(t, src, migCluster); len(want) != len(wal) || !reflect.DeepEqual(mustJSON(t, got), mustJSON(t, want)) {
		t.Errorf("WAL records: target %v, source %v", mustJSON(t, got), mustJSON(t, want))
	}
	for _, kind := range []index.BackupState{""} {
		sb, err1 := src.Backups(migCluster, kind)
		db, err2 := dst.Backups(migCluster, kind)
		if err1 != nil || err2 != nil || len(sb) != 2 {
			t.Fatalf("backups: %v %v, %d in the source", err1, err2, len(sb))
		}
		sameJSON(t, "backups", sb, db)
	}
	sd, _ := src.Drills(migCluster, 0)
	dd, _ := dst.Drills(migCluster, 0)
	sameJSON(t, "drills", sd, dd)
	st, _ := src.TokenRecords()
	dt, _ := dst.TokenRecords()
	if len(st) != 4 {
		t.Fatalf("%d tokens in the source, want 4", len(st))
	}
	sameJSON(t, "tokens", st, dt)
	ss, _ := src.System(migCluster)
	ds, _ := dst.System(migCluster)
	if ss.SystemIdentifier == 0 {
		t.Fatal("the source recorded no system identifier")
	}
	sameJSON(t, "system", ss, ds)
	sc, _ := src.Clusters()
	dc, _ := dst.Clusters()
	sameJSON(t, "clusters", sc, dc)
	src.Close()

	// A gateway on the PostgreSQL catalog and the same store.
	pg := gatewaytest.Start(t, gatewaytest.Options{Config: gateway.Config{
		Catalog:  config.CatalogConfig{Type: config.CatalogPostgres, Postgres: config.PostgresCatalog{DSN: dsn}},
		Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: filepath.Join(data, "store")}},
	}})
	for name, body := range wal {
		st, got := call(t, http.MethodGet, pg.URL+protocol.WALPath(migCluster, name), push, nil, nil)
		if st != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("fetch %s through the PostgreSQL gateway: HTTP %d, %d bytes, identical %v", name, st, len(got), bytes.Equal(got, body))
		}
	}
	if _, list := call(t, http.MethodGet, pg.URL+protocol.BackupsPath(migCluster), push, nil, nil); !bytes.Equal(list, listBefore) {
		t.Errorf("backup list:\nbefore %s\nafter  %s", listBefore, list)
	}
	if _, drills := call(t, http.MethodGet, pg.URL+protocol.DrillsPath(migCluster), push, nil, nil); !bytes.Equal(drills, drillsBefore) {
		t.Errorf("drills:\nbefore %s\nafter  %s", drillsBefore, drills)
	}
	for _, secret := range []string{oldSecret, nextSecret} {
		if st := pushWALTo(t, pg.URL, secret, "000000010000000000000003", wal["000000010000000000000003"]); st != http.StatusOK && st != http.StatusCreated {
			t.Errorf("a migrated token's re-push: HTTP %d", st)
		}
	}
	if st := pushWALTo(t, pg.URL, nextSecret, "000000010000000000000004", randomBytes(t, 3000)); st != http.StatusCreated {
		t.Errorf("a new push with the migrated rotated token: HTTP %d", st)
	}
	for _, secret := range []string{fleet, push, oldSecret, nextSecret} {
		if st, body := call(t, http.MethodGet, pg.URL+protocol.WhoAmIPath, secret, nil, nil); st != http.StatusOK {
			t.Errorf("whoami with a migrated token: HTTP %d %s", st, body)
		}
	}
	if st, _ := call(t, http.MethodGet, pg.URL+protocol.WhoAmIPath, "not-a-token", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("an unknown token: HTTP %d, want 401", st)
	}
	if err := pg.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A second run after the fleet pushed one more WAL file: the target
	// holds more than the source, which the verification names.
	code, out, errOut = walgate(t, "index", "migrate", "--from-data", data, "--config", cfgPath)
	if code != 4 || !strings.Contains(errOut, "WAL records: 4 in the source, 5 in the target") || !strings.Contains(out, "WAL records     4 (0 added)") {
		t.Fatalf("migrate again after a new push: exit %d, want 4 naming the WAL count\n%s%s", code, out, errOut)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fillCatalog makes a bbolt catalog under data with n WAL records of
// migCluster, a token, and a queued copy, as a long-running region's.
func fillCatalog(t *testing.T, data string, n int) {
	t.Helper()
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	var batch []index.WALObject
	for i := range n {
		name := fmt.Sprintf("%08X%08X%08X", 1, i/256, i%256)
		sum := hexSum([]byte(name))
		batch = append(batch, index.WALObject{Name: name, Key: layout.WALKey(migCluster, name, "zst"), Backend: "local",
			Size: 1000, SHA256: sum, ContentID: "sha256:" + sum, PlainSize: 16 << 20, Compression: "zstd", Encryption: "none",
			StoredAt: time.Unix(1700000000+int64(i), 0).UTC(), TokenID: "t1"})
		if len(batch) == 5000 {
			if err := cat.AddWALBatch(migCluster, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := cat.AddWALBatch(migCluster, batch); err != nil {
		t.Fatal(err)
	}
	if err := cat.AddToken(sha256.Sum256([]byte("secret")), index.Token{ID: "t1", Cluster: migCluster, Scopes: []index.Scope{index.ScopePush}, Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.ClaimSystem(migCluster, index.ClusterSystem{SystemIdentifier: 42, Since: time.Now().UTC(), Source: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := cat.Enqueue([]index.Copy{{Backend: "far", Cluster: migCluster, Kind: index.CopyWAL, Name: "000000010000000000000001",
		Key: layout.WALKey(migCluster, "000000010000000000000001", "zst"), Size: 1000}}); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateHelperProcess is the walgate process the interruption test
// starts and kills; it does nothing in a normal test run.
func TestMigrateHelperProcess(t *testing.T) {
	args := os.Getenv("WALGATE_TEST_MIGRATE_ARGS")
	if args == "" {
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		t.Fatal(err)
	}
	os.Exit(run(argv, os.Stdout, os.Stderr))
}

// A migration killed with SIGKILL mid-way leaves whole batches only, and
// the same command run again finishes it: every record once, verified.
func TestIndexMigrateResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := catalogdb.NewServer(t)
	data := t.TempDir()
	const n = 20000
	fillCatalog(t, data, n)
	dsn := srv.NewDatabase(t, "")
	cfgPath := writeFleetConfig(t, dsn, filepath.Join(data, "store"), t.TempDir())
	dst := openPG(t, dsn)
	count := func() int {
		var k int
		if err := dst.Pool().QueryRow(context.Background(), `SELECT count(*) FROM walgate.wal`).Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateHelperProcess$")
	cmd.Env = append(os.Environ(), "WALGATE_TEST_MIGRATE_ARGS="+mustJSON(t, []string{"index", "migrate", "--from-data", data, "--config", cfgPath}))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count() < 2000 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the migration copied nothing in 2 minutes:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	mid := count()
	if mid >= n {
		t.Fatalf("the migration finished (%d records) before it was killed: nothing to resume", mid)
	}
	if mid%1000 != 0 {
		t.Fatalf("%d WAL records after the kill: a batch was half-written", mid)
	}
	t.Logf("killed after %d of %d WAL records", mid, n)

	code, stdout, stderr := walgate(t, "index", "migrate", "--from-data", data, "--config", cfgPath)
	if code != 0 {
		t.Fatalf("migrate again: exit %d\n%s%s", code, stdout, stderr)
	}
	if want := fmt.Sprintf("WAL records     %d (%d added)", n, n-mid); !strings.Contains(stdout, want) {
		t.Errorf("the resumed run's summary lacks %q:\n%s", want, stdout)
	}
	if got := count(); got != n {
		t.Fatalf("%d WAL records after resuming, want %d", got, n)
	}
	src, err := index.OpenReadOnly(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got, want := mustJSON(t, walRecords(t, dst, migCluster)), mustJSON(t, walRecords(t, src, migCluster)); got != want {
		t.Fatal("the WAL records in the target differ from the source's")
	}
	if q, err := dst.Pending("far", 0); err != nil || len(q) != 1 {
		t.Fatalf("the queued copy: %+v %v", q, err)
	}

	// What a terminal shows: progress lines, then the verification.
	var progress bytes.Buffer
	m := &catalogCopy{src: src, dst: dst, exact: true, progress: &progress, verb: "migrate", batch: 500}
	res, err := m.run(context.Background())
	if err != nil || res.Added.WAL != 0 {
		t.Fatalf("a third run: %+v %v", res.Added, err)
	}
	for _, want := range []string{"migrate: the source holds 1 clusters, 20000 WAL records", "migrate: comparing with what the target holds",
		"migrate: cluster db: 20000 WAL records (0 added)", "migrate: verified"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

// A target that holds other data for the region's cluster is refused
// before anything is written: another system identifier, or a WAL name
// with another SHA-256.
func TestIndexMigrateRefusesConflictingTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := catalogdb.NewServer(t)
	data := t.TempDir()
	fillCatalog(t, data, 10)
	for _, tc := range []struct {
		name, want string
		prepare    func(c *pgcatalog.Catalog) error
	}{
		{"system", "system identifier", func(c *pgcatalog.Catalog) error {
			_, err := c.ClaimSystem(migCluster, index.ClusterSystem{SystemIdentifier: 7, Since: time.Now().UTC(), Source: "other"})
			return err
		}},
		{"wal", "WAL 000000010000000000000003", func(c *pgcatalog.Catalog) error {
			name := "000000010000000000000003"
			sum := hexSum([]byte("other bytes"))
			_, _, err := c.AddWAL(migCluster, index.WALObject{Name: name, Key: layout.WALKey(migCluster, name, "zst"), Backend: "local",
				Size: 1000, SHA256: sum, ContentID: "sha256:" + sum, PlainSize: 16 << 20, Compression: "zstd", Encryption: "none", StoredAt: time.Now().UTC()})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := srv.NewDatabase(t, "")
			dst := openPG(t, dsn)
			if err := tc.prepare(dst); err != nil {
				t.Fatal(err)
			}
			before := tableCounts(t, dst)
			cfgPath := writeFleetConfig(t, dsn, filepath.Join(data, "store"), t.TempDir())
			code, out, errOut := walgate(t, "index", "migrate", "--from-data", data, "--config", cfgPath)
			if code != 3 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "nothing was copied") {
				t.Fatalf("exit %d, want 3 naming %q\n%s%s", code, tc.want, out, errOut)
			}
			if after := tableCounts(t, dst); after != before {
				t.Fatalf("the refused migration changed the target: %s, before %s", after, before)
			}
		})
	}
}

// tableCounts is the row count of each catalog table.
func tableCounts(t *testing.T, c *pgcatalog.Catalog) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"clusters", "wal", "backups", "drills", "tokens", "replication", "trends"} {
		var k int
		if err := c.Pool().QueryRow(context.Background(), `SELECT count(*) FROM walgate.`+table).Scan(&k); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", table, k))
	}
	return strings.Join(parts, " ")
}

// Bad command lines and a source that cannot be read are refused with a
// message that says what to do, before any database is reached.
func TestIndexMigrateRefusals(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pgConfig := writeFleetConfig(t, "postgres://walgate@127.0.0.1:1/walgate?sslmode=disable&connect_timeout=1", filepath.Join(data, "store"), filepath.Join(dir, "fleet-data"))
	bboltConfig := writeFile(t, "bbolt.yaml", "data: "+filepath.Join(dir, "other")+"\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", pgConfig}, 2, "needs --from-data DIR"},
		{[]string{"--from-data", data}, 2, "needs --from-data DIR"},
		{[]string{"--from-data", data, "--config", bboltConfig}, 2, "names no PostgreSQL catalog"},
		{[]string{"--from-data", data, "--config", pgConfig}, 1, "no catalog to copy"},
	} {
		code, out, errOut := walgate(t, append([]string{"index", "migrate"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("index migrate %v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
	// The source catalog held by another process (a gateway whose admin
	// socket is gone): refused, it is never opened for writing.
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	code, out, errOut := walgate(t, "index", "migrate", "--from-data", data, "--config", pgConfig)
	if code != 1 || !strings.Contains(errOut, "locked by another process") || !strings.Contains(errOut, "stop the gateway") {
		t.Errorf("a locked source: exit %d\n%s%s", code, out, errOut)
	}
}
