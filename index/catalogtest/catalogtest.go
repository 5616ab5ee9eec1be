package catalogtest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/index"
)

// Opener returns a new, empty catalog for one test; the suite closes it.
type Opener func(t *testing.T) index.Interface

// Run runs every contract test against catalogs made by open. Each test
// ends with the catalog's Check.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c index.Interface)
	}{
		{"WALOnceAndOrder", testWALOnceAndOrder},
		{"ConcurrentClaim", testConcurrentClaim},
		{"WALClaims", testWALClaims},
		{"Leases", testLeases},
		{"Gateways", testGateways},
		{"BriefRecords", testBriefRecords},
		{"TimelinesAndWALChanges", testTimelinesAndWALChanges},
		{"Backups", testBackups},
		{"Drills", testDrills},
		{"Tokens", testTokens},
		{"FleetTokens", testFleetTokens},
		{"TokenRotation", testTokenRotation},
		{"Trends", testTrends},
		{"ConcurrentTrends", testConcurrentTrends},
		{"System", testSystem},
		{"ReplicationQueue", testReplicationQueue},
		{"EnqueueRepair", testEnqueueRepair},
		{"CopyClaims", testCopyClaims},
		{"CopyClaimsTakeover", testCopyClaimsTakeover},
		{"ConcurrentCopyClaims", testConcurrentCopyClaims},
		{"CheckFindsDamage", testCheckFindsDamage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t)
			t.Cleanup(func() { c.Close() })
			tc.fn(t, c)
			if t.Failed() || tc.name == "CheckFindsDamage" {
				return
			}
			if err := c.Check(); err != nil {
				t.Fatalf("Check after the test: %v", err)
			}
		})
	}
}

// WALObj is a complete WAL record of cluster-less name with content id cid.
func WALObj(name, cid string) index.WALObject {
	return index.WALObject{Name: name, Key: "db/wal_005/" + name + ".zst", Backend: "local", Size: 10,
		SHA256: strings.Repeat("a", 64), ContentID: cid, PlainSize: 16 << 20, Compression: "zstd", Encryption: "none",
		StoredAt: time.Now().UTC().Truncate(time.Microsecond)}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func walNames(t *testing.T, c index.Interface, cluster, from string) []string {
	t.Helper()
	var got []string
	must(t, c.ListWAL(cluster, from, func(o index.WALObject) error { got = append(got, o.Name); return nil }))
	return got
}

func testWALOnceAndOrder(t *testing.T, c index.Interface) {
	names := []string{"000000020000000000000001", "000000010000000000000003", "00000002.history", "000000010000000000000001"}
	for _, n := range names {
		if _, added, err := c.AddWAL("db", WALObj(n, "sha256:"+n)); err != nil || !added {
			t.Fatalf("%s: added=%v err=%v", n, added, err)
		}
	}
	cur, added, err := c.AddWAL("db", WALObj(names[0], "sha256:different"))
	if err != nil || added || cur.ContentID != "sha256:"+names[0] {
		t.Fatalf("second add replaced the record: %+v added=%v err=%v", cur, added, err)
	}
	want := "000000010000000000000001 000000010000000000000003 00000002.history 000000020000000000000001"
	if got := walNames(t, c, "db", ""); strings.Join(got, " ") != want {
		t.Fatalf("order: %v", got)
	}
	if got := walNames(t, c, "db", "000000010000000000000002"); len(got) != 3 || got[0] != "000000010000000000000003" {
		t.Fatalf("from: %v", got)
	}
	if _, err := c.WAL("other", names[0]); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("other cluster sees the record: %v", err)
	}
	if _, err := c.WAL("db", "000000010000000000000002"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("missing name: %v", err)
	}
	o, err := c.WAL("db", names[1])
	if want := WALObj(names[1], "sha256:"+names[1]); err != nil || o.Key != want.Key || !o.StoredAt.Equal(want.StoredAt.Truncate(time.Second)) && o.StoredAt.IsZero() {
		t.Fatalf("read back: %+v %v", o, err)
	}
	// A batch skips names already held.
	must(t, c.AddWALBatch("db", []index.WALObject{WALObj(names[0], "sha256:batch"), WALObj("000000010000000000000002", "sha256:b2")}))
	if o, err := c.WAL("db", names[0]); err != nil || o.ContentID != "sha256:"+names[0] {
		t.Fatalf("batch replaced a record: %+v %v", o, err)
	}
	if got := walNames(t, c, "db", ""); len(got) != 5 {
		t.Fatalf("after batch: %v", got)
	}
	cls, err := c.Clusters()
	if err != nil || len(cls) != 1 || cls[0].Name != "db" || cls[0].Created.IsZero() {
		t.Fatalf("clusters: %+v %v", cls, err)
	}
	if size, err := c.SegmentSize("db"); err != nil || size != 16<<20 {
		t.Fatalf("segment size: %d %v", size, err)
	}
	if size, err := c.SegmentSize("none"); err != nil || size != 0 {
		t.Fatalf("segment size of an unknown cluster: %d %v", size, err)
	}
}

