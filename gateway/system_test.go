package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

const (
	systemA = uint64(7711916252778549563)
	systemB = uint64(7711916252778549999)
)

func (e *env) putSystem(t *testing.T, name, token string, body []byte, id uint64) reply {
	t.Helper()
	h := walHeaders(body)
	if id != 0 {
		h[protocol.HeaderSystemIdentifier] = fmt.Sprint(id)
	}
	return e.send(t, http.MethodPut, protocol.WALPath(cluster, name), token, h, body)
}

func sentinelOf(id uint64) []byte {
	s := `{"LSN":33554472,"FinishLSN":33554688,"StartTime":"2026-11-25T01:00:00Z","FinishTime":"2026-11-25T01:00:05Z","PgVersion":150018,"Hostname":"db1"`
	if id != 0 {
		s += fmt.Sprintf(`,"SystemIdentifier":%d`, id)
	}
	return []byte(s + "}")
}

// beginAndCommit runs a backup's begin (with the server's system
// identifier as a header when id is set), one upload of pg_control.tar
// and the commit with sentinel; it returns the status and body of the
// first step that did not succeed, or of the commit.
func beginAndCommit(t *testing.T, e *env, cl, token, name string, id uint64, sentinel []byte) (int, string) {
	t.Helper()
	h := map[string]string{}
	if id != 0 {
		h[protocol.HeaderSystemIdentifier] = fmt.Sprint(id)
	}
	st, _, body := httpDo(t, http.MethodPost, e.g.URL+protocol.BackupPath(cl, name), token, h, nil)
	if st != http.StatusCreated {
		return st, string(body)
	}
	var begin protocol.BeginBackupResult
	if err := json.Unmarshal(body, &begin); err != nil {
		t.Fatal(err)
	}
	file, data := "tar_partitions/pg_control.tar", tarLike(t, 1024)
	session := map[string]string{protocol.HeaderBackupSession: begin.Session}
	up := map[string]string{protocol.HeaderBackupSession: begin.Session, protocol.HeaderCompression: "none", protocol.HeaderEncryption: protocol.EncryptionNone}
	if st, _, body := httpDo(t, http.MethodPut, e.g.URL+protocol.BackupFilePath(cl, name, file), token, up, data); st != http.StatusCreated {
		t.Fatalf("upload: HTTP %d %s", st, body)
	}
	req, _ := json.Marshal(protocol.CommitBackup{Sentinel: sentinel, Files: map[string]protocol.BackupFile{file: {Size: int64(len(data)), SHA256: sha(data)}}})
	st, _, body = httpDo(t, http.MethodPost, e.g.URL+protocol.BackupCommitPath(cl, name), token, session, req)
	if st != http.StatusOK {
		httpDo(t, http.MethodDelete, e.g.URL+protocol.BackupPath(cl, name), token, session, nil)
	}
	return st, string(body)
}

func wantSystemRefusal(t *testing.T, what string, status int, msg string) {
	t.Helper()
	if status != http.StatusConflict || !strings.Contains(msg, fmt.Sprint(systemA)) || !strings.Contains(msg, fmt.Sprint(systemB)) ||
		!strings.Contains(msg, "new cluster name") || !strings.Contains(msg, "pg_upgrade") {
		t.Fatalf("%s: HTTP %d %q, want 409 naming both systems and what to do", what, status, msg)
	}
}

