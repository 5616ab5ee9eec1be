package fleet_test

import (
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