func testConcurrentClaim(t *testing.T, c index.Interface) {
	const name = "000000010000000000000009"
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	seen := map[string]bool{}
	for i := range 16 {
		wg.Go(func() {
			cid := fmt.Sprintf("sha256:%d", i)
			cp := []index.Copy{{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: name, Key: "k" + cid, Size: 1}}
			cur, added, err := c.AddWALCopies("db", WALObj(name, cid), cp)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen[cur.ContentID] = true
			if added {
				if cur.ContentID != cid {
					t.Errorf("winner %s got back %s", cid, cur.ContentID)
				}
				winners = append(winners, cid)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 || len(seen) != 1 || !seen[winners[0]] {
		t.Fatalf("winners %v, records seen %v: want exactly one winner that everyone sees", winners, seen)
	}
	if o, err := c.WAL("db", name); err != nil || o.ContentID != winners[0] {
		t.Fatalf("stored %+v %v, winner %s", o, err, winners[0])
	}
	p, err := c.Pending("replica", 0)
	if err != nil || len(p) != 1 || p[0].Key != "k"+winners[0] {
		t.Fatalf("queued copies: %+v %v: want only the winner's", p, err)
	}
}

func testBriefRecords(t *testing.T, c index.Interface) {
	o := WALObj("000000010000000000000001", "sha256:x")
	o.Backends = []string{"local", "replica"}
	o.Classes = map[string]string{"replica": "COLD"}
	_, _, err := c.AddWAL("db", o)
	must(t, err)
	n := 0
	must(t, c.ListWALBrief("db", func(name string, w index.WALBrief) error {
		n++
		if name != o.Name || w.Key != o.Key || w.Size != o.Size || !w.StoredAt.Equal(o.StoredAt) ||
			!slices.Equal(w.Holders, o.Backends) || w.Classes["replica"] != "COLD" {
			t.Errorf("brief %s: %+v, record %+v", name, w, o)
		}
		return nil
	}))
	if n != 1 {
		t.Fatalf("%d briefs", n)
	}
	must(t, c.ListWALBrief("none", func(string, index.WALBrief) error { t.Error("brief of an unknown cluster"); return nil }))
}

func testTimelinesAndWALChanges(t *testing.T, c index.Interface) {
	h := WALObj("00000002.history", "sha256:h")
	h.TimelineParent, h.SwitchLSN = 1, 0x3000000
	for _, o := range []index.WALObject{WALObj("000000010000000000000001", "sha256:1"), WALObj("000000010000000000000002", "sha256:2"),
		h, WALObj("000000020000000000000003", "sha256:3"), WALObj("000000050000000000000001", "sha256:5")} {
		o.Backends = []string{"local", "replica"}
		_, _, err := c.AddWAL("db", o)
		must(t, err)
	}
	tls, err := c.Timelines("db")
	must(t, err)
	want := []index.TimelineRecord{{ID: 1}, {ID: 2, Parent: 1, SwitchLSN: 0x3000000, History: true}, {ID: 5}}
	if !slices.Equal(tls, want) {
		t.Fatalf("timelines %+v, want %+v", tls, want)
	}
	if tls, err := c.Timelines("none"); err != nil || len(tls) != 0 {
		t.Fatalf("timelines of an unknown cluster: %v %v", tls, err)
	}
	must(t, c.ApplyWALChanges("db", []index.CopyChange{
		{Name: "000000010000000000000001", Backend: "replica", Class: "COLD"},
		{Name: "000000010000000000000002", Backend: "local", Deleted: true},
		{Name: "000000050000000000000001", Backend: "local", Deleted: true},
		{Name: "000000050000000000000001", Backend: "replica", Deleted: true},
		{Name: "000000090000000000000001", Backend: "local", Deleted: true}, // gone: ignored
	}))
	if o, err := c.WAL("db", "000000010000000000000001"); err != nil || o.Classes["replica"] != "COLD" {
		t.Fatalf("class change: %+v %v", o, err)
	}
	if o, err := c.WAL("db", "000000010000000000000002"); err != nil || !slices.Equal(o.Holders(), []string{"replica"}) || o.Backend != "replica" {
		t.Fatalf("holder dropped: %+v %v", o, err)
	}
	if _, err := c.WAL("db", "000000050000000000000001"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("record without holders kept: %v", err)
	}
	var briefs int
	must(t, c.ListWALBrief("db", func(name string, w index.WALBrief) error {
		briefs++
		if name == "000000010000000000000001" && w.Classes["replica"] != "COLD" {
			t.Errorf("brief missed the class change: %+v", w)
		}
		return nil
	}))
	if briefs != 4 {
		t.Fatalf("%d brief records for 4 WAL records", briefs)
	}
}

func backup(name string, finish time.Time) index.Backup {
	return index.Backup{Name: name, State: index.BackupOpen, Session: "s-" + name, Backend: "local",
		Begun: finish.Add(-time.Minute), LastActivity: finish, Files: map[string]index.BackupFile{
			"part_1.tar.zst": {Key: "db/basebackups_005/" + name + "/tar_partitions/part_1.tar.zst", Size: 100, SHA256: strings.Repeat("b", 64)},
		}, Info: index.BackupInfo{Kind: "full", FinishTime: finish}}
}

func testBackups(t *testing.T, c index.Interface) {
	now := time.Now().UTC().Truncate(time.Second)
	g0 := c.Generation("db")
	b1, b2 := backup("base_000000010000000000000004", now), backup("base_000000010000000000000002", now.Add(-time.Hour))
	must(t, c.BeginBackup("db", b1))
	if c.Generation("db") == g0 {
		t.Error("Generation did not move at BeginBackup")
	}
	must(t, c.BeginBackup("db", b2))
	if err := c.BeginBackup("db", b1); !errors.Is(err, index.ErrExists) {
		t.Fatalf("second begin: %v", err)
	}
	open, err := c.OpenBackups()
	if err != nil || len(open["db"]) != 2 || open["db"][0].Name != b2.Name {
		t.Fatalf("open backups: %+v %v", open, err)
	}
	g1 := c.Generation("db")
	sentinel := b1.Name + "_backup_stop_sentinel.json"
	must(t, c.UpdateBackupCopies("db", b1.Name, func(b *index.Backup) ([]index.Copy, error) {
		b.State, b.Committed, b.SentinelKey, b.SentinelSize = index.BackupCommitted, now, sentinel, 10
		return []index.Copy{{Backend: "replica", Cluster: "db", Kind: index.CopySentinel, Name: b.Name, Key: sentinel, Size: 10}}, nil
	}))
	if c.Generation("db") == g1 {
		t.Error("Generation did not move at a commit")
	}
	stop := errors.New("refused")
	if err := c.UpdateBackup("db", b2.Name, func(*index.Backup) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
	if err := c.UpdateBackup("db", "base_000000010000000000000009", func(*index.Backup) error { return nil }); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("update of a missing backup: %v", err)
	}
	if _, err := c.Backup("db", "base_000000010000000000000009"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("missing backup: %v", err)
	}
	committed, err := c.Backups("db", index.BackupCommitted)
	if err != nil || len(committed) != 1 || committed[0].Name != b1.Name || committed[0].SentinelKey != sentinel {
		t.Fatalf("committed: %+v %v", committed, err)
	}
	all, err := c.Backups("db", "")
	if err != nil || len(all) != 2 || all[0].Name != b2.Name {
		t.Fatalf("all by finish time: %+v %v", all, err)
	}
	p, err := c.Pending("replica", 0)
	if err != nil || len(p) != 1 || p[0].Kind != index.CopySentinel {
		t.Fatalf("commit did not queue its copy: %+v %v", p, err)
	}
	must(t, c.CompleteCopy(p[0]))
	if b, err := c.Backup("db", b1.Name); err != nil || !slices.Equal(b.Holders(), []string{"local", "replica"}) {
		t.Fatalf("sentinel copy not recorded: %+v %v", b, err)
	}
	fileKey := b1.Files["part_1.tar.zst"].Key
	must(t, c.SetBackupClasses("db", b1.Name, []index.CopyChange{{Name: fileKey, Backend: "local", Class: "COLD"}, {Name: sentinel, Backend: "local", Class: "COLD"}}))
	if err := c.SetBackupClasses("db", b1.Name, []index.CopyChange{{Name: fileKey, Backend: "local", Deleted: true}}); err == nil {
		t.Fatal("a deletion was taken as a class change")
	}
	b, err := c.Backup("db", b1.Name)
	if err != nil || b.Files["part_1.tar.zst"].Classes["local"] != "COLD" || b.SentinelClasses["local"] != "COLD" {
		t.Fatalf("classes: %+v %v", b, err)
	}
	if _, err := c.MarkBackupDeleting("db", b2.Name); err == nil {
		t.Fatal("an open backup was marked deleting")
	}
	for range 2 {
		if d, err := c.MarkBackupDeleting("db", b1.Name); err != nil || d.State != index.BackupDeleting {
			t.Fatalf("mark deleting: %+v %v", d, err)
		}
	}
	g2 := c.Generation("db")
	must(t, c.DeleteBackup("db", b1.Name))
	if c.Generation("db") == g2 {
		t.Error("Generation did not move at a deletion")
	}
	if all, err := c.Backups("db", ""); err != nil || len(all) != 1 {
		t.Fatalf("after delete: %+v %v", all, err)
	}
}

func testDrills(t *testing.T, c index.Interface) {
	if d, passed, err := c.DrillSummary("db"); err != nil || d != nil || !passed.IsZero() {
		t.Fatalf("no drills: %v %v %v", d, passed, err)
	}
	base := time.Now().UTC().Truncate(time.Second)
	for i, ok := range []bool{true, true, false, false} {
		rep := json.RawMessage(fmt.Sprintf(`{"n":%d,"passed":%v}`, i, ok))
		must(t, c.AddDrill("db", index.DrillRecord{Received: base.Add(time.Duration(i) * time.Minute), Passed: ok, Report: rep}))
	}
	all, err := c.Drills("db", 0)
	if err != nil || len(all) != 4 || !all[0].Received.Equal(base) || string(all[3].Report) != `{"n":3,"passed":false}` {
		t.Fatalf("drills: %+v %v", all, err)
	}
	last2, err := c.Drills("db", 2)
	if err != nil || len(last2) != 2 || !last2[0].Received.Equal(base.Add(2*time.Minute)) {
		t.Fatalf("newest two: %+v %v", last2, err)
	}
	newest, passed, err := c.DrillSummary("db")
	if err != nil || newest == nil || newest.Passed || !newest.Received.Equal(base.Add(3*time.Minute)) || !passed.Equal(base.Add(time.Minute)) {
		t.Fatalf("summary: %+v %v %v", newest, passed, err)
	}
	// Trimming keeps the newest and drops the oldest.
	if n, err := c.TrimDrills("db", 5); err != nil || n != 0 {
		t.Fatalf("trim to 5 of 4: removed %d, %v", n, err)
	}
	if n, err := c.TrimDrills("db", 3); err != nil || n != 1 {
		t.Fatalf("trim to 3 of 4: removed %d, %v", n, err)
	}
	kept, err := c.Drills("db", 0)
	if err != nil || len(kept) != 3 || !kept[0].Received.Equal(base.Add(time.Minute)) || !kept[2].Received.Equal(base.Add(3*time.Minute)) {
		t.Fatalf("after trimming to 3: %+v %v", kept, err)
	}
	if n, err := c.TrimDrills("db", 0); err != nil || n != 3 {
		t.Fatalf("trim to 0: removed %d, %v", n, err)
	}
	if d, _, err := c.DrillSummary("db"); err != nil || d != nil {
		t.Fatalf("after trimming all: %+v %v", d, err)
	}
	if n, err := c.TrimDrills("nosuch", 1); err != nil || n != 0 {
		t.Fatalf("trim of an unknown cluster: removed %d, %v", n, err)
	}
}

func testTokens(t *testing.T, c index.Interface) {
	h := sha256.Sum256([]byte("secret"))
	tok := index.Token{ID: "abc", Cluster: "db", Scopes: []index.Scope{index.ScopeFetch, index.ScopePush}, Created: time.Now().UTC()}
	must(t, c.AddToken(h, tok))
	if err := c.AddToken(h, tok); err == nil {
		t.Fatal("same hash added twice")
	}
	h2 := sha256.Sum256([]byte("other secret"))
	must(t, c.AddToken(h2, index.Token{ID: "def", Cluster: "alpha", Scopes: []index.Scope{index.ScopeAdmin}, Created: time.Now().UTC()}))
	got, err := c.LookupToken(h)
	if err != nil || got.Cluster != "db" || !got.Has(index.ScopePush) || got.Has(index.ScopeAdmin) {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if _, err := c.LookupToken(sha256.Sum256([]byte("unknown"))); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	list, err := c.ListTokens()
	if err != nil || len(list) != 2 || list[0].ID != "def" || list[1].ID != "abc" {
		t.Fatalf("list by cluster: %+v %v", list, err)
	}
	recs, err := c.TokenRecords()
	if err != nil || len(recs) != 2 || recs[h].ID != "abc" || recs[h2].ID != "def" {
		t.Fatalf("records: %+v %v", recs, err)
	}
	if cls, err := c.Clusters(); err != nil || len(cls) != 2 {
		t.Fatalf("a token's cluster is not recorded: %+v %v", cls, err)
	}
	must(t, c.RevokeToken("abc"))
	if _, err := c.LookupToken(h); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("revoked token still found: %v", err)
	}
	if err := c.RevokeToken("abc"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
}

func testFleetTokens(t *testing.T, c index.Interface) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	h := sha256.Sum256([]byte("fleet secret"))
	fleet := index.Token{ID: "fleet1", AllClusters: true, Scopes: []index.Scope{index.ScopeAdmin}, Created: now,
		Expires: now.Add(90 * 24 * time.Hour), Comment: "storage team"}
	must(t, c.AddToken(h, fleet))
	bad := fleet
	bad.ID, bad.Cluster = "fleet2", "db"
	if err := c.AddToken(sha256.Sum256([]byte("bad")), bad); err == nil {
		t.Fatal("a fleet-wide token naming a cluster was stored")
	}
	got, err := c.LookupToken(h)
	if err != nil || !got.AllClusters || got.Cluster != "" || !got.Expires.Equal(fleet.Expires) || got.Comment != "storage team" ||
		!got.Covers("any") || got.Valid(now) != nil || !errors.Is(got.Valid(fleet.Expires), index.ErrTokenExpired) {
		t.Fatalf("lookup of a fleet-wide token: %+v %v", got, err)
	}
	if cls, err := c.Clusters(); err != nil || len(cls) != 0 {
		t.Fatalf("a fleet-wide token made clusters: %+v %v", cls, err)
	}
	if list, err := c.ListTokens(); err != nil || len(list) != 1 || list[0].ID != "fleet1" {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func testTokenRotation(t *testing.T, c index.Interface) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	h := sha256.Sum256([]byte("old secret"))
	old := index.Token{ID: "old", Cluster: "db", Scopes: []index.Scope{index.ScopeFetch, index.ScopePush}, Created: now.Add(-time.Hour),
		Comment: "host a", Expires: now.Add(48 * time.Hour)}
	must(t, c.AddToken(h, old))
	if _, _, err := c.RotateToken("missing", sha256.Sum256([]byte("x")), index.Token{ID: "x", Created: now}, now); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("rotating an unknown token: %v", err)
	}
	// The successor takes the old token's cluster, scopes and comment,
	// whatever it is given; the old one keeps working until oldUntil.
	h2 := sha256.Sum256([]byte("new secret"))
	gotOld, gotNext, err := c.RotateToken("old", h2, index.Token{ID: "new", Cluster: "other", Scopes: []index.Scope{index.ScopeAdmin},
		Created: now, Expires: now.Add(72 * time.Hour)}, now.Add(24*time.Hour))
	must(t, err)
	if gotOld.Successor != "new" || !gotOld.Expires.Equal(now.Add(24*time.Hour)) ||
		gotNext.RotatedFrom != "old" || gotNext.Cluster != "db" || gotNext.Comment != "host a" || !slices.Equal(gotNext.Scopes, old.Scopes) ||
		!gotNext.Expires.Equal(now.Add(72*time.Hour)) {
		t.Fatalf("rotation returned old %+v, next %+v", gotOld, gotNext)
	}
	for hash, want := range map[[32]byte]index.Token{h: gotOld, h2: gotNext} {
		got, err := c.LookupToken(hash)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
			t.Fatalf("stored %s, returned %s", g, w)
		}
	}
	// A rotated token is not rotated again: its successor is.
	if _, _, err := c.RotateToken("old", sha256.Sum256([]byte("third")), index.Token{ID: "third", Created: now}, now); err == nil ||
		!strings.Contains(err.Error(), "already rotated to new") {
		t.Fatalf("second rotation of one token: %v", err)
	}
	if _, err := c.LookupToken(sha256.Sum256([]byte("third"))); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a refused rotation stored its successor: %v", err)
	}
	// A successor hash already in use is refused and nothing changes.
	if _, _, err := c.RotateToken("new", h, index.Token{ID: "dup", Created: now}, now); err == nil {
		t.Fatal("a successor reusing a stored hash was accepted")
	}
	if got, err := c.LookupToken(h2); err != nil || got.Successor != "" || !got.Expires.Equal(now.Add(72*time.Hour)) {
		t.Fatalf("a refused rotation changed the token: %+v %v", got, err)
	}
	// oldUntil past the old token's own expiry keeps the earlier one.
	_, _, err = c.RotateToken("new", sha256.Sum256([]byte("fourth")), index.Token{ID: "fourth", Created: now}, now.Add(100*time.Hour))
	must(t, err)
	if got, err := c.LookupToken(h2); err != nil || got.Successor != "fourth" || !got.Expires.Equal(now.Add(72*time.Hour)) {
		t.Fatalf("rotation extended the old token: %+v %v", got, err)
	}
	// A fleet-wide token's successor is fleet-wide.
	hf := sha256.Sum256([]byte("fleet"))
	must(t, c.AddToken(hf, index.Token{ID: "fleet", AllClusters: true, Scopes: []index.Scope{index.ScopeAdmin}, Created: now}))
	gotOld, gotNext, err = c.RotateToken("fleet", sha256.Sum256([]byte("fleet next")), index.Token{ID: "fleetnext", Created: now}, now.Add(time.Hour))
	must(t, err)
	if !gotNext.AllClusters || gotNext.Cluster != "" || !gotOld.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("rotating a fleet-wide token: old %+v, next %+v", gotOld, gotNext)
	}
	if list, err := c.ListTokens(); err != nil || len(list) != 5 {
		t.Fatalf("tokens after rotations: %+v %v", list, err)
	}
}

func testTrends(t *testing.T, c index.Interface) {
	if got, err := c.Trends("db", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("trends of an empty catalog: %+v %v", got, err)
	}
	now := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)
	hour := now.Truncate(time.Hour)
	// Times within an hour, in any zone, land in that hour's bucket.
	east := time.FixedZone("east", 3*3600)
	must(t, c.AddTrends(map[string]map[time.Time]index.TrendCounts{
		"db":    {now: {WALBytes: 100, WALFiles: 1, Requests: 2}, hour.Add(-2 * time.Hour).In(east): {Backups: 1}},
		"alpha": {now: {Requests: 5, Errors: 1}},
	}, now))
	must(t, c.AddTrends(map[string]map[time.Time]index.TrendCounts{
		"db": {now.Add(10 * time.Minute): {WALBytes: 50, WALFiles: 1, Requests: 1, Errors: 1}},
	}, now))
	got, err := c.Trends("db", hour.Add(-3*time.Hour))
	must(t, err)
	want := []index.TrendBucket{
		{Hour: hour.Add(-2 * time.Hour), TrendCounts: index.TrendCounts{Backups: 1}},
		{Hour: hour, TrendCounts: index.TrendCounts{WALBytes: 150, WALFiles: 2, Requests: 3, Errors: 1}},
	}
	if !slices.EqualFunc(got, want, func(a, b index.TrendBucket) bool {
		return a.Hour.Equal(b.Hour) && a.Hour.Location() == time.UTC && a.TrendCounts == b.TrendCounts
	}) {
		t.Fatalf("trends of db: %+v, want %+v", got, want)
	}
	// since is truncated to its hour.
	if got, err := c.Trends("db", hour.Add(59*time.Minute)); err != nil || len(got) != 1 || got[0].WALBytes != 150 {
		t.Fatalf("trends since within the current hour: %+v %v", got, err)
	}
	if got, err := c.Trends("alpha", time.Time{}); err != nil || len(got) != 1 || got[0].Requests != 5 || got[0].Errors != 1 {
		t.Fatalf("trends of alpha: %+v %v", got, err)
	}
	// Writes prune every cluster to index.TrendHours+1 buckets.
	counts := map[time.Time]index.TrendCounts{}
	for i := range index.TrendHours + 5 {
		counts[hour.Add(-time.Duration(i)*time.Hour)] = index.TrendCounts{Requests: int64(i + 1)}
	}
	must(t, c.AddTrends(map[string]map[time.Time]index.TrendCounts{"beta": counts}, now))
	got, err = c.Trends("beta", time.Time{})
	must(t, err)
	oldest := hour.Add(-index.TrendHours * time.Hour)
	if len(got) != index.TrendHours+1 || !got[0].Hour.Equal(oldest) || !got[len(got)-1].Hour.Equal(hour) || got[len(got)-1].Requests != 1 {
		t.Fatalf("beta after pruning: %d buckets from %v to %v, want %d from %v to %v",
			len(got), got[0].Hour, got[len(got)-1].Hour, index.TrendHours+1, oldest, hour)
	}
	// A later write prunes the clusters it does not name too.
	must(t, c.AddTrends(map[string]map[time.Time]index.TrendCounts{"alpha": {now.Add(index.TrendHours * time.Hour): {Requests: 1}}},
		now.Add(index.TrendHours*time.Hour)))
	if got, err := c.Trends("db", time.Time{}); err != nil || len(got) != 1 || !got[0].Hour.Equal(hour) {
		t.Fatalf("db after a write a week later: %+v %v", got, err)
	}
	if got, err := c.Trends("beta", time.Time{}); err != nil || len(got) != 1 || !got[0].Hour.Equal(hour) {
		t.Fatalf("beta after a write a week later: %d buckets %v", len(got), err)
	}
	if got, err := c.Trends("alpha", time.Time{}); err != nil || len(got) != 2 {
		t.Fatalf("alpha after a write a week later: %+v %v", got, err)
	}
}