// A cluster name belongs to the first PostgreSQL system that archives
// under it: WAL and backups of another system are refused with a message
// naming both and what to do, and nothing of them is stored; the same
// system and objects without an identifier go on being accepted. A
// catalog rebuild recovers the system from the objects.
func TestSystemIdentifierRefused(t *testing.T) {
	data := t.TempDir()
	e := start(t, gatewaytest.Options{Config: gateway.Config{Data: data}})

	// Before any identifier: objects without one (a catalog from before
	// the record, a WAL-G client) are accepted and claim nothing.
	expect(t, "segment without identifier", e.putSystem(t, seg1, e.push, randBytes(t, 3000), 0), http.StatusCreated, "")
	expect(t, "first identifier", e.putSystem(t, seg2, e.push, randBytes(t, 3000), systemA), http.StatusCreated, "")
	expect(t, "same system", e.putSystem(t, "000000010000000000000003", e.push, randBytes(t, 3000), systemA), http.StatusCreated, "")
	expect(t, "partial of the same system", e.putSystem(t, "000000010000000000000004.partial", e.push, randBytes(t, 3000), systemA), http.StatusCreated, "")
	expect(t, "history without identifier", e.putSystem(t, "00000002.history", e.push, []byte("1\t0/5000000\tno recovery target specified\n"), 0), http.StatusCreated, "")
	expect(t, "history with an identifier", e.putSystem(t, "00000003.history", e.push, []byte("x"), systemA), http.StatusBadRequest, protocol.CodeBadRequest)
	bad := walHeaders([]byte("x"))
	bad[protocol.HeaderSystemIdentifier] = "0"
	expect(t, "identifier 0", e.send(t, http.MethodPut, protocol.WALPath(cluster, "000000010000000000000005"), e.push, bad, []byte("x")), http.StatusBadRequest, protocol.CodeBadRequest)

	// Another system: a new name and an archived name are refused alike,
	// before the content comparison.
	r := e.putSystem(t, "000000010000000000000006", e.push, randBytes(t, 3000), systemB)
	wantSystemRefusal(t, "new segment of another system", r.status, r.msg)
	if _, err := os.Stat(e.objectPath("000000010000000000000006")); !os.IsNotExist(err) {
		t.Fatalf("the refused segment is in the store (%v)", err)
	}
	expect(t, "refused segment", e.get(t, "000000010000000000000006", e.fetch), http.StatusNotFound, protocol.CodeNotFound)
	orig := e.get(t, seg2, e.fetch)
	r = e.putSystem(t, seg2, e.push, randBytes(t, 3000), systemB)
	wantSystemRefusal(t, "archived name from another system", r.status, r.msg)
	if now := e.get(t, seg2, e.fetch); string(now.body) != string(orig.body) {
		t.Fatal("the archived segment changed")
	}
	expect(t, "the first system goes on", e.putSystem(t, "000000010000000000000006", e.push, randBytes(t, 3000), systemA), http.StatusCreated, "")

	// Backups: the sentinel's SystemIdentifier at commit, the server's at
	// begin; a sentinel without one (WAL-G before it recorded it) passes.
	st, msg := beginAndCommit(t, e, cluster, e.push, "base_000000010000000000000007", 0, sentinelOf(systemB))
	wantSystemRefusal(t, "commit of another system", st, msg)
	st, msg = beginAndCommit(t, e, cluster, e.push, "base_000000010000000000000007", systemB, sentinelOf(systemB))
	wantSystemRefusal(t, "begin of another system", st, msg)
	if st, msg := beginAndCommit(t, e, cluster, e.push, "base_000000010000000000000007", systemA, sentinelOf(systemA)); st != http.StatusOK {
		t.Fatalf("backup of the same system: HTTP %d %s", st, msg)
	}
	if st, msg := beginAndCommit(t, e, cluster, e.push, "base_000000010000000000000008", 0, sentinelOf(0)); st != http.StatusOK {
		t.Fatalf("backup without identifier: HTTP %d %s", st, msg)
	}
	_, _, list := httpDo(t, http.MethodGet, e.g.URL+protocol.BackupsPath(cluster), e.fetch, nil, nil)
	var bs []protocol.BackupSummary
	if err := json.Unmarshal(list, &bs); err != nil || len(bs) != 2 {
		t.Fatalf("backup list %s (%v), want the two accepted backups", list, err)
	}

	// A fresh cluster name is claimed by its first backup as well.
	other := e.g.Token("second", "push")
	if st, msg := beginAndCommit(t, e, "second", other, "base_000000010000000000000002", 0, sentinelOf(systemB)); st != http.StatusOK {
		t.Fatalf("first backup of a fresh cluster: HTTP %d %s", st, msg)
	}
	h := walHeaders([]byte("y"))
	h[protocol.HeaderSystemIdentifier] = fmt.Sprint(systemA)
	if r := e.send(t, http.MethodPut, protocol.WALPath("second", seg1), other, h, []byte("y")); r.status != http.StatusConflict {
		t.Fatalf("WAL of another system than the fresh cluster's first backup: HTTP %d %s", r.status, r.msg)
	}

	// A cluster with WAL alone: the rebuild reads its system from the
	// objects' metadata.
	third := e.g.Token("third", "push")
	h = walHeaders([]byte("z"))
	h[protocol.HeaderSystemIdentifier] = fmt.Sprint(systemB)
	if r := e.send(t, http.MethodPut, protocol.WALPath("third", seg1), third, h, []byte("z")); r.status != http.StatusCreated {
		t.Fatalf("WAL of a third cluster: HTTP %d %s", r.status, r.msg)
	}

	// The catalog rebuild finds each cluster's system in the objects.
	e.g.Server.Shutdown(context.Background())
	catPath := config.CatalogPath(data)
	os.Remove(catPath)
	runRebuild(t, filepath.Join(data, "store"), "local", catPath)
	checkCatalog(t, catPath)
	cat, err := index.OpenReadOnly(catPath, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for cl, want := range map[string]uint64{cluster: systemA, "second": systemB, "third": systemB} {
		if got, err := cat.System(cl); err != nil || got.SystemIdentifier != want {
			t.Errorf("rebuilt system of %s: %+v, %v; want %d", cl, got, err, want)
		}
	}
}
