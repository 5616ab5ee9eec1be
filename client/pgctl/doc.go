// Package pgctl runs a PostgreSQL server on this host for walgate: the OS
// account it runs as (runuser when we are root, since PostgreSQL refuses
// root), its process (is the postmaster alive, a free port, its log), the
// settings written into a data directory before a start
// (postgresql.auto.conf, recovery.signal) and the state of archive
// recovery as the server reports it.
//
// It is used by walgate-client's restore drill and backup-fetch, and by
// the test harness (cmd/internal/pgtest), so that both start, watch and
// configure servers the same way.
//
// It must never talk to the gateway, decode archive objects or import
// another walgate package: it knows PostgreSQL, not the archive. It never
// removes a data directory and never stops a server it was not asked to.
package pgctl
