package fleet_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/index"
)

// A name that only carries a storage-team (admin) token is no cluster:
// not while the gateway runs, not after a restart (Load), not when the
// catalog is read with the gateway stopped.
func TestAdminOnlyNameIsNoCluster(t *testing.T) {
	dir := t.TempDir()
	cat, err := index.Open(filepath.Join(dir, "catalog.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, tok := range []struct {
		cluster string
		scope   index.Scope
	}{{"ops", index.ScopeAdmin}, {"main", index.ScopePush}, {"archived", index.ScopeAdmin}} {
		if _, _, err := admin.CreateToken(cat, tok.cluster, []index.Scope{tok.scope}, ""); err != nil {
			t.Fatal(err)
		}
	}
	// "archived" has WAL (its host's token was revoked): it stays listed.
	seg := index.WALObject{Name: "000000010000000000000001", Key: "archived/wal_005/000000010000000000000001.zst", Backend: "local",
		Size: 10, PlainSize: 16 << 20, SHA256: "00", ContentID: "c", Compression: "zstd", Encryption: "none", StoredAt: time.Now().UTC()}
	if _, _, err := cat.AddWAL("archived", seg); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Data: dir}
	cfg.Defaults()
	names := func(st []fleet.ClusterStatus) []string {
		var out []string
		for _, c := range st {
			out = append(out, c.Cluster)
		}
		return out
	}
	want := "[archived main]"
	f, err := fleet.Load(cat, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Status(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := names(st); fmtList(got) != want {
		t.Errorf("after Load: clusters %v, want %s", got, want)
	}
	st, err = fleet.Status(cat, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(st); fmtList(got) != want {
		t.Errorf("offline: clusters %v, want %s", got, want)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// A fleet's gateway rescans its summaries when it starts listening for
// the others' pushes, and hears of a push that committed during the scan
// only afterwards: the name is counted once. A name the scan did not see
// is counted as it is announced.
func TestRescanCountsAnnouncedNameOnce(t *testing.T) {
	dir := t.TempDir()
	cat, err := index.Open(filepath.Join(dir, "catalog.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	seg := func(n int, at time.Time) index.WALObject {
		name := fmt.Sprintf("0000000100000000000000%02X", n)
		return index.WALObject{Name: name, Key: "db/wal_005/" + name + ".zst", Backend: "local",
			Size: 10, PlainSize: 16 << 20, SHA256: "00", ContentID: "c", Compression: "zstd", Encryption: "none", StoredAt: at}
	}
	now := time.Now().UTC()
	for n := 1; n <= 3; n++ {
		if _, _, err := cat.AddWAL("db", seg(n, now)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Config{Data: dir}
	cfg.Defaults()
	f, err := fleet.Load(cat, cfg)
	if err != nil {
		t.Fatal(err)
	}
	files := func() int {
		st, err := f.Status(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st {
			if c.Cluster == "db" {
				return c.WALFiles
			}
		}
		return 0
	}
	// Another gateway commits 4 before the rescan reads the catalog; its
	// announcement arrives after the rescan.
	if _, _, err := cat.AddWAL("db", seg(4, now)); err != nil {
		t.Fatal(err)
	}
	if err := f.Rescan("db"); err != nil {
		t.Fatal(err)
	}
	f.Add("db", seg(4, now))
	if got := files(); got != 4 {
		t.Fatalf("after a rescan and a late announcement of a name it counted: %d WAL files, want 4", got)
	}
	// A push the scan did not see counts.
	if _, _, err := cat.AddWAL("db", seg(5, now)); err != nil {
		t.Fatal(err)
	}
	f.Add("db", seg(5, now))
	if got := files(); got != 5 {
		t.Fatalf("after a new push: %d WAL files, want 5", got)
	}
}