func testConcurrentTrends(t *testing.T, c index.Interface) {
	now := time.Now().UTC()
	const writers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				errs <- c.AddTrends(map[string]map[time.Time]index.TrendCounts{"db": {now: {Requests: 1, WALBytes: 10}}}, now)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got, err := c.Trends("db", now)
	if err != nil || len(got) != 1 || got[0].Requests != writers*rounds || got[0].WALBytes != 10*writers*rounds {
		t.Fatalf("concurrent additions to one bucket: %+v %v", got, err)
	}
}

func testSystem(t *testing.T, c index.Interface) {
	if _, err := c.System("db"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("no system yet: %v", err)
	}
	if _, err := c.ClaimSystem("db", index.ClusterSystem{}); err == nil {
		t.Fatal("identifier 0 accepted")
	}
	since := time.Now().UTC().Truncate(time.Second)
	var wg sync.WaitGroup
	results := make([]uint64, 8)
	for i := range results {
		wg.Go(func() {
			cur, err := c.ClaimSystem("db", index.ClusterSystem{SystemIdentifier: uint64(100 + i), Since: since, Source: fmt.Sprint("claim ", i)})
			if err != nil {
				t.Error(err)
			}
			results[i] = cur.SystemIdentifier
		})
	}
	wg.Wait()
	s, err := c.System("db")
	if err != nil || s.SystemIdentifier < 100 || !s.Since.Equal(since) {
		t.Fatalf("system: %+v %v", s, err)
	}
	for i, r := range results {
		if r != s.SystemIdentifier {
			t.Fatalf("claim %d saw %d, the catalog holds %d", i, r, s.SystemIdentifier)
		}
	}
}

