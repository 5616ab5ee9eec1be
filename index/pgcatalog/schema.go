package pgcatalog

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

// lockMigrate is the advisory lock key held while the schema is created or
// migrated: gateways starting together migrate one at a time.
const lockMigrate int64 = 0x77616c6761746501 // "walgate" 01

// migrations[i] takes the schema from version i to i+1. Append only: a
// released step never changes.
var migrations = []string{
	// 1: the records of index.Catalog, one row each.
	`CREATE TABLE walgate.clusters (
		name    text COLLATE "C" PRIMARY KEY,
		created timestamptz NOT NULL,
		system  bytea,
		gen     bigint NOT NULL DEFAULT 0
	);
	CREATE TABLE walgate.wal (
		cluster text COLLATE "C" NOT NULL REFERENCES walgate.clusters (name),
		name    text COLLATE "C" NOT NULL,
		record  bytea NOT NULL,
		brief   bytea NOT NULL,
		PRIMARY KEY (cluster, name)
	);
	CREATE TABLE walgate.backups (
		cluster text COLLATE "C" NOT NULL REFERENCES walgate.clusters (name),
		name    text COLLATE "C" NOT NULL,
		state   text NOT NULL,
		record  bytea NOT NULL,
		PRIMARY KEY (cluster, name)
	);
	CREATE INDEX backups_open ON walgate.backups (state) WHERE state = 'open';
	CREATE TABLE walgate.drills (
		cluster     text COLLATE "C" NOT NULL REFERENCES walgate.clusters (name),
		seq         bigserial,
		received_ns bigint NOT NULL,
		passed      boolean NOT NULL,
		record      bytea NOT NULL,
		PRIMARY KEY (cluster, seq)
	);
	CREATE INDEX drills_order ON walgate.drills (cluster, received_ns, seq);
	CREATE TABLE walgate.tokens (
		hash    bytea PRIMARY KEY,
		id      text NOT NULL,
		cluster text NOT NULL,
		record  bytea NOT NULL
	);
	CREATE INDEX tokens_id ON walgate.tokens (id);
	CREATE TABLE walgate.replication (
		seq         bigserial PRIMARY KEY,
		backend     text NOT NULL,
		key         text NOT NULL,
		record      bytea NOT NULL,
		lease_owner text,
		lease_until timestamptz
	);
	CREATE INDEX replication_backend ON walgate.replication (backend, seq);
	CREATE INDEX replication_key ON walgate.replication (key);
	CREATE TABLE walgate.wal_claims (
		cluster text COLLATE "C" NOT NULL,
		name    text COLLATE "C" NOT NULL,
		owner   text NOT NULL,
		until   timestamptz NOT NULL,
		PRIMARY KEY (cluster, name)
	);
	CREATE TABLE walgate.leases (
		duty  text PRIMARY KEY,
		owner text NOT NULL,
		until timestamptz NOT NULL
	);`,
	// 2: per-cluster activity in hourly buckets (index.TrendCounts as
	// JSON), pruned to index.TrendHours on every write.
	`CREATE TABLE walgate.trends (
		cluster text COLLATE "C" NOT NULL,
		hour    timestamptz NOT NULL,
		record  bytea NOT NULL,
		PRIMARY KEY (cluster, hour)
	);
	CREATE INDEX trends_hour ON walgate.trends (hour);`,
	// 3: replication entries claimed row by row.
	migrationReplicationClaims(),
	// 4: the brief records in an index of their own, so that a lifecycle
	// plan reads a cluster's WAL with an index-only scan (about a fifth of
	// the bytes of the table, whose rows carry the JSON records) where the
	// visibility map allows it, as autovacuum leaves an insert-mostly
	// table. Independent of the other steps' order.
	`CREATE INDEX IF NOT EXISTS wal_brief ON walgate.wal (cluster, name) INCLUDE (brief);`,
	// 5: the gateways' heartbeats.
	migrationGateways(),
}

// migrationReplicationClaims lets gateways claim replication entries row
// by row (pgcatalog.Catalog.ClaimCopies): the claim columns take the
// names of index.Copy's fields, and the fields the claim query filters on
// (kind, backup "cluster/name" of a backup's copies, next_attempt) move
// beside the record, filled from the records already queued.
func migrationReplicationClaims() string {
	return `ALTER TABLE walgate.replication RENAME COLUMN lease_owner TO claimed_by;
	ALTER TABLE walgate.replication RENAME COLUMN lease_until TO claimed_until;
	ALTER TABLE walgate.replication
		ADD COLUMN kind text,
		ADD COLUMN backup text,
		ADD COLUMN next_attempt timestamptz;
	UPDATE walgate.replication r SET
		kind = j.rec->>'kind',
		backup = CASE WHEN j.rec->>'kind' <> 'wal' THEN (j.rec->>'cluster') || '/' || (j.rec->>'name') END,
		next_attempt = (j.rec->>'next_attempt')::timestamptz
	FROM (SELECT seq, convert_from(record, 'UTF8')::jsonb AS rec FROM walgate.replication) j
	WHERE j.seq = r.seq;
	ALTER TABLE walgate.replication ALTER COLUMN kind SET NOT NULL;
	CREATE INDEX replication_sentinels ON walgate.replication (backend, seq) WHERE kind = 'sentinel';
	CREATE INDEX replication_backup ON walgate.replication (backend, backup, seq) WHERE backup IS NOT NULL;`
}

// migrationGateways creates the table every gateway of a fleet writes its
// heartbeat row to (index.GatewayRecord): one row per gateway process,
// last_seen by the database's clock.
func migrationGateways() string {
	return `CREATE TABLE walgate.gateways (
		id        text COLLATE "C" PRIMARY KEY,
		host      text NOT NULL,
		address   text NOT NULL,
		version   text NOT NULL,
		pid       integer NOT NULL,
		started   timestamptz NOT NULL,
		last_seen timestamptz NOT NULL,
		ready     boolean NOT NULL,
		stopped   boolean NOT NULL DEFAULT false
	);`
}

// SchemaVersion is the newest schema this code knows.
var SchemaVersion = len(migrations)

// ReplicationClaimsVersion is the schema version that lets gateways claim
// replication entries row by row.
var ReplicationClaimsVersion = slices.Index(migrations, migrationReplicationClaims()) + 1

// migrate creates or upgrades the schema under the migration lock, on one
// session. A database whose schema is newer than SchemaVersion is refused.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	return MigrateTo(ctx, conn, SchemaVersion)
}

// MigrateTo brings the schema to version (at most SchemaVersion) as
// migrate does; tests of a migration build the older database with it.
func MigrateTo(ctx context.Context, conn *pgx.Conn, version int) error {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockMigrate); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockMigrate) //nolint:errcheck // the session ends with Open anyway
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS walgate;
		CREATE TABLE IF NOT EXISTS walgate.schema_version (
			version int PRIMARY KEY,
			applied timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
		return err
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM walgate.schema_version`).Scan(&cur); err != nil {
		return err
	}
	if cur > SchemaVersion {
		return fmt.Errorf("%w: the catalog database has schema version %d and this walgate knows up to %d: a newer walgate migrated it; run that version (or newer) on this gateway too",
			index.ErrSchema, cur, SchemaVersion)
	}
	for v := cur + 1; v <= min(version, SchemaVersion); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO walgate.schema_version (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating the catalog schema to version %d: %w", v, err)
		}
	}
	return nil
}
