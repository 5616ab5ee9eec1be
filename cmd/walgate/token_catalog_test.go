package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/cmd/internal/catalogdb"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// token add, list, rotate and revoke work on the PostgreSQL catalog a
// config names, with no gateway running, record each act in the audit log
// of the config's data directory, and never print the DSN's password.
func TestTokenVerbsOnPostgresCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := catalogdb.NewServer(t)
	dsn := srv.NewDatabase(t, "")
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "catalog.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "fleet.yaml")
	data := filepath.Join(dir, "data")
	cfg := fmt.Sprintf("data: %s\ncatalog:\n  type: postgres\n  postgres:\n    dsn_file: %s\n", data, dsnFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := runToken(args, &out, &errOut)
		if strings.Contains(out.String()+errOut.String(), catalogdb.Password) {
			t.Fatalf("token %v printed the catalog password", args)
		}
		return out.String(), errOut.String(), err
	}
	secret, msg, err := run("add", "--config", cfgPath, "--cluster", "db", "--scope", "push")
	if err != nil {
		t.Fatalf("add: %v %s", err, msg)
	}
	secret = strings.TrimSpace(secret)
	cat, err := pgcatalog.Open(t.Context(), dsn, pgcatalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tok, err := cat.LookupToken(protocol.TokenHash(secret))
	if err != nil || tok.Cluster != "db" {
		t.Fatalf("the new token is not in the PostgreSQL catalog: %+v %v", tok, err)
	}
	list, _, err := run("list", "--config", cfgPath)
	if err != nil || !strings.Contains(list, tok.ID) {
		t.Fatalf("list: %q %v", list, err)
	}
	next, msg, err := run("rotate", "--config", cfgPath, tok.ID, "--grace", "1h")
	if err != nil {
		t.Fatalf("rotate: %v %s", err, msg)
	}
	succ, err := cat.LookupToken(protocol.TokenHash(strings.TrimSpace(next)))
	if err != nil || succ.RotatedFrom != tok.ID || succ.Cluster != "db" || len(succ.Scopes) != 1 || succ.Scopes[0] != index.ScopePush {
		t.Fatalf("the successor in the PostgreSQL catalog: %+v %v", succ, err)
	}
	if old, err := cat.LookupToken(protocol.TokenHash(secret)); err != nil || old.Successor != succ.ID || old.Expires.IsZero() {
		t.Fatalf("the rotated token in the PostgreSQL catalog: %+v %v", old, err)
	}
	fleetSecret, msg, err := run("add", "--config", cfgPath, "--all-clusters", "--scope", "admin")
	if err != nil {
		t.Fatalf("add --all-clusters: %v %s", err, msg)
	}
	if ft, err := cat.LookupToken(protocol.TokenHash(strings.TrimSpace(fleetSecret))); err != nil || !ft.AllClusters || ft.Cluster != "" {
		t.Fatalf("the fleet-wide token in the PostgreSQL catalog: %+v %v", ft, err)
	}
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := run("revoke", "--config", cfgPath, tok.ID); err != nil {
		t.Fatalf("revoke: %v %s", err, msg)
	}
	if _, err := cat.LookupToken(protocol.TokenHash(secret)); err == nil {
		t.Fatal("a revoked token is still in the catalog")
	}
	log, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []string{`"token.add"`, `"token.rotate"`, `"token.revoke"`} {
		if !strings.Contains(string(log), act) {
			t.Errorf("audit log lacks %s:\n%s", act, log)
		}
	}
	// A wrong password: a clear error, without the password.
	bad := strings.Replace(dsn, catalogdb.Password, "wrong-pw-123", 1)
	if err := os.WriteFile(dsnFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = run("list", "--config", cfgPath)
	if err == nil || strings.Contains(err.Error(), "wrong-pw-123") || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
}
