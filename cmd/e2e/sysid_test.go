package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index/pgname"
)

// storeHashes is the SHA-256 of every object under dir.
func storeHashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, f := range gatewaytest.ListFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = sha256.Sum256(data)
	}
	return out
}

// A freshly initdb'd server (as after pg_upgrade: a new system
// identifier, WAL names from the start again) archiving under the name of
// another system is refused by the gateway: its archive_command fails
// with a message naming both systems and what to do, wal-push and
// backup-push exit 5 (conflict), and the first system's archive is
// untouched and goes on.
func TestNewSystemUnderOldName(t *testing.T) {
	requirePostgres(t)
	g := gatewaytest.Start(t, gatewaytest.Options{})
	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	e.pushKind(t, "full", "backup-push", "--full")
	e.archiveAll(t)
	firstID, err := e.src.QueryString(ctx, "SELECT system_identifier::text FROM pg_control_system()")
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(g.Data, "store", "db")
	before := storeHashes(t, store)

	// The new system archives through walgate-client under the same name.
	other := pgtest.New(t, pgtest.Options{Env: e.env, NoStart: true, Conf: []string{"archive_mode = on"}})
	bin, err := other.InstallExecutable(walgateClient(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.AppendConf("archive_command = " + pgtest.QuoteConf(bin+" wal-push %p")); err != nil {
		t.Fatal(err)
	}
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	otherID, err := other.QueryString(ctx, "SELECT system_identifier::text FROM pg_control_system()")
	if err != nil {
		t.Fatal(err)
	}
	if otherID == firstID {
		t.Fatalf("two initdb runs gave the same system identifier %s", otherID)
	}
	seg, err := other.SwitchWAL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantMessage := func(what, out string) {
		t.Helper()
		if !strings.Contains(out, "PostgreSQL system "+otherID) || !strings.Contains(out, "belongs to system "+firstID) ||
			!strings.Contains(out, "archive it under a new cluster name") {
			t.Fatalf("%s does not name both systems and what to do:\n%s", what, out)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := other.ArchiverStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ArchivedCount != 0 {
			t.Fatalf("the new system's WAL was archived under the old name: %s", st)
		}
		if st.FailedCount > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive_command did not fail: %s\n%s", st, other.LogTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantMessage("the server log", other.LogTail(40))

	out, code := e.client(t, nil, "wal-push", filepath.Join(other.DataDir, "pg_wal", seg))
	if code != 5 {
		t.Fatalf("wal-push of the new system's %s: exit %d, want 5\n%s", seg, code, out)
	}
	wantMessage("wal-push", out)
	pg := []string{"PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", other.Port), "PGUSER=postgres", "PGDATABASE=postgres"}
	out, code = e.client(t, pg, "backup-push", "--full", other.DataDir)
	if code != 5 {
		t.Fatalf("backup-push of the new system: exit %d, want 5\n%s", code, out)
	}
	wantMessage("backup-push", out)

	// The old system's archive: not a byte changed, and it goes on.
	after := storeHashes(t, store)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the first system's store changed: %d objects before, %d after", len(before), len(after))
	}
	if n := len(e.list(t)); n != 1 {
		t.Fatalf("%d backups, want the first system's one", n)
	}
	fetched := filepath.Join(t.TempDir(), seg)
	e.mustClient(t, "wal-fetch", seg, fetched)
	head := make([]byte, pgname.LongPageHeaderSize)
	f, err := os.Open(fetched)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	wf, _ := pgname.ParseWALFile(seg)
	if h, err := pgname.ParseSegmentHeader(head, wf); err != nil || fmt.Sprint(h.SystemIdentifier) != firstID {
		t.Fatalf("archived %s: %+v, %v; want the first system's %s", seg, h, err, firstID)
	}
	e.archiveAll(t)
}
