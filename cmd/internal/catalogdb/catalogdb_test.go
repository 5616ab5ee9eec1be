package catalogdb

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/catalogtest"
	"github.com/walgate/walgate/index/pgcatalog"
)

func open(t *testing.T, dsn string) *pgcatalog.Catalog {
	t.Helper()
	c, err := pgcatalog.Open(context.Background(), dsn, pgcatalog.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// databaseAt brings the empty database dsn to schema version and returns
// a session on it (closed at cleanup), to fill it as that version left it.
func databaseAt(t *testing.T, dsn string, version int) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if err := pgcatalog.MigrateTo(ctx, conn, version); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestPostgresCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	srv := NewServer(t)
	t.Run("Conformance", func(t *testing.T) {
		catalogtest.Run(t, func(t *testing.T) index.Interface { return open(t, srv.NewDatabase(t, "")) })
	})
	t.Run("WrongPassword", func(t *testing.T) {
		dsn := srv.NewDatabase(t, "")
		const wrong = "not-the-Pa55word"
		bad := strings.Replace(dsn, Password, wrong, 1)
		_, err := pgcatalog.Open(context.Background(), bad, pgcatalog.Options{})
		if err == nil {
			t.Fatal("a wrong password was accepted")
		}
		if msg := err.Error(); strings.Contains(msg, wrong) || strings.Contains(msg, Password) || !strings.Contains(msg, "password authentication failed") {
			t.Fatalf("error %q: want the reason without the password", msg)
		}
	})
	t.Run("MigrationFromVersion1", func(t *testing.T) {
		// A database as walgate left it before the trends table (schema
		// version 1) and holding a token: opening it adds the table and
		// keeps the records.
		dsn := srv.NewDatabase(t, "")
		ctx := context.Background()
		conn := databaseAt(t, dsn, 1)
		h := sha256.Sum256([]byte("secret"))
		rec, err := json.Marshal(index.Token{ID: "t1", Cluster: "db", Scopes: []index.Scope{index.ScopePush}, Created: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO walgate.clusters (name, created) VALUES ('db', now())`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO walgate.tokens (hash, id, cluster, record) VALUES ($1, 't1', 'db', $2)`, h[:], rec); err != nil {
			t.Fatal(err)
		}
		c := open(t, dsn)
		defer c.Close()
		var version int
		if err := c.Pool().QueryRow(ctx, `SELECT max(version) FROM walgate.schema_version`).Scan(&version); err != nil || version != pgcatalog.SchemaVersion || version < 2 {
			t.Fatalf("schema version %d (%v) after migrating from 1, want %d", version, err, pgcatalog.SchemaVersion)
		}
		now := time.Now()
		if err := c.AddTrends(map[string]map[time.Time]index.TrendCounts{"db": {now: {Requests: 3}}}, now); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Trends("db", now); err != nil || len(got) != 1 || got[0].Requests != 3 {
			t.Fatalf("trends after migrating: %+v %v", got, err)
		}
		if tok, err := c.LookupToken(h); err != nil || tok.ID != "t1" {
			t.Fatalf("token after migrating: %+v %v", tok, err)
		}
		if err := c.Heartbeat(index.GatewayRecord{ID: "g1", Host: "h", Address: "h:7480", Started: now}, time.Minute, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Gateways(); err != nil || len(got) != 1 || got[0].ID != "g1" {
			t.Fatalf("gateways after migrating: %+v %v", got, err)
		}
		if err := c.Check(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MigrationToReplicationClaims", func(t *testing.T) {
		// A database from before the claims on replication entries,
		// holding a queue: opening it fills the new columns from the
		// records, and the claims follow the queue's order and retries.
		dsn := srv.NewDatabase(t, "")
		ctx := context.Background()
		conn := databaseAt(t, dsn, pgcatalog.ReplicationClaimsVersion-1)
		later := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		queue := []index.Copy{
			{Backend: "replica", Cluster: "db", Kind: index.CopyBackupFile, Name: "b1", File: "p1", Key: "db/b1/p1"},
			{Backend: "replica", Cluster: "db", Kind: index.CopySentinel, Name: "b1", Key: "db/b1_sentinel"},
			{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: "000000010000000000000001", Key: "db/w1", NextAttempt: later, Attempts: 2},
			{Backend: "replica", Cluster: "db", Kind: index.CopyWAL, Name: "000000010000000000000002", Key: "db/w2"},
		}
		for _, cp := range queue {
			rec, err := json.Marshal(cp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `INSERT INTO walgate.replication (backend, key, record) VALUES ($1, $2, $3)`, cp.Backend, cp.Key, rec); err != nil {
				t.Fatal(err)
			}
		}
		c := open(t, dsn)
		defer c.Close()
		var version int
		if err := conn.QueryRow(ctx, `SELECT max(version) FROM walgate.schema_version`).Scan(&version); err != nil || version != pgcatalog.SchemaVersion {
			t.Fatalf("schema version %d (%v), want %d", version, err, pgcatalog.SchemaVersion)
		}
		var got []string
		rows, err := conn.Query(ctx, `SELECT kind || ' ' || coalesce(backup, '-') || ' ' || coalesce(next_attempt::text, '-') FROM walgate.replication ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		var at string
		if err := conn.QueryRow(ctx, `SELECT $1::timestamptz::text`, later).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if want := []string{"backup-file db/b1 -", "sentinel db/b1 -", "wal - " + at, "wal - -"}; !slices.Equal(got, want) {
			t.Fatalf("columns after migrating: %q, want %q", got, want)
		}
		claimed, _, err := c.ClaimCopies("replica", "gw-a", 10, time.Minute)
		if err != nil || len(claimed) != 2 || claimed[0].File != "p1" || claimed[1].Name != "000000010000000000000002" || claimed[1].ClaimedBy != "gw-a" {
			t.Fatalf("claimed %+v %v: want the part and the due WAL, not the sentinel behind the part", claimed, err)
		}
		if err := c.Check(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("WALListingsInPages", func(t *testing.T) {
		// Listings read a cluster's WAL a page at a time (256 rows, then
		// 1,024, 4,096, ...): across page ends, from a name inside a
		// page, with a page ending exactly at the last row, and stopped
		// early, they list what one query would.
		c := open(t, srv.NewDatabase(t, ""))
		defer c.Close()
		seg := func(i int) string { return fmt.Sprintf("%08X%08X%08X", 1, i/256, i%256) }
		add := func(cluster string, n int) []string {
			var objs []index.WALObject
			var names []string
			for i := 1; i <= n; i++ {
				o := catalogtest.WALObj(seg(i), "sha256:"+seg(i))
				o.Key = cluster + "/wal_005/" + o.Name + ".zst"
				objs = append(objs, o)
				names = append(names, o.Name)
			}
			if err := c.AddWALBatch(cluster, objs); err != nil {
				t.Fatal(err)
			}
			return names
		}
		for cluster, n := range map[string]int{"db": 1281, "edge": 256 + 1024, "small": 3} {
			names := add(cluster, n)
			var got, gotBrief []string
			if err := c.ListWAL(cluster, "", func(o index.WALObject) error { got = append(got, o.Name); return nil }); err != nil {
				t.Fatal(err)
			}
			if err := c.ListWALBrief(cluster, func(name string, w index.WALBrief) error {
				if w.Key != cluster+"/wal_005/"+name+".zst" {
					t.Errorf("%s/%s: brief key %q", cluster, name, w.Key)
				}
				gotBrief = append(gotBrief, name)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, names) || !slices.Equal(gotBrief, names) {
				t.Fatalf("%s: ListWAL %d names, ListWALBrief %d, want %d in order", cluster, len(got), len(gotBrief), len(names))
			}
			if n > 300 {
				got = nil
				if err := c.ListWAL(cluster, names[300], func(o index.WALObject) error { got = append(got, o.Name); return nil }); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, names[300:]) {
					t.Fatalf("%s from %s: %d names, want %d", cluster, names[300], len(got), len(names)-300)
				}
			}
		}
		stop := errors.New("stop")
		seen := 0
		if err := c.ListWALBrief("db", func(string, index.WALBrief) error { seen++; return stop }); err != stop || seen != 1 {
			t.Fatalf("a listing stopped by its caller: %v after %d records, want the caller's error after 1", err, seen)
		}
		if size, err := c.SegmentSize("db"); err != nil || size != 16<<20 {
			t.Fatalf("segment size %d, %v", size, err)
		}
		// With the visibility map set (autovacuum does it on a table that
		// is mostly inserted into), the brief records are read from their
		// index alone.
		ctx := context.Background()
		if _, err := c.Pool().Exec(ctx, `VACUUM (ANALYZE) walgate.wal`); err != nil {
			t.Fatal(err)
		}
		// (A table this small is cheaper to read whole: the planner is
		// told not to, to see which index it takes.)
		tx, err := c.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off`); err != nil {
			t.Fatal(err)
		}
		var plan []string
		rows, err := tx.Query(ctx, `EXPLAIN SELECT name, brief FROM walgate.wal WHERE cluster = 'db' AND name > '' ORDER BY name LIMIT 16384`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(plan, "\n"); !strings.Contains(p, "Index Only Scan using wal_brief") {
			t.Fatalf("a page of brief records is not an index-only scan:\n%s", p)
		}
	})
	t.Run("Generations", func(t *testing.T) {
		// Every cluster's generation in one query, as Generation reads
		// each.
		c := open(t, srv.NewDatabase(t, ""))
		defer c.Close()
		for _, n := range []string{"a", "b", "c"} {
			if err := c.AddWALBatch(n, nil); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := c.AddDrill("b", index.DrillRecord{Received: time.Now().UTC(), Passed: true, Report: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		gens, err := c.Generations()
		if err != nil {
			t.Fatal(err)
		}
		if len(gens) != 3 || gens["b"] == 0 {
			t.Fatalf("generations %v", gens)
		}
		for _, n := range []string{"a", "b", "c", "unknown"} {
			if g := c.Generation(n); g != gens[n] {
				t.Errorf("%s: Generation %d, Generations %d", n, g, gens[n])
			}
		}
	})
	t.Run("Migration", func(t *testing.T) {
		dsn := srv.NewDatabase(t, "")
		// Gateways starting together: one migrates, the others wait for
		// its advisory lock and find the schema done.
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				c, err := pgcatalog.Open(context.Background(), dsn, pgcatalog.Options{})
				if err == nil {
					c.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		c := open(t, dsn)
		var versions int
		if err := c.Pool().QueryRow(context.Background(), `SELECT count(*) FROM walgate.schema_version`).Scan(&versions); err != nil || versions != pgcatalog.SchemaVersion {
			t.Fatalf("schema_version has %d rows (%v), want %d", versions, err, pgcatalog.SchemaVersion)
		}
		// A newer walgate migrated the database: this one refuses it.
		if _, err := c.Pool().Exec(context.Background(), `INSERT INTO walgate.schema_version (version) VALUES ($1)`, pgcatalog.SchemaVersion+1); err != nil {
			t.Fatal(err)
		}
		c.Close()
		_, err := pgcatalog.Open(context.Background(), dsn, pgcatalog.Options{})
		if !errors.Is(err, index.ErrSchema) || !strings.Contains(err.Error(), "newer walgate") {
			t.Fatalf("newer schema: %v", err)
		}
	})
}
