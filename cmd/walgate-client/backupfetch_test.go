package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"github.com/walgate/walgate/cmd/internal/jsondoc"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

const backupName = "base_000000010000000000000004"

// makeBackup commits a small backup (two parts, pg_control, label) through
// the client transport with env's settings, and returns its files.
func makeBackup(t *testing.T, env map[string]string, name string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	cfg, err := client.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	files := map[string][]byte{}
	tarOf := func(members ...string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, m := range members {
			hdr := &tar.Header{Name: m, Mode: 0o700, Typeflag: tar.TypeDir, ModTime: time.Unix(1e9, 0)}
			var body []byte
			if !strings.HasSuffix(m, "/") {
				body = randBytes(t, 40<<10)
				hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o600, int64(len(body))
				files[strings.TrimPrefix(m, "/")] = body
			}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			tw.Write(body)
		}
		tw.Close()
		return buf.Bytes()
	}
	var label bytes.Buffer
	if err := basebackup.WriteLabelTar(&label, "LABEL: test\n", "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	enc := "none"
	if cfg.Key != nil {
		enc = "libsodium"
	}
	u, err := c.BeginBackup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for object, plain := range map[string][]byte{
		"part_001.tar.zst":     tarOf("/", "/base/", "/base/1/", "/base/1/1259", "/PG_VERSION"),
		"part_002.tar.zst":     tarOf("/base/1/2608", "/global/"),
		"pg_control.tar.zst":   tarOf("/global/pg_control"),
		"backup_label.tar.zst": label.Bytes(),
	} {
		var buf bytes.Buffer
		w, _ := codec.NewWriter(&buf, codec.Zstd, cfg.Key)
		w.Write(plain)
		w.Close()
		if _, err := u.Upload(ctx, "tar_partitions/"+object, "zstd", enc, &buf); err != nil {
			t.Fatal(err)
		}
	}
	sentinel := `{"LSN":67108904,"FinishLSN":67109120,"StartTime":"2026-11-25T01:00:00Z","FinishTime":"2026-11-25T01:05:00Z","UncompressedSize":123,"PgVersion":150018,"SystemIdentifier":7711916313960645312,"Hostname":"db1","ChkpNum":null,"Version":2}`
	if _, err := u.Commit(ctx, []byte(sentinel)); err != nil {
		t.Fatal(err)
	}
	return files
}

func TestBackupListAndFetch(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	env := withKey(clientEnv(g.URL, g.Token(cluster, "push", "fetch")), keyHex)

	// An empty list is an empty JSON array.
	r := walClient(t, env, "backup-list", "--json")
	expectExit(t, "backup-list --json, no backups", r, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("empty list: %q", r.stdout)
	}
	files := makeBackup(t, env, backupName)

	r = walClient(t, env, "backup-list", "--json")
	expectExit(t, "backup-list --json", r, 0)
	var list []protocol.BackupSummary
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("backup-list --json does not parse: %v\n%s", err, r.stdout)
	}
	if len(list) != 1 || list[0].Name != backupName || list[0].StartLSN != 67108904 || list[0].Timeline != 1 || list[0].Kind != "full" {
		t.Fatalf("list: %+v", list)
	}
	r = walClient(t, env, "backup-list")
	expectExit(t, "backup-list", r, 0)
	for _, w := range []string{"NAME", backupName, "0/4000028", "0/4000100", "2026-11-25T01:05:00Z", "full"} {
		if !strings.Contains(r.stdout, w) {
			t.Fatalf("backup-list table lacks %q:\n%s", w, r.stdout)
		}
	}
	expectExit(t, "backup-list with an argument", walClient(t, env, "backup-list", "x"), 2)
	expectExit(t, "wal-verify with an argument", walClient(t, env, "wal-verify", "x"), 2, "no arguments")

	root := t.TempDir()
	dir := filepath.Join(root, "pgdata")
	// Unknown name: 74, nothing created.
	r = walClient(t, env, "backup-fetch", dir, "base_0000000100000000000000AA")
	expectExit(t, "backup-fetch of an unknown backup", r, 74, "base_0000000100000000000000AA", "backup-list")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a failed fetch left %s (%v)", dir, err)
	}
	// Bad arguments: 2.
	expectExit(t, "backup-fetch with one argument", walClient(t, env, "backup-fetch", dir), 2)
	expectExit(t, "backup-fetch of a bad name", walClient(t, env, "backup-fetch", dir, "base_x"), 2)
	expectExit(t, "target without --recovery", walClient(t, env, "backup-fetch", dir, "LATEST", "--target-lsn", "0/5000000"), 2, "--recovery")
	expectExit(t, "bad target LSN", walClient(t, env, "backup-fetch", dir, "LATEST", "--recovery", "--target-lsn", "zz"), 2)
	// A target time PostgreSQL would not read as one instant: 2, the
	// accepted forms named, nothing written.
	for _, bad := range []string{"yesterday", "2026-11-25 01:04:00", "2026-11-25"} {
		expectExit(t, "target time "+bad, walClient(t, env, "backup-fetch", dir, "LATEST", "--recovery", "--target-time", bad), 2,
			"--target-time", "RFC 3339", "2026-03-01 12:00:00+01")
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("a refused target time left %s (%v)", dir, err)
		}
	}
	// A misspelt flag is named with the one it likely meant.
	expectExit(t, "misspelt flag", walClient(t, env, "backup-fetch", dir, "LATEST", "--recovry"), 2, "unknown flag --recovry; did you mean --recovery?")
	// A non-empty directory is refused: 2.
	writeFile(t, root, "stray", []byte("x"))
	expectExit(t, "backup-fetch into a non-empty directory", walClient(t, env, "backup-fetch", root, "LATEST"), 2,
		"refusing to restore into "+root+": directory is not empty (it holds stray)")

	// LATEST with --recovery: flags after the arguments work too.
	r = walClient(t, env, "backup-fetch", dir, "LATEST", "--recovery", "--target-time", "2026-11-25 01:04:00+00")
	expectExit(t, "backup-fetch LATEST", r, 0)
	if !strings.Contains(r.stderr, "keeps the source's archive_command") || !strings.Contains(r.stderr, "--no-archive") {
		t.Fatalf("backup-fetch does not warn of the source's archive_command: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "restored "+backupName) {
		t.Fatalf("backup-fetch output: %q", r.stdout)
	}
	// The JSON of backup-list and wal-verify is what docs/json.md says.
	doc := filepath.Join("..", "..", "docs", "json.md")
	r = walClient(t, env, "backup-list", "--json")
	expectExit(t, "backup-list --json", r, 0)
	for _, p := range jsondoc.Check(doc, "walgate-client backup-list --json", []byte(r.stdout)) {
		t.Error(p)
	}
	r = walClient(t, env, "wal-verify", "--no-db", "--json")
	for _, p := range jsondoc.Check(doc, "walgate-client wal-verify --json", []byte(r.stdout)) {
		t.Error(p)
	}
	// --no-archive: the copy's postgresql.auto.conf turns archiving off.
	quiet := filepath.Join(root, "quiet")
	r = walClient(t, env, "backup-fetch", "--no-archive", quiet, "LATEST")
	expectExit(t, "backup-fetch --no-archive", r, 0)
	if strings.Contains(r.stderr, "keeps the source's archive_command") || !strings.Contains(string(readAll(t, filepath.Join(quiet, "postgresql.auto.conf"))), "archive_mode = 'off'") {
		t.Fatalf("--no-archive: stderr %q, postgresql.auto.conf:\n%s", r.stderr, readAll(t, filepath.Join(quiet, "postgresql.auto.conf")))
	}
	for rel, body := range files {
		if got := readAll(t, filepath.Join(dir, rel)); !bytes.Equal(got, body) {
			t.Fatalf("%s differs", rel)
		}
	}
	auto := string(readAll(t, filepath.Join(dir, "postgresql.auto.conf")))
	if !strings.Contains(auto, "restore_command = '"+clientBin+" wal-fetch %f %p'") || !strings.Contains(auto, "recovery_target_action = 'promote'") {
		t.Fatalf("postgresql.auto.conf:\n%s", auto)
	}
	readAll(t, filepath.Join(dir, "recovery.signal"))
	if got := string(readAll(t, filepath.Join(dir, "backup_label"))); got != "LABEL: test\n" {
		t.Fatalf("backup_label: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "tablespace_map")); !os.IsNotExist(err) {
		t.Fatalf("tablespace_map written without tablespaces (%v)", err)
	}

	// A corrupted partition: exit 4, one line naming it, DIR left empty.
	part := filepath.Join(g.Data, "store", cluster, "basebackups_005", backupName, "tar_partitions", "part_002.tar.zst")
	data := readAll(t, part)
	data[len(data)/3] ^= 1
	if err := os.WriteFile(part, data, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	r = walClient(t, env, "backup-fetch", empty, backupName)
	expectExit(t, "backup-fetch of a corrupted backup", r, 4, "tar_partitions/part_002.tar.zst", "integrity check failed")
	dirHolds(t, empty)
	// The gateway found the only copy damaged: backup-list and wal-verify
	// say that the backup cannot be restored.
	r = walClient(t, env, "backup-list")
	expectExit(t, "backup-list after the damage", r, 0)
	if !strings.Contains(r.stdout, backupName+" CANNOT be restored: its object tar_partitions/part_002.tar.zst is damaged or missing on every store") {
		t.Fatalf("backup-list does not say the backup cannot be restored:\n%s", r.stdout)
	}
	r = walClient(t, env, "wal-verify", "--no-db")
	if r.code != 8 || !strings.Contains(r.stdout, "newest backup "+backupName) || !strings.Contains(r.stdout, "CANNOT be restored: its object tar_partitions/part_002.tar.zst") {
		t.Fatalf("wal-verify after the damage: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Without the key: exit 4, a clear message, nothing written.
	noKey := clientEnv(g.URL, g.Token(cluster, "fetch"))
	r = walClient(t, noKey, "backup-fetch", empty, backupName)
	expectExit(t, "backup-fetch without the key", r, 4, "no key is configured")
	dirHolds(t, empty)
}

// A drill that cannot even find its backup fails (exit 7) and still sends
// its report.
func TestDrillReportsFailure(t *testing.T) {
	t.Parallel()
	g := gatewaytest.Start(t, gatewaytest.Options{})
	tok := g.Token(cluster, "push", "fetch")
	env := clientEnv(g.URL, tok, "WALGATE_DRILL_DIR", t.TempDir())

	expectExit(t, "drill with a missing --check-sql file", walClient(t, env, "drill", "--check-sql", "/nonexistent.sql"), 2, "--check-sql")
	expectExit(t, "drill with two names", walClient(t, env, "drill", backupName, backupName), 2)
	r := walClient(t, env, "drill", "--timeout", "30s")
	expectExit(t, "drill without backups", r, 7, "no committed backup", "report sent")
	if !strings.Contains(r.stdout, "drill FAILED") {
		t.Fatalf("drill summary: %q", r.stdout)
	}
	dirHolds(t, env["WALGATE_DRILL_DIR"])

	req, _ := http.NewRequest(http.MethodGet, g.URL+protocol.DrillsPath(cluster), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reps []protocol.DrillReport
	if err := json.NewDecoder(resp.Body).Decode(&reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Passed || reps[0].Backup != "LATEST" || !strings.Contains(reps[0].Error, "no committed backup") || reps[0].Host == "" {
		t.Fatalf("drill reports: %+v", reps)
	}
}
