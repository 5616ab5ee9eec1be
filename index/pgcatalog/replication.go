package pgcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
		if _, err := tx.Exec(ctx, `INSERT INTO walgate.replication (backend, key, record) VALUES ($1, $2, $3)`,
			cp.Backend, cp.Key, data); err != nil {
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

func scanCopy(rows pgx.Rows, backend string) (index.Copy, error) {
	var seq int64
	var rec []byte
	var cp index.Copy
	if err := rows.Scan(&seq, &rec); err != nil {
		return cp, err
	}
	if err := decode(rec, &cp); err != nil {
		return cp, fmt.Errorf("replication queue of %s: %w", backend, err)
	}
	cp.Seq, cp.Backend = uint64(seq), backend
	return cp, nil
}

// Pending returns up to limit queued copies for backend in queue order
// (limit <= 0: all).
func (c *Catalog) Pending(backend string, limit int) ([]index.Copy, error) {
	var out []index.Copy
	lim := any(nil)
	if limit > 0 {
		lim = limit
	}
	err := c.scan("replication queue", `SELECT seq, record FROM walgate.replication WHERE backend = $1 ORDER BY seq LIMIT $2`,
		[]any{backend, lim}, func(rows pgx.Rows) error {
			cp, err := scanCopy(rows, backend)
			out = append(out, cp)
			return err
		})
	return out, err
}

// QueueStats scans backend's queue.
func (c *Catalog) QueueStats(backend string) (index.QueueStats, error) {
	qs := index.QueueStats{ByCluster: map[string]index.QueueStats{}}
	err := c.scan("replication queue", `SELECT seq, record FROM walgate.replication WHERE backend = $1 ORDER BY seq`,
		[]any{backend}, func(rows pgx.Rows) error {
			cp, err := scanCopy(rows, backend)
			if err == nil {
				qs.Add(cp)
			}
			return err
		})
	return qs, err
}

// RetryCopy records a failed attempt and when to try again.
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
	_, err = c.pool.Exec(ctx, `UPDATE walgate.replication SET record = $3 WHERE seq = $1 AND backend = $2`, int64(cp.Seq), cp.Backend, data)
	return c.wrap("recording a failed copy", err)
}

// CompleteCopy removes a done copy from the queue and records its backend
// as a holder of the object, in one transaction.
func (c *Catalog) CompleteCopy(cp index.Copy) error {
	return c.tx("recording a copy", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM walgate.replication WHERE seq = $1 AND backend = $2`, int64(cp.Seq), cp.Backend); err != nil {
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
