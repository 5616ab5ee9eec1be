// Package pgtest runs real, throwaway PostgreSQL clusters for walgate's
// tests and demo programs: PostgreSQL 15 (Debian's) by default, or any
// major of Majors (Options.Major) from the server builds .ci/install-deps.sh
// unpacks into the tools cache (ServerFor). Client programs are always
// PostgreSQL 15's; the npm builds have none, and libpq speaks to every major.
//
// What it owns: creating a cluster with initdb in a temporary directory,
// starting and stopping it with pg_ctl, talking to it (pgx, psql, pgbench),
// taking plain-format base backups with pg_basebackup, building a new
// cluster that recovers from such a backup through restore_command, and the
// checks the archive tests need: archiver statistics, "wait until this WAL
// segment is archived", and per-table content checksums.
//
// What it must never do: touch a PostgreSQL cluster it did not create (the
// Debian "main" cluster on 5432 included), listen anywhere but 127.0.0.1,
// skip a test when PostgreSQL is missing (tests fail, and say what to
// install), or import any walgate package but client/pgctl: the server
// account, the postmaster check, the log, the recovery settings and the
// recovery state are walgate-client's own (its drill runs servers the same
// way), so a test exercises the code the client ships.
//
// # Users, directories and environment
//
// PostgreSQL refuses to run as root. When the test process is root, every
// server-side command (initdb, pg_ctl, and so the postmaster and its
// archive_command/restore_command) runs as the "postgres" OS user through
// runuser; otherwise it runs as the current user. Client programs (psql,
// pgbench, pg_basebackup, pg_controldata) run as the current user and
// connect over TCP to 127.0.0.1 as the database superuser "postgres" with
// trust authentication.
//
// Every cluster lives in its own directory, Cluster.Dir, owned by the server
// user with mode 0755, created under os.TempDir() (or /tmp when the server
// user cannot reach os.TempDir()). Go's t.TempDir() is often under a
// root-only directory, so anything the server must read, write or execute
// goes in Cluster.Dir (see InstallExecutable) or in a directory made by
// SharedDir.
//
// Server commands run with a clean environment: PATH, HOME (the cluster
// directory), LC_ALL=C and TZ=UTC, then Options.Env. Nothing else of the
// test process leaks in (no PGHOST, no stray WALGATE_* variable), so
// Options.Env is the one way to hand variables to archive_command and
// restore_command, which inherit the postmaster's environment.
//
// # Settings
//
// The helper keeps its settings in DataDir/walgate_pgtest.conf, included at
// the end of postgresql.conf and rewritten whole when the port or the
// settings change. Options.Conf lines come last in that file and so override
// the helper's defaults. ALTER SYSTEM (postgresql.auto.conf) still overrides
// everything, and travels with base backups.
//
// Set PGTEST_KEEP=1 to keep the directories of failed tests for inspection.
package pgtest
