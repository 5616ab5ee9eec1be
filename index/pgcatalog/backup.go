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

func putBackup(ctx context.Context, tx pgx.Tx, cluster string, b index.Backup) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE walgate.backups SET state = $3, record = $4 WHERE cluster = $1 AND name = $2`,
		cluster, b.Name, string(b.State), data)
	return err
}

// BeginBackup records a new open backup; it fails with index.ErrExists if
// a backup of that name exists, open or committed.
func (c *Catalog) BeginBackup(cluster string, b index.Backup) error {
	return c.tx("beginning backup "+b.Name, func(ctx context.Context, tx pgx.Tx) error {
		if err := ensureCluster(ctx, tx, cluster); err != nil {
			return err
		}
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO walgate.backups (cluster, name, state, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (cluster, name) DO NOTHING`, cluster, b.Name, string(b.State), data)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var state string
			if err := tx.QueryRow(ctx, `SELECT state FROM walgate.backups WHERE cluster = $1 AND name = $2`, cluster, b.Name).Scan(&state); err != nil {
				return err
			}
			return fmt.Errorf("backup %s of cluster %s already exists (%s): %w", b.Name, cluster, state, index.ErrExists)
		}
		return bump(ctx, tx, cluster)
	})
}

// lockBackup reads a backup record for update inside tx.
func lockBackup(ctx context.Context, tx pgx.Tx, cluster, name string) (index.Backup, bool, error) {
	var rec []byte
	var b index.Backup
	err := tx.QueryRow(ctx, `SELECT record FROM walgate.backups WHERE cluster = $1 AND name = $2 FOR UPDATE`, cluster, name).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	return b, true, decode(rec, &b)
}

// UpdateBackup reads the backup record, lets fn change it, and writes it
// back in one transaction. fn must not do I/O.
func (c *Catalog) UpdateBackup(cluster, name string, fn func(*index.Backup) error) error {
	return c.UpdateBackupCopies(cluster, name, func(b *index.Backup) ([]index.Copy, error) { return nil, fn(b) })
}

// UpdateBackupCopies is UpdateBackup whose fn also returns copies to queue
// in the same transaction.
func (c *Catalog) UpdateBackupCopies(cluster, name string, fn func(*index.Backup) ([]index.Copy, error)) error {
	var fnErr error
	err := c.tx("updating backup "+name, func(ctx context.Context, tx pgx.Tx) error {
		b, ok, err := lockBackup(ctx, tx, cluster, name)
		if err != nil {
			return err
		}
		if !ok {
			fnErr = fmt.Errorf("backup %s of cluster %s: %w", name, cluster, index.ErrNotFound)
			return fnErr
		}
		copies, err := fn(&b)
		if err != nil {
			fnErr = err
			return err
		}
		if err := putBackup(ctx, tx, cluster, b); err != nil {
			return err
		}
		if err := enqueue(ctx, tx, copies); err != nil {
			return err
		}
		return bump(ctx, tx, cluster)
	})
	if fnErr != nil {
		return fnErr // the caller's own error, as it returned it
	}
	return err
}

