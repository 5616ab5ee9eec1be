package pgcatalog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

// enqueue adds copies inside tx, in arrival order.
func enqueue(ctx context.Context, tx pgx.Tx, copies []index.Copy) error {
	now := time.Now().UTC()
	for _, cp := range copies {
		if cp.Enqueued.IsZero() {
			cp.Enqueued = now
		}
		data, err := json.Marshal(cp)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO walgate.replication (backend, key, record, kind, backup, next_attempt) VALUES ($1, $2, $3, $4, $5, $6)`,
			cp.Backend, cp.Key, data, cp.Kind, nullString(cp.Backup()), nullTime(cp.NextAttempt)); err != nil {
			return err
		}
	}
	return nil
}

// Enqueue queues copies on their own.
func (c *Catalog) Enqueue(copies []index.Copy) error {
	if len(copies) == 0 {
		return nil
	}
	return c.tx("queueing copies", func(ctx context.Context, tx pgx.Tx) error { return enqueue(ctx, tx, copies) })
}

// EnqueueRepair queues the repair of cp.Backend's copy of cp.Key unless
// the queue already holds one (see index.Catalog.EnqueueRepair). Gateways
// repairing the same key at once queue it once: the check and the insert
// run under a transaction lock on the backend and key.
func (c *Catalog) EnqueueRepair(cp index.Copy) (bool, error) {
	cp.Repair = true
	added := false
	err := c.tx("queueing a repair of "+cp.Key, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, cp.Backend+"\n"+cp.Key); err != nil {
			return err
		}
		var seq int64
		var rec []byte
		err := tx.QueryRow(ctx, `SELECT seq, record FROM walgate.replication WHERE backend = $1 AND key = $2 ORDER BY seq LIMIT 1 FOR UPDATE`,
			cp.Backend, cp.Key).Scan(&seq, &rec)
		if errors.Is(err, pgx.ErrNoRows) {
			added = true
			return enqueue(ctx, tx, []index.Copy{cp})
		}
		if err != nil {
			return err
		}
		var q index.Copy
		if err := decode(rec, &q); err != nil || q.Repair {
			return err
		}
		q.Repair = true
		data, err := json.Marshal(q)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE walgate.replication SET record = $2 WHERE seq = $1`, seq, data)
		return err
	})
	if err != nil {
		return false, err
	}
	return added, nil
}

// nullString is s, or NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullTime is t, or NULL when zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// scanCopy reads a row of seq, record and, when claims, the unexpired
// claim (owner, until; NULLs when none).
func scanCopy(rows pgx.Rows, backend string, claims bool) (index.Copy, error) {
	var seq int64
	var rec []byte
	var owner *string
	var until *time.Time
	var cp index.Copy
	dest := []any{&seq, &rec}
	if claims {
		dest = append(dest, &owner, &until)
	}
	if err := rows.Scan(dest...); err != nil {
		return cp, err
	}
	if err := decode(rec, &cp); err != nil {
		return cp, fmt.Errorf("replication queue of %s: %w", backend, err)
	}
	cp.Seq, cp.Backend = uint64(seq), backend
	if owner != nil && until != nil {
		cp.ClaimedBy, cp.ClaimedUntil = *owner, until.UTC()
	}
	return cp, nil
}

// Pending returns up to limit queued copies for backend in queue order
// (limit <= 0: all), with their unexpired claims.
func (c *Catalog) Pending(backend string, limit int) ([]index.Copy, error) {
	var out []index.Copy
	lim := any(nil)
	if limit > 0 {
		lim = limit
	}
	err := c.scan("replication queue", `SELECT seq, record,
			CASE WHEN claimed_until > clock_timestamp() THEN claimed_by END,
			CASE WHEN claimed_until > clock_timestamp() THEN claimed_until END
		FROM walgate.replication WHERE backend = $1 ORDER BY seq LIMIT $2`,
		[]any{backend, lim}, func(rows pgx.Rows) error {
			cp, err := scanCopy(rows, backend, true)
			out = append(out, cp)
			return err
		})
	return out, err
}

// claimCopies takes the entries of index.Claimable in one statement: the
// candidates are read in queue order with FOR UPDATE SKIP LOCKED (an
// entry another gateway is claiming at this moment is passed over, not
// waited for) and the claim is re-checked on the row's newest version, so
// two gateways never both claim a row. A sentinel qualifies only when no
// earlier entry of its backup and no earlier sentinel exists in the
// backend's queue, whoever claims it: the statement sees committed rows,
// and an entry counts as gone only once its completion committed.
const claimCopies = `WITH cand AS (
	SELECT r.seq FROM walgate.replication r
	WHERE r.backend = $1
		AND (r.next_attempt IS NULL OR r.next_attempt <= $5)
		AND (r.claimed_by IS NULL OR r.claimed_by = $2 OR r.claimed_until <= $5)
		AND (r.kind <> 'sentinel' OR (
			NOT EXISTS (SELECT 1 FROM walgate.replication e
				WHERE e.backend = r.backend AND e.kind = 'sentinel' AND e.seq < r.seq)
			AND NOT EXISTS (SELECT 1 FROM walgate.replication e
				WHERE e.backend = r.backend AND e.backup = r.backup AND e.seq < r.seq)))
	ORDER BY r.seq
	LIMIT $3
	FOR UPDATE OF r SKIP LOCKED)
UPDATE walgate.replication q SET claimed_by = $2, claimed_until = $5 + $4::float8 * interval '1 second'
FROM cand WHERE q.seq = cand.seq
RETURNING q.seq, q.record, q.claimed_by, q.claimed_until`

