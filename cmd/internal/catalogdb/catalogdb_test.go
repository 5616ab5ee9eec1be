package catalogdb

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

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
		c := open(t, dsn)
		ctx := context.Background()
		h := sha256.Sum256([]byte("secret"))
		if err := c.AddToken(h, index.Token{ID: "t1", Cluster: "db", Scopes: []index.Scope{index.ScopePush}, Created: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Pool().Exec(ctx, `DROP TABLE walgate.trends; DROP TABLE walgate.gateways; DELETE FROM walgate.schema_version WHERE version >= 2`); err != nil {
			t.Fatal(err)
		}
		c.Close()
		c = open(t, dsn)
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