// DeleteBackup removes a backup record.
func (c *Catalog) DeleteBackup(cluster, name string) error {
	return c.tx("deleting backup "+name, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM walgate.backups WHERE cluster = $1 AND name = $2`, cluster, name); err != nil {
			return err
		}
		return bump(ctx, tx, cluster)
	})
}

// Backup returns one backup record, open or committed.
func (c *Catalog) Backup(cluster, name string) (index.Backup, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	var rec []byte
	var b index.Backup
	err := c.pool.QueryRow(ctx, `SELECT record FROM walgate.backups WHERE cluster = $1 AND name = $2`, cluster, name).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("backup %s of cluster %s: %w", name, cluster, index.ErrNotFound)
	}
	if err != nil {
		return b, c.wrap("backup "+name, err)
	}
	return b, decode(rec, &b)
}

// Backups lists a cluster's backups in the given state ("" = all), by
// finish time, then by name.
func (c *Catalog) Backups(cluster string, state index.BackupState) ([]index.Backup, error) {
	var out []index.Backup
	err := c.scan("listing backups", `SELECT record FROM walgate.backups WHERE cluster = $1 AND ($2 = '' OR state = $2) ORDER BY name`,
		[]any{cluster, string(state)}, func(rows pgx.Rows) error {
			var rec []byte
			if err := rows.Scan(&rec); err != nil {
				return err
			}
			var b index.Backup
			if err := decode(rec, &b); err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
	index.SortBackups(out)
	return out, err
}

// OpenBackups lists open backups of every cluster, as cluster -> records.
func (c *Catalog) OpenBackups() (map[string][]index.Backup, error) {
	out := map[string][]index.Backup{}
	err := c.scan("listing open backups", `SELECT cluster, record FROM walgate.backups WHERE state = 'open' ORDER BY cluster, name`,
		nil, func(rows pgx.Rows) error {
			var cluster string
			var rec []byte
			if err := rows.Scan(&cluster, &rec); err != nil {
				return err
			}
			var b index.Backup
			if err := decode(rec, &b); err != nil {
				return err
			}
			out[cluster] = append(out[cluster], b)
			return nil
		})
	for _, list := range out {
		index.SortBackups(list)
	}
	return out, err
}

// SetBackupClasses records class changes of a backup's objects.
func (c *Catalog) SetBackupClasses(cluster, name string, changes []index.CopyChange) error {
	if len(changes) == 0 {
		return nil
	}
	var fnErr error
	err := c.tx("recording classes of backup "+name, func(ctx context.Context, tx pgx.Tx) error {
		b, ok, err := lockBackup(ctx, tx, cluster, name)
		if err != nil || !ok {
			return err
		}
		if fnErr = b.ApplyClassChanges(changes); fnErr != nil {
			return fnErr
		}
		if err := putBackup(ctx, tx, cluster, b); err != nil {
			return err
		}
		return bump(ctx, tx, cluster)
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// MarkBackupDeleting moves a committed backup to deleting and returns its
// record; a backup already deleting is returned as it is.
func (c *Catalog) MarkBackupDeleting(cluster, name string) (index.Backup, error) {
	var out index.Backup
	err := c.UpdateBackup(cluster, name, func(b *index.Backup) error {
		if err := b.MarkDeleting(cluster); err != nil {
			return err
		}
		out = *b
		return nil
	})
	return out, err
}

// AddDrill stores a drill report of a cluster.
func (c *Catalog) AddDrill(cluster string, d index.DrillRecord) error {
	return c.tx("recording a drill", func(ctx context.Context, tx pgx.Tx) error {
		if err := ensureCluster(ctx, tx, cluster); err != nil {
			return err
		}
		data, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO walgate.drills (cluster, received_ns, passed, record) VALUES ($1, $2, $3, $4)`,
			cluster, d.Received.UnixNano(), d.Passed, data); err != nil {
			return err
		}
		return bump(ctx, tx, cluster)
	})
}

// TrimDrills removes a cluster's oldest drill reports beyond the newest
// keep, and returns how many it removed.
func (c *Catalog) TrimDrills(cluster string, keep int) (int, error) {
	removed := 0
	err := c.tx("trimming drills", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM walgate.drills WHERE cluster = $1 AND seq IN (
			SELECT seq FROM walgate.drills WHERE cluster = $1 ORDER BY received_ns DESC, seq DESC OFFSET $2)`, cluster, max(keep, 0))
		if err != nil {
			return err
		}
		removed = int(tag.RowsAffected())
		if removed > 0 {
			return bump(ctx, tx, cluster)
		}
		return nil
	})
	return removed, err
}

// Drills returns a cluster's drill reports, oldest first, at most the
// newest limit of them (0 = all).
func (c *Catalog) Drills(cluster string, limit int) ([]index.DrillRecord, error) {
	var out []index.DrillRecord
	lim := any(nil)
	if limit > 0 {
		lim = limit
	}
	err := c.scan("listing drills", `SELECT record FROM walgate.drills WHERE cluster = $1 ORDER BY received_ns DESC, seq DESC LIMIT $2`,
		[]any{cluster, lim}, func(rows pgx.Rows) error {
			var rec []byte
			if err := rows.Scan(&rec); err != nil {
				return err
			}
			var d index.DrillRecord
			if err := decode(rec, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// DrillSummary returns a cluster's newest drill record (nil when none) and
// when the newest passing drill was received (zero when none).
func (c *Catalog) DrillSummary(cluster string) (*index.DrillRecord, time.Time, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	var rec []byte
	err := c.pool.QueryRow(ctx, `SELECT record FROM walgate.drills WHERE cluster = $1 ORDER BY received_ns DESC, seq DESC LIMIT 1`, cluster).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, c.wrap("drills", err)
	}
	var newest index.DrillRecord
	if err := decode(rec, &newest); err != nil {
		return nil, time.Time{}, err
	}
	if newest.Passed {
		return &newest, newest.Received, nil
	}
	err = c.pool.QueryRow(ctx, `SELECT record FROM walgate.drills WHERE cluster = $1 AND passed ORDER BY received_ns DESC, seq DESC LIMIT 1`, cluster).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return &newest, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, c.wrap("drills", err)
	}
	var d index.DrillRecord
	if err := decode(rec, &d); err != nil {
		return nil, time.Time{}, err
	}
	return &newest, d.Received, nil
}