func testReplicationQueue(t *testing.T, c index.Interface) {
	var copies []index.Copy
	for i := range 3 {
		name := fmt.Sprintf("00000001000000000000000%d", i+1)
		cp := []index.Copy{{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: name, Key: WALObj(name, "").Key, Size: 10}}
		_, _, err := c.AddWALCopies("db", WALObj(name, "sha256:"+name), cp)
		must(t, err)
		copies = append(copies, cp...)
	}
	must(t, c.Enqueue([]index.Copy{{Backend: "other", Cluster: "db2", Kind: index.CopyWAL, Name: "000000010000000000000001", Key: "db2/x", Size: 5}}))
	p, err := c.Pending("replica", 2)
	if err != nil || len(p) != 2 || p[0].Name != copies[0].Name || p[1].Name != copies[1].Name || p[0].Backend != "replica" || p[0].Seq >= p[1].Seq || p[0].Enqueued.IsZero() {
		t.Fatalf("pending: %+v %v", p, err)
	}
	qs, err := c.QueueStats("replica")
	if err != nil || qs.Count != 3 || qs.Bytes != 30 || qs.ByCluster["db"].Count != 3 || qs.Oldest.IsZero() {
		t.Fatalf("stats: %+v %v", qs, err)
	}
	next := time.Now().Add(time.Minute).UTC()
	must(t, c.RetryCopy(p[0], next, "store down"))
	p2, err := c.Pending("replica", 1)
	if err != nil || p2[0].Attempts != 1 || p2[0].LastError != "store down" || !p2[0].NextAttempt.Equal(next) {
		t.Fatalf("after retry: %+v %v", p2, err)
	}
	if qs, _ := c.QueueStats("replica"); qs.LastError != "store down" {
		t.Fatalf("stats miss the error: %+v", qs)
	}
	must(t, c.CompleteCopy(p2[0]))
	if o, err := c.WAL("db", copies[0].Name); err != nil || !slices.Equal(o.Holders(), []string{"local", "replica"}) {
		t.Fatalf("holder not recorded: %+v %v", o, err)
	}
	must(t, c.RetryCopy(p2[0], next, "late")) // completed meanwhile: nothing to do
	must(t, c.CancelCopies([]string{copies[1].Key, "db2/x"}))
	p, err = c.Pending("replica", 0)
	if err != nil || len(p) != 1 || p[0].Name != copies[2].Name {
		t.Fatalf("after cancel: %+v %v", p, err)
	}
	if p, err := c.Pending("other", 0); err != nil || len(p) != 0 {
		t.Fatalf("other backend after cancel: %+v %v", p, err)
	}
	if p, err := c.Pending("nobody", 0); err != nil || len(p) != 0 {
		t.Fatalf("unknown backend: %+v %v", p, err)
	}
}

