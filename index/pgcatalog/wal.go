package pgcatalog

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("catalog record is corrupt: %w", err)
	}
	return nil
}

// WALTable and WALColumns name the table of WAL records and its columns
// in the order WALRow fills them: what a bulk load (COPY) writes.
var (
	WALTable   = pgx.Identifier{"walgate", "wal"}
	WALColumns = []string{"cluster", "name", "record", "brief"}
)

// WALRow is the row of o in cluster's WAL, as the catalog writes it: its
// values in WALColumns order. The cluster's row in walgate.clusters must
// exist before the row is written.
func WALRow(cluster string, o index.WALObject) ([]any, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	return []any{cluster, o.Name, data, index.EncodeBrief(o)}, nil
}

// putWAL writes (inserts or replaces) a WAL record and its brief.
func putWAL(ctx context.Context, tx pgx.Tx, cluster string, o index.WALObject) error {
	row, err := WALRow(cluster, o)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO walgate.wal (cluster, name, record, brief) VALUES ($1, $2, $3, $4)
		ON CONFLICT (cluster, name) DO UPDATE SET record = excluded.record, brief = excluded.brief`, row...)
	return err
}

// AddWALBatch records objs for cluster in one transaction, skipping names
// the catalog already holds.
func (c *Catalog) AddWALBatch(cluster string, objs []index.WALObject) error {
	ctx, cancel := c.scanCtx()
	defer cancel()
	return c.wrap("adding WAL records", pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := ensureCluster(ctx, tx, cluster); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, o := range objs {
			row, err := WALRow(cluster, o)
			if err != nil {
				return err
			}
			b.Queue(`INSERT INTO walgate.wal (cluster, name, record, brief) VALUES ($1, $2, $3, $4)
				ON CONFLICT (cluster, name) DO NOTHING`, row...)
		}
		return tx.SendBatch(ctx, b).Close()
	}))
}

// AddWAL records obj unless a record of that name exists (see
// index.Interface).
func (c *Catalog) AddWAL(cluster string, obj index.WALObject) (index.WALObject, bool, error) {
	return c.AddWALCopies(cluster, obj, nil)
}

// AddWALCopies claims obj.Name for obj with an insert-if-absent and queues
// copies in the same transaction. Of gateways racing on one name, the
// insert of the first to commit wins; the others wait for it and read its
// record.
func (c *Catalog) AddWALCopies(cluster string, obj index.WALObject, copies []index.Copy) (index.WALObject, bool, error) {
	existing, added := obj, false
	err := c.tx("recording WAL "+obj.Name, func(ctx context.Context, tx pgx.Tx) error {
		if err := ensureCluster(ctx, tx, cluster); err != nil {
			return err
		}
		row, err := WALRow(cluster, obj)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO walgate.wal (cluster, name, record, brief) VALUES ($1, $2, $3, $4)
			ON CONFLICT (cluster, name) DO NOTHING`, row...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var rec []byte
			if err := tx.QueryRow(ctx, `SELECT record FROM walgate.wal WHERE cluster = $1 AND name = $2`, cluster, obj.Name).Scan(&rec); err != nil {
				return err
			}
			return decode(rec, &existing)
		}
		added = true
		if err := enqueue(ctx, tx, copies); err != nil {
			return err
		}
		return c.notifyWAL(ctx, tx, cluster, obj.Name)
	})
	if err != nil {
		return index.WALObject{}, false, err
	}
	return existing, added, nil
}

// WAL returns the record of one WAL file, or index.ErrNotFound.
func (c *Catalog) WAL(cluster, name string) (index.WALObject, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	var rec []byte
	var obj index.WALObject
	err := c.pool.QueryRow(ctx, `SELECT record FROM walgate.wal WHERE cluster = $1 AND name = $2`, cluster, name).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return obj, fmt.Errorf("WAL %s of cluster %s: %w", name, cluster, index.ErrNotFound)
	}
	if err != nil {
		return obj, c.wrap("WAL "+name, err)
	}
	return obj, decode(rec, &obj)
}