// nextClaimable is when the first entry of a backend passed over for a
// time becomes claimable: its next attempt, or the end of another
// owner's claim, whichever is later.
const nextClaimable = `SELECT min(greatest(
		CASE WHEN next_attempt > $3 THEN next_attempt END,
		CASE WHEN claimed_by <> $2 AND claimed_until > $3 THEN claimed_until END))
	FROM walgate.replication
	WHERE backend = $1 AND (next_attempt > $3 OR claimed_until > $3)`

// ClaimCopies claims for owner up to limit due entries of backend's queue
// (see index.Interface and index.Claimable).
func (c *Catalog) ClaimCopies(backend, owner string, limit int, lease time.Duration) ([]index.Copy, time.Time, error) {
	var out []index.Copy
	var next time.Time
	err := c.tx("claiming copies", func(ctx context.Context, tx pgx.Tx) error {
		out, next = nil, time.Time{}
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, claimCopies, backend, owner, limit, lease.Seconds(), now)
		if err != nil {
			return err
		}
		for rows.Next() {
			cp, err := scanCopy(rows, backend, true)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, cp)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == limit {
			return nil // the caller claims again at once
		}
		var at *time.Time
		if err := tx.QueryRow(ctx, nextClaimable, backend, owner, now).Scan(&at); err != nil {
			return err
		}
		if at != nil {
			next = at.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	slices.SortFunc(out, func(a, b index.Copy) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, next, nil
}

func seqs(copies []index.Copy) []int64 {
	out := make([]int64, len(copies))
	for i, cp := range copies {
		out[i] = int64(cp.Seq)
	}
	return out
}

// RenewCopies extends owner's claims on copies for lease from now.
func (c *Catalog) RenewCopies(owner string, copies []index.Copy, lease time.Duration) error {
	if len(copies) == 0 {
		return nil
	}
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.pool.Exec(ctx, `UPDATE walgate.replication SET claimed_until = clock_timestamp() + $3::float8 * interval '1 second'
		WHERE seq = ANY($1) AND claimed_by = $2`, seqs(copies), owner, lease.Seconds())
	return c.wrap("renewing claims on copies", err)
}

// ReleaseCopies drops owner's claims on copies.
func (c *Catalog) ReleaseCopies(owner string, copies []index.Copy) error {
	if len(copies) == 0 {
		return nil
	}
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.pool.Exec(ctx, `UPDATE walgate.replication SET claimed_by = NULL, claimed_until = NULL
		WHERE seq = ANY($1) AND claimed_by = $2`, seqs(copies), owner)
	return c.wrap("releasing claims on copies", err)
}

// ownedBy is the condition that no owner but $3 holds an unexpired claim
// on a replication row.
const ownedBy = `(claimed_by IS NULL OR claimed_by = $3 OR claimed_until <= clock_timestamp())`

// QueueStats scans backend's queue.
func (c *Catalog) QueueStats(backend string) (index.QueueStats, error) {
	qs := index.QueueStats{ByCluster: map[string]index.QueueStats{}}
	err := c.scan("replication queue", `SELECT seq, record FROM walgate.replication WHERE backend = $1 ORDER BY seq`,
		[]any{backend}, func(rows pgx.Rows) error {
			cp, err := scanCopy(rows, backend, false)
			if err == nil {
				qs.Add(cp)
			}
			return err
		})
	return qs, err
}

// RetryCopy records a failed attempt and when to try again, and drops
// the claim (see index.Interface).
func (c *Catalog) RetryCopy(cp index.Copy, next time.Time, errMsg string) error {
	cp.Attempts++
	cp.NextAttempt = next.UTC()
	cp.LastError = errMsg
	cp.LastErrorAt = time.Now().UTC()
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	_, err = c.pool.Exec(ctx, `UPDATE walgate.replication SET record = $4, next_attempt = $5, claimed_by = NULL, claimed_until = NULL
		WHERE seq = $1 AND backend = $2 AND `+ownedBy, int64(cp.Seq), cp.Backend, cp.ClaimedBy, data, cp.NextAttempt)
	return c.wrap("recording a failed copy", err)
}

// CompleteCopy removes a done copy from the queue (unless another owner
// claims it) and records its backend as a holder of the object, in one
// transaction.
func (c *Catalog) CompleteCopy(cp index.Copy) error {
	return c.tx("recording a copy", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM walgate.replication WHERE seq = $1 AND backend = $2 AND `+ownedBy,
			int64(cp.Seq), cp.Backend, cp.ClaimedBy); err != nil {
			return err
		}
		switch cp.Kind {
		case index.CopyWAL:
			var rec []byte
			err := tx.QueryRow(ctx, `SELECT record FROM walgate.wal WHERE cluster = $1 AND name = $2 FOR UPDATE`, cp.Cluster, cp.Name).Scan(&rec)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			var obj index.WALObject
			if err := decode(rec, &obj); err != nil || !obj.AddCopy(cp) {
				return err
			}
			return putWAL(ctx, tx, cp.Cluster, obj)
		case index.CopyBackupFile, index.CopySentinel:
			if err := bump(ctx, tx, cp.Cluster); err != nil {
				return err
			}
			b, ok, err := lockBackup(ctx, tx, cp.Cluster, cp.Name)
			if err != nil || !ok || !b.AddCopy(cp) {
				return err
			}
			return putBackup(ctx, tx, cp.Cluster, b)
		}
		return fmt.Errorf("replication queue: unknown kind %q", cp.Kind)
	})
}

// CancelCopies drops every queued copy of the given keys, on every
// backend.
func (c *Catalog) CancelCopies(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.pool.Exec(ctx, `DELETE FROM walgate.replication WHERE key = ANY($1)`, keys)
	return c.wrap("cancelling copies", err)
}