func testEnqueueRepair(t *testing.T, c index.Interface) {
	cp := index.Copy{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: "000000010000000000000001", Key: "db/wal_005/000000010000000000000001.zst", Size: 10}
	must(t, c.Enqueue([]index.Copy{cp}))
	if added, err := c.EnqueueRepair(cp); err != nil || added {
		t.Fatalf("a queued copy became the repair: added=%v %v", added, err)
	}
	other := cp
	other.Key, other.Name = "db/wal_005/000000010000000000000002.zst", "000000010000000000000002"
	var wg sync.WaitGroup
	var mu sync.Mutex
	adds := 0
	for range 4 {
		wg.Go(func() {
			added, err := c.EnqueueRepair(other)
			if err != nil {
				t.Error(err)
			}
			if added {
				mu.Lock()
				adds++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p, err := c.Pending("replica", 0)
	if err != nil || len(p) != 2 || !p[0].Repair || !p[1].Repair || adds != 1 {
		t.Fatalf("queue %+v, %d adds, %v: want one repair entry per key", p, adds, err)
	}
}

func testCheckFindsDamage(t *testing.T, c index.Interface) {
	if err := c.Check(); err != nil {
		t.Fatalf("empty catalog: %v", err)
	}
	_, _, err := c.AddWAL("db", WALObj("000000010000000000000001", ""))
	must(t, err)
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "incomplete record") {
		t.Fatalf("Check passed a record without content ID: %v", err)
	}
}

func testWALClaims(t *testing.T, c index.Interface) {
	const name = "000000010000000000000007"
	claim := func(owner string, lease time.Duration) bool {
		t.Helper()
		ok, err := c.ClaimWAL("db", name, owner, lease)
		must(t, err)
		return ok
	}
	if !claim("a", time.Minute) {
		t.Fatal("a fresh name was not claimed")
	}
	if claim("b", time.Minute) {
		t.Fatal("a live claim of another owner was taken")
	}
	if !claim("a", time.Minute) {
		t.Fatal("the owner could not renew its claim")
	}
	if ok, err := c.ClaimWAL("other", name, "b", time.Minute); err != nil || !ok {
		t.Fatalf("the same name of another cluster: %v %v", ok, err)
	}
	must(t, c.ReleaseWAL("db", name, "b")) // not b's: stays
	if claim("b", time.Minute) {
		t.Fatal("another owner released a's claim")
	}
	must(t, c.ReleaseWAL("db", name, "a"))
	if !claim("b", 300*time.Millisecond) {
		t.Fatal("a released name was not claimable")
	}
	// An expired claim (its holder died) is taken over.
	time.Sleep(time.Second)
	if !claim("c", time.Minute) {
		t.Fatal("an expired claim was not taken over")
	}
	// Of many owners racing on one free name, exactly one wins.
	must(t, c.ReleaseWAL("db", name, "c"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Go(func() {
			ok, err := c.ClaimWAL("db", name, fmt.Sprint("racer ", i), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d owners won the race, want 1", wins)
	}
}

func testLeases(t *testing.T, c index.Interface) {
	lease := func(duty, owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := c.TryLease(duty, owner, ttl)
		must(t, err)
		return ok
	}
	if !lease("lifecycle", "a", 500*time.Millisecond) || !lease("lifecycle", "a", 500*time.Millisecond) {
		t.Fatal("the first owner could not take and renew the lease")
	}
	if lease("lifecycle", "b", time.Minute) {
		t.Fatal("a live lease of another owner was taken")
	}
	if !lease("janitor", "b", time.Minute) {
		t.Fatal("another duty's lease was not free")
	}
	// The holder stops renewing (it died): the lease is taken over.
	time.Sleep(time.Second)
	if !lease("lifecycle", "b", time.Minute) {
		t.Fatal("an expired lease was not taken over")
	}
	if lease("lifecycle", "a", time.Minute) {
		t.Fatal("the old holder took its lease back from a live one")
	}
}

// claimNames claims for owner and returns the names (WAL name, or
// backup name and file/"sentinel") of what it got, in order.
func claimNames(t *testing.T, c index.Interface, owner string, limit int, lease time.Duration) ([]index.Copy, []string, time.Time) {
	t.Helper()
	got, next, err := c.ClaimCopies("replica", owner, limit, lease)
	if err != nil {
		t.Fatalf("claim by %s: %v", owner, err)
	}
	var names []string
	for i, cp := range got {
		if cp.ClaimedBy != owner || cp.ClaimedUntil.IsZero() || cp.Backend != "replica" {
			t.Fatalf("claim by %s returned %+v", owner, cp)
		}
		if i > 0 && got[i-1].Seq >= cp.Seq {
			t.Fatalf("claim by %s out of queue order: %+v", owner, got)
		}
		names = append(names, copyName(cp))
	}
	return got, names, next
}

func copyName(cp index.Copy) string {
	switch cp.Kind {
	case index.CopySentinel:
		return cp.Name + "/sentinel"
	case index.CopyBackupFile:
		return cp.Name + "/" + cp.File
	}
	return cp.Name
}

// claimQueue queues, on backend "replica": WAL w1 (with its record),
// backup b1's parts p1 and p2 and sentinel, backup b2's part q1 and
// sentinel, WAL w2.
func claimQueue(t *testing.T, c index.Interface) {
	w1 := "000000010000000000000001"
	cp := index.Copy{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: w1, Key: WALObj(w1, "").Key, Size: 10}
	_, _, err := c.AddWALCopies("db", WALObj(w1, "sha256:"+w1), []index.Copy{cp})
	must(t, err)
	part := func(backup, file string) index.Copy {
		return index.Copy{Backend: "replica", Cluster: "db", Kind: index.CopyBackupFile, Name: backup, File: file, Key: "db/basebackups_005/" + backup + "/" + file, Size: 10}
	}
	sentinel := func(backup string) index.Copy {
		return index.Copy{Backend: "replica", Cluster: "db", Kind: index.CopySentinel, Name: backup, Key: "db/basebackups_005/" + backup + "_backup_stop_sentinel.json", Size: 1}
	}
	w2 := "000000010000000000000002"
	must(t, c.Enqueue([]index.Copy{part("b1", "p1"), part("b1", "p2"), sentinel("b1"), part("b2", "q1"), sentinel("b2"),
		{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: w2, Key: WALObj(w2, "").Key, Size: 10}}))
}

// Two owners claim disjoint entries; a sentinel is claimable only when no
// earlier entry of its backup and no earlier sentinel is queued; a
// non-owner's completion or retry leaves the owner's claim alone.
func testCopyClaims(t *testing.T, c index.Interface) {
	claimQueue(t, c)
	a, names, next := claimNames(t, c, "gw-a", 2, time.Minute)
	if !slices.Equal(names, []string{"000000010000000000000001", "b1/p1"}) || !next.IsZero() {
		t.Fatalf("gw-a claimed %v (next %v): want the first two, and no time (a full claim)", names, next)
	}
	b, names, next := claimNames(t, c, "gw-b", 10, time.Minute)
	if !slices.Equal(names, []string{"b1/p2", "b2/q1", "000000010000000000000002"}) {
		t.Fatalf("gw-b claimed %v: want the entries gw-a does not hold, without the sentinels", names)
	}
	if next.Before(a[0].ClaimedUntil.Add(-time.Second)) || next.After(a[0].ClaimedUntil.Add(time.Second)) {
		t.Fatalf("next claimable at %v, want when gw-a's claims end (%v)", next, a[0].ClaimedUntil)
	}
	if _, names, _ := claimNames(t, c, "gw-c", 10, time.Minute); len(names) != 0 {
		t.Fatalf("gw-c claimed %v while every entry is held or waits", names)
	}
	p, err := c.Pending("replica", 0)
	if err != nil || len(p) != 7 || p[0].ClaimedBy != "gw-a" || p[2].ClaimedBy != "gw-b" || p[3].ClaimedBy != "" {
		t.Fatalf("pending with claims: %+v %v", p, err)
	}

	// gw-b completes and retries gw-a's entries: the claims stay gw-a's.
	stray := a[0]
	stray.ClaimedBy = "gw-b"
	must(t, c.CompleteCopy(stray))
	if o, err := c.WAL("db", a[0].Name); err != nil || !slices.Contains(o.Holders(), "replica") {
		t.Fatalf("a copy that was made is recorded all the same: %+v %v", o, err)
	}
	stray = a[1]
	stray.ClaimedBy = "gw-b"
	must(t, c.RetryCopy(stray, time.Now().Add(time.Hour), "not mine"))
	p, err = c.Pending("replica", 2)
	if err != nil || len(p) != 2 || p[0].Seq != a[0].Seq || p[0].ClaimedBy != "gw-a" || p[1].ClaimedBy != "gw-a" || p[1].Attempts != 0 {
		t.Fatalf("a non-owner's completion and retry changed gw-a's entries: %+v %v", p, err)
	}

	// b1's parts done but p1 failed (retried later): its sentinel and
	// every later one wait.
	must(t, c.CompleteCopy(a[0]))
	must(t, c.CompleteCopy(b[0]))
	must(t, c.CompleteCopy(b[1]))
	retryAt := time.Now().Add(time.Hour).UTC()
	must(t, c.RetryCopy(a[1], retryAt, "replica down"))
	_, names, next = claimNames(t, c, "gw-c", 10, time.Minute)
	if want := b[2].ClaimedUntil; len(names) != 0 || next.Before(want.Add(-time.Second)) || next.After(want.Add(time.Second)) {
		t.Fatalf("gw-c claimed %v (next %v) while b1's part waits until %v: want next when gw-b's claim on w2 ends (%v)", names, next, retryAt, want)
	}
	p, err = c.Pending("replica", 1)
	if err != nil || p[0].Seq != a[1].Seq || p[0].ClaimedBy != "" || p[0].Attempts != 1 {
		t.Fatalf("a retry drops the owner's claim: %+v %v", p, err)
	}

	// p1 done: b1's sentinel comes, b2's still waits for it; gw-b's own
	// claim on w2 is claimed again.
	must(t, c.CompleteCopy(p[0]))
	s1, names, _ := claimNames(t, c, "gw-b", 10, time.Minute)
	if !slices.Equal(names, []string{"b1/sentinel", "000000010000000000000002"}) {
		t.Fatalf("gw-b claimed %v, want b1's sentinel and its own w2", names)
	}
	must(t, c.CompleteCopy(s1[0]))
	must(t, c.ReleaseCopies("gw-b", s1[1:]))
	_, names, _ = claimNames(t, c, "gw-a", 10, time.Minute)
	if !slices.Equal(names, []string{"b2/sentinel", "000000010000000000000002"}) {
		t.Fatalf("gw-a claimed %v, want b2's sentinel and the released w2", names)
	}
}

// An expired claim is taken over; a renewed one is not; the former
// owner's completion then leaves the new owner's claim.
func testCopyClaimsTakeover(t *testing.T, c index.Interface) {
	claimQueue(t, c)
	const short = 300 * time.Millisecond
	a, names, _ := claimNames(t, c, "gw-a", 2, short)
	if len(names) != 2 {
		t.Fatalf("gw-a claimed %v", names)
	}
	b, _, _ := claimNames(t, c, "gw-b", 1, short)
	must(t, c.RenewCopies("gw-b", b, time.Minute))
	must(t, c.RenewCopies("gw-c", a, time.Minute)) // not gw-c's: no effect
	time.Sleep(2 * short)
	taken, names, _ := claimNames(t, c, "gw-c", 10, time.Minute)
	if !slices.Contains(names, a[0].Name) || !slices.Contains(names, "b1/p1") || slices.Contains(names, "b1/p2") {
		t.Fatalf("gw-c claimed %v: want gw-a's expired entries, not gw-b's renewed one", names)
	}
	must(t, c.CompleteCopy(a[0])) // gw-a wakes up late
	must(t, c.RetryCopy(a[1], time.Now().Add(time.Hour), "late"))
	p, err := c.Pending("replica", 2)
	if err != nil || len(p) != 2 || p[0].ClaimedBy != "gw-c" || p[1].ClaimedBy != "gw-c" || p[1].Attempts != 0 {
		t.Fatalf("the former owner changed the entries gw-c took over: %+v %v", p, err)
	}
	must(t, c.CompleteCopy(taken[0]))
	if p, _ := c.Pending("replica", 1); p[0].Seq == taken[0].Seq {
		t.Fatalf("the owner's completion left the entry queued: %+v", p)
	}
}

// Owners claiming at once never hold the same entry, and between them
// they copy every entry once.
func testConcurrentCopyClaims(t *testing.T, c index.Interface) {
	const entries, owners = 60, 6
	var copies []index.Copy
	for i := range entries {
		name := fmt.Sprintf("0000000100000000000000%02X", i)
		copies = append(copies, index.Copy{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: name, Key: "db/" + name, Size: 1})
	}
	must(t, c.Enqueue(copies))
	var mu sync.Mutex
	done := map[string]string{} // name -> owner
	var wg sync.WaitGroup
	for o := range owners {
		owner := fmt.Sprintf("gw-%d", o)
		wg.Go(func() {
			for {
				got, _, err := c.ClaimCopies("replica", owner, 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, cp := range got {
					mu.Lock()
					if prev, ok := done[cp.Name]; ok {
						t.Errorf("%s claimed %s, which %s copied already", owner, cp.Name, prev)
					}
					done[cp.Name] = owner
					mu.Unlock()
					if err := c.CompleteCopy(cp); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(done) != entries {
		t.Fatalf("%d of %d entries copied", len(done), entries)
	}
	if p, next, err := c.ClaimCopies("replica", "gw-0", 10, time.Minute); err != nil || len(p) != 0 || !next.IsZero() {
		t.Fatalf("empty queue: %+v %v %v", p, next, err)
	}
}

func testGateways(t *testing.T, c index.Interface) {
	const long = time.Hour
	list := func() map[string]index.GatewayRecord {
		t.Helper()
		gs, err := c.Gateways()
		must(t, err)
		m := map[string]index.GatewayRecord{}
		var order []string
		for _, g := range gs {
			m[g.ID] = g
			order = append(order, g.ID)
		}
		if !slices.IsSorted(order) {
			t.Fatalf("gateways not listed by host, address, id: %v", order)
		}
		return m
	}
	if gs := list(); len(gs) != 0 {
		t.Fatalf("a new catalog lists gateways: %v", gs)
	}
	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	a := index.GatewayRecord{ID: "a-1", Host: "a", Address: "a:7480", Version: "v1", PID: 11, Started: started, Ready: true}
	b := index.GatewayRecord{ID: "b-1", Host: "b", Address: "b:7480", Version: "v2", PID: 22, Started: started}
	must(t, c.Heartbeat(a, long, long))
	must(t, c.Heartbeat(b, long, long))
	got := list()
	if len(got) != 2 {
		t.Fatalf("after two heartbeats: %v", got)
	}
	ga := got["a-1"]
	if ga.Host != "a" || ga.Address != "a:7480" || ga.Version != "v1" || ga.PID != 11 || !ga.Started.Equal(started) ||
		!ga.Ready || ga.Stopped || ga.LastSeen.IsZero() || ga.Since < 0 || ga.Since > 5*time.Second {
		t.Fatalf("gateway a read back as %+v", ga)
	}
	if gb := got["b-1"]; gb.Ready || gb.Version != "v2" {
		t.Fatalf("gateway b read back as %+v", gb)
	}
	// Time passes by the catalog's clock; a heartbeat brings it back.
	time.Sleep(300 * time.Millisecond)
	if s := list()["a-1"].Since; s < 250*time.Millisecond {
		t.Fatalf("300 ms after its heartbeat gateway a was seen %v ago", s)
	}
	a.Ready = false
	beat := time.Now()
	must(t, c.Heartbeat(a, long, long))
	ga2 := list()["a-1"]
	// Seen no longer ago than the heartbeat call began (the catalog's
	// clock may be a few milliseconds off this process's).
	if ga2.Since > time.Since(beat)+50*time.Millisecond || !ga2.LastSeen.After(ga.LastSeen) || ga2.Ready {
		t.Fatalf("a second heartbeat did not update the row: before %+v, after %+v", ga, ga2)
	}
	// A clean stop is recorded as such.
	a.Stopped = true
	must(t, c.Heartbeat(a, long, long))
	if g := list()["a-1"]; !g.Stopped {
		t.Fatalf("the stopping heartbeat was not recorded: %+v", g)
	}
	// b's successor on the same host and address: a live b stays...
	b2 := b
	b2.ID, b2.PID = "b-2", 23
	must(t, c.Heartbeat(b2, time.Second, long))
	if got := list(); len(got) != 3 {
		t.Fatalf("a successor removed a live gateway: %v", got)
	}
	// ...a b that stopped beating is replaced; a on another host stays.
	time.Sleep(300 * time.Millisecond)
	must(t, c.Heartbeat(b2, 200*time.Millisecond, long))
	got = list()
	if _, ok := got["b-1"]; ok || len(got) != 2 {
		t.Fatalf("the successor on b:7480 did not replace its dead predecessor: %v", got)
	}
	// Rows not seen for longer than prune go, the writer's own stays.
	time.Sleep(300 * time.Millisecond)
	must(t, c.Heartbeat(b2, long, 200*time.Millisecond))
	got = list()
	if _, ok := got["b-2"]; !ok || len(got) != 1 {
		t.Fatalf("pruning left %v, want only b-2", got)
	}
}