// scan runs query with a scan deadline and calls fn for every row.
func (c *Catalog) scan(what, query string, args []any, fn func(pgx.Rows) error) error {
	ctx, cancel := c.scanCtx()
	defer cancel()
	rows, err := c.pool.Query(ctx, query, args...)
	if err != nil {
		return c.wrap(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return c.wrap(what, rows.Err())
}

// Pages of a WAL listing: the first is small, so that a listing its
// caller stops early (SegmentSize) reads little; each next one is larger,
// up to walPageMax rows.
const (
	walPageFirst = 256
	walPageMax   = 16384
)

// listWAL calls row for the cluster's WAL rows with names >= from, in
// name order: query's columns after name are cols. It reads them page by
// page (keyset: a LIMIT after the last name read), all in one read-only
// REPEATABLE READ transaction, so the listing is one snapshot as in the
// bbolt catalog. A page is an ordered range of the primary key's index:
// one query over a whole cluster would let the planner choose a scan of
// every cluster's rows and a sort that spills to disk before the first
// row arrives, and stopping it early would still transfer all its rows.
func (c *Catalog) listWAL(what, cols, cluster, from string, row func(rows pgx.Rows) (name string, err error)) error {
	ctx, cancel := c.scanCtx()
	defer cancel()
	var stopped error // row's own error, returned as it is
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		first := `SELECT name, ` + cols + ` FROM walgate.wal WHERE cluster = $1 AND name >= $2 ORDER BY name LIMIT $3`
		next := `SELECT name, ` + cols + ` FROM walgate.wal WHERE cluster = $1 AND name > $2 ORDER BY name LIMIT $3`
		query, after := first, from
		for page := walPageFirst; ; page = min(page*4, walPageMax) {
			rows, err := tx.Query(ctx, query, cluster, after, page)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				name, err := row(rows)
				if err != nil {
					rows.Close()
					stopped = err
					return err
				}
				after = name
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if n < page {
				return nil
			}
			query = next
		}
	})
	if stopped != nil {
		return stopped
	}
	return c.wrap(what, err)
}

// ListWAL calls fn for the cluster's WAL records with names >= from, in
// name order, streaming them from the database.
func (c *Catalog) ListWAL(cluster, from string, fn func(index.WALObject) error) error {
	return c.listWAL("listing WAL", "record", cluster, from, func(rows pgx.Rows) (string, error) {
		var name string
		var rec []byte
		if err := rows.Scan(&name, &rec); err != nil {
			return "", err
		}
		var obj index.WALObject
		if err := decode(rec, &obj); err != nil {
			return "", err
		}
		return name, fn(obj)
	})
}

// ListWALBrief lists the brief records of the cluster's WAL, in name
// order.
func (c *Catalog) ListWALBrief(cluster string, fn func(name string, w index.WALBrief) error) error {
	return c.listWAL("listing WAL", "brief", cluster, "", func(rows pgx.Rows) (string, error) {
		var name string
		var brief []byte
		if err := rows.Scan(&name, &brief); err != nil {
			return "", err
		}
		var w index.WALBrief
		if err := index.DecodeBrief(brief, &w); err != nil {
			return "", fmt.Errorf("WAL %s of cluster %s: %w", name, cluster, err)
		}
		return name, fn(name, w)
	})
}

// SegmentSize is the cluster's WAL segment size as its archived segments
// show it; 0 when none is archived.
func (c *Catalog) SegmentSize(cluster string) (uint64, error) { return index.SegmentSizeOf(c, cluster) }

