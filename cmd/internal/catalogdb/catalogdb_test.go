package catalogdb

import (
	"context"
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
