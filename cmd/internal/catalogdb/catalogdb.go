package catalogdb

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// Server is a PostgreSQL server for catalog tests.
type Server struct {
	Cluster *pgtest.Cluster
	n       atomic.Int64
}

// Role and Password are the login role NewServer creates; TCP connections
// as it need the password (scram-sha-256).
const (
	Role     = "walgate_catalog"
	Password = "c4t4log-s3cret-pw"
)

// NewServer starts a PostgreSQL 15 cluster for the test, with a role that
// logs in with Password over TCP, and stops it at cleanup.
func NewServer(t testing.TB) *Server {
	t.Helper()
	cl := pgtest.New(t, pgtest.Options{Major: 15, Conf: []string{"max_connections = 200"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stmts := []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'`, Role, Password),
		// The superuser keeps trust; everyone else gives a password.
		`CREATE TEMP TABLE hba (line text)`,
	}
	conn, err := cl.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO hba VALUES
		('local all all trust'),
		('host all postgres 127.0.0.1/32 trust'),
		('host all all 127.0.0.1/32 scram-sha-256')`); err != nil {
		t.Fatal(err)
	}
	var hbaFile string
	if err := conn.QueryRow(ctx, `SHOW hba_file`).Scan(&hbaFile); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`COPY hba TO '%s'`, hbaFile)); err != nil {
		t.Fatal(err)
	}
	var reloaded bool
	if err := conn.QueryRow(ctx, `SELECT pg_reload_conf()`).Scan(&reloaded); err != nil || !reloaded {
		t.Fatalf("reload: %v", err)
	}
	return &Server{Cluster: cl}
}

// NewDatabase creates an empty database owned by Role and returns a URL
// DSN for it (with the password) on host:port addr, "" meaning the
// server's own address.
func (s *Server) NewDatabase(t testing.TB, addr string) string {
	t.Helper()
	name := fmt.Sprintf("catalog_%d", s.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Cluster.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, Role)); err != nil {
		t.Fatal(err)
	}
	return s.DSN(name, addr, Password)
}

// DSN is the URL DSN of database db as Role with password on addr ("":
// the server's own address).
func (s *Server) DSN(db, addr, password string) string {
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", s.Cluster.Port)
	}
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&connect_timeout=5", Role, password, addr, db)
}