// Timelines lists the timelines the cluster's WAL names, lowest first,
// with one index seek per timeline.
func (c *Catalog) Timelines(cluster string) ([]index.TimelineRecord, error) {
	ctx, cancel := c.scanCtx()
	defer cancel()
	var out []index.TimelineRecord
	from := ""
	for {
		var name string
		var rec []byte
		err := c.pool.QueryRow(ctx, `SELECT name, record FROM walgate.wal WHERE cluster = $1 AND name >= $2 ORDER BY name LIMIT 1`,
			cluster, from).Scan(&name, &rec)
		if errors.Is(err, pgx.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return nil, c.wrap("timelines", err)
		}
		raw, herr := hex.DecodeString(prefix8(name))
		if herr != nil || len(raw) != 4 {
			from = name + "\x01" // the next name after this one
			continue
		}
		id := uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3])
		tl := index.TimelineRecord{ID: id}
		if name == fmt.Sprintf("%08X.history", id) {
			var obj index.WALObject
			if err := decode(rec, &obj); err != nil {
				return nil, err
			}
			tl.History, tl.Parent, tl.SwitchLSN = true, obj.TimelineParent, obj.SwitchLSN
		}
		out = append(out, tl)
		if id == ^uint32(0) {
			return out, nil
		}
		from = fmt.Sprintf("%08X", id+1)
	}
}

func prefix8(name string) string {
	if len(name) < 8 {
		return "-"
	}
	return name[:8]
}

// ApplyWALChanges records lifecycle changes to a cluster's WAL copies in
// one transaction (see index.WALObject.ApplyChange).
func (c *Catalog) ApplyWALChanges(cluster string, changes []index.CopyChange) error {
	if len(changes) == 0 {
		return nil
	}
	ctx, cancel := c.scanCtx()
	defer cancel()
	return c.wrap("recording WAL changes", pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for _, ch := range changes {
			var rec []byte
			err := tx.QueryRow(ctx, `SELECT record FROM walgate.wal WHERE cluster = $1 AND name = $2 FOR UPDATE`, cluster, ch.Name).Scan(&rec)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			var obj index.WALObject
			if err := decode(rec, &obj); err != nil {
				return err
			}
			if !obj.ApplyChange(ch) {
				if _, err := tx.Exec(ctx, `DELETE FROM walgate.wal WHERE cluster = $1 AND name = $2`, cluster, ch.Name); err != nil {
					return err
				}
				continue
			}
			if err := putWAL(ctx, tx, cluster, obj); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Check reads every record and reports structural damage, as the bbolt
// catalog's Check does.
func (c *Catalog) Check() error {
	var problems []string
	err := c.scan("checking tokens", `SELECT hash, record FROM walgate.tokens ORDER BY hash`, nil, func(rows pgx.Rows) error {
		var h, rec []byte
		if err := rows.Scan(&h, &rec); err != nil {
			return err
		}
		var t index.Token
		if json.Unmarshal(rec, &t) != nil || !index.CheckToken(t) || len(h) != 32 {
			problems = append(problems, fmt.Sprintf("token record %.12x: damaged", h))
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = c.scan("checking clusters", `SELECT name, system FROM walgate.clusters WHERE system IS NOT NULL ORDER BY name`, nil, func(rows pgx.Rows) error {
		var name string
		var rec []byte
		if err := rows.Scan(&name, &rec); err != nil {
			return err
		}
		var s index.ClusterSystem
		if json.Unmarshal(rec, &s) != nil || !index.CheckSystemRecord(s) {
			problems = append(problems, fmt.Sprintf("cluster %s: damaged system record", name))
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = c.scan("checking WAL", `SELECT cluster, name, record, brief FROM walgate.wal ORDER BY cluster, name`, nil, func(rows pgx.Rows) error {
		var cluster, name string
		var rec, brief []byte
		if err := rows.Scan(&cluster, &name, &rec, &brief); err != nil {
			return err
		}
		var o index.WALObject
		if json.Unmarshal(rec, &o) != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: undecodable", cluster, name))
		} else if p := index.CheckWALRecord(cluster, name, o, brief); p != "" {
			problems = append(problems, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("catalog check: %d problems: %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}
