package catalogdb

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/catalogtest"
	"github.com/walgate/walgate/index/pgcatalog"
)

// The bulk loads of index migrate: insert-if-absent per record, a second
// load adds nothing, a dry load writes nothing, records without a key
// (drills, queued copies) are loaded as a multiset in their order, and a
// record that differs is a Conflict that writes nothing of its call.
func TestBulkLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	dsn := srv.NewDatabase(t, "")
	c := open(t, dsn)
	defer c.Close()
	ctx := context.Background()
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	sys := index.ClusterSystem{SystemIdentifier: 99, Since: created, Source: "WAL x"}
	conflict := func(err error, want string) {
		t.Helper()
		var cf *pgcatalog.Conflict
		if !errors.As(err, &cf) || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want a conflict naming %q", err, want)
		}
	}

	// A dry load writes nothing.
	if added, err := c.LoadCluster(ctx, index.Cluster{Name: "db", Created: created}, &sys, true); err != nil || !added {
		t.Fatalf("dry LoadCluster: %v %v", added, err)
	}
	if cl, err := c.Clusters(); err != nil || len(cl) != 0 {
		t.Fatalf("a dry load wrote %v %v", cl, err)
	}
	for range 2 {
		if _, err := c.LoadCluster(ctx, index.Cluster{Name: "db", Created: created}, &sys, false); err != nil {
			t.Fatal(err)
		}
	}
	if cl, err := c.Clusters(); err != nil || len(cl) != 1 || !cl[0].Created.Equal(created) {
		t.Fatalf("clusters %v %v: want db created %v", cl, err, created)
	}
	other := sys
	other.SystemIdentifier = 100
	_, err := c.LoadCluster(ctx, index.Cluster{Name: "db"}, &other, false)
	conflict(err, "system identifier")

	// Running gateways hear of loaded WAL records as of pushes.
	listener, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN walgate_wal"); err != nil {
		t.Fatal(err)
	}
	objs := []index.WALObject{catalogtest.WALObj("000000010000000000000001", "a"), catalogtest.WALObj("000000010000000000000002", "b")}
	if n, err := c.LoadWAL(ctx, "db", objs[:1], false); err != nil || n != 1 {
		t.Fatalf("LoadWAL: %d %v", n, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	note, err := listener.WaitForNotification(wctx)
	cancel()
	if err != nil || !strings.HasSuffix(note.Payload, " db/000000010000000000000001") {
		t.Fatalf("notification of a loaded WAL record: %+v %v", note, err)
	}
	if n, err := c.LoadWAL(ctx, "db", objs, false); err != nil || n != 1 {
		t.Fatalf("LoadWAL again with one more: %d added, %v; want 1", n, err)
	}
	changed := catalogtest.WALObj("000000010000000000000002", "other content")
	changed.SHA256 = strings.Repeat("c", 64)
	third := catalogtest.WALObj("000000010000000000000003", "c")
	_, err = c.LoadWAL(ctx, "db", []index.WALObject{third, changed}, false)
	conflict(err, "WAL 000000010000000000000002")
	if _, err := c.WAL("db", third.Name); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a refused batch wrote %s: %v", third.Name, err)
	}

	b := index.Backup{Name: "base_000000010000000000000002", State: index.BackupCommitted, SentinelKey: "db/basebackups_005/s.json",
		Files: map[string]index.BackupFile{"f": {Key: "k", SHA256: strings.Repeat("a", 64)}}}
	for range 2 {
		if _, err := c.LoadBackups(ctx, "db", []index.Backup{b}, false); err != nil {
			t.Fatal(err)
		}
	}
	b2 := b
	b2.Files = map[string]index.BackupFile{"f": {Key: "k", SHA256: strings.Repeat("b", 64)}}
	_, err = c.LoadBackups(ctx, "db", []index.Backup{b2}, false)
	conflict(err, "backup base_000000010000000000000002")

	d1 := index.DrillRecord{Received: created, Passed: true, Report: json.RawMessage(`{"a":1}`)}
	d2 := index.DrillRecord{Received: created.Add(time.Hour), Report: json.RawMessage(`{"b":2}`)}
	if n, err := c.LoadDrills(ctx, "db", []index.DrillRecord{d1, d1, d2}, false); err != nil || n != 3 {
		t.Fatalf("LoadDrills: %d %v", n, err)
	}
	if n, err := c.LoadDrills(ctx, "db", []index.DrillRecord{d1, d1, d2}, false); err != nil || n != 0 {
		t.Fatalf("LoadDrills again: %d %v, want 0", n, err)
	}
	if got, err := c.Drills("db", 0); err != nil || len(got) != 3 || !got[2].Received.Equal(d2.Received) {
		t.Fatalf("drills %+v %v", got, err)
	}

	h1, h2 := sha256.Sum256([]byte("one")), sha256.Sum256([]byte("two"))
	tok := index.Token{ID: "t1", Cluster: "db", Scopes: []index.Scope{index.ScopePush}, Created: created}
	for range 2 {
		if _, err := c.LoadTokens(ctx, map[[32]byte]index.Token{h1: tok}, false); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.LoadTokens(ctx, map[[32]byte]index.Token{h2: tok}, false)
	conflict(err, "another secret")
	renamed := tok
	renamed.ID = "t2"
	_, err = c.LoadTokens(ctx, map[[32]byte]index.Token{h1: renamed}, false)
	conflict(err, "under the token ID t1")

	cp := func(name string) index.Copy {
		return index.Copy{Cluster: "db", Kind: index.CopyWAL, Name: name, Key: "db/wal_005/" + name, Enqueued: created}
	}
	copies := []index.Copy{cp("3"), cp("1"), cp("1"), cp("2")}
	if n, err := c.LoadCopies(ctx, "far", copies, false); err != nil || n != 4 {
		t.Fatalf("LoadCopies: %d %v", n, err)
	}
	if n, err := c.LoadCopies(ctx, "far", copies, false); err != nil || n != 0 {
		t.Fatalf("LoadCopies again: %d %v, want 0", n, err)
	}
	q, err := c.Pending("far", 0)
	if err != nil || len(q) != 4 || q[0].Name != "3" || q[1].Name != "1" || q[2].Name != "1" || q[3].Name != "2" {
		t.Fatalf("queue %+v %v: want 3 1 1 2", q, err)
	}
	qc, err := c.QueueCounts(ctx)
	if err != nil || qc["db"]["far"] != 4 {
		t.Fatalf("queue counts %v %v", qc, err)
	}

	tb := []index.TrendBucket{{Hour: created, TrendCounts: index.TrendCounts{Requests: 5}}}
	for i := range 2 {
		if n, err := c.LoadTrends(ctx, "db", tb, false); err != nil || n != 1-i {
			t.Fatalf("LoadTrends run %d: %d %v", i, n, err)
		}
	}
	if got, err := c.Trends("db", created); err != nil || len(got) != 1 || got[0].Requests != 5 {
		t.Fatalf("trends %+v %v: a second load must not add again", got, err)
	}

	n, err := c.CountsOf(ctx, "db")
	if err != nil || !n.Known || n.System != 99 || n.WAL != 2 || n.Briefs != 2 || n.Backups[index.BackupCommitted] != 1 ||
		n.Drills != 3 || n.Tokens != 1 || n.Trends != 1 {
		t.Fatalf("counts %+v %v", n, err)
	}

	// One load at a time.
	release, ok, err := c.LockLoad(ctx)
	if err != nil || !ok {
		t.Fatalf("LockLoad: %v %v", ok, err)
	}
	c2 := open(t, dsn)
	defer c2.Close()
	if _, ok, err := c2.LockLoad(ctx); err != nil || ok {
		t.Fatalf("a second LockLoad: %v %v, want refused", ok, err)
	}
	release()
	if rel, ok, err := c2.LockLoad(ctx); err != nil || !ok {
		t.Fatalf("LockLoad after release: %v %v", ok, err)
	} else {
		rel()
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}
