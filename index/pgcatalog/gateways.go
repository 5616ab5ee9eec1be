package pgcatalog

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

// Heartbeat stores g with last_seen = now() by the database's clock (one
// row per gateway process, upserted by id) and, in the same transaction,
// deletes the rows g replaces (same host and address, not seen for
// longer than replace) and every row not seen for longer than prune. A
// live row of another gateway is never deleted.
func (c *Catalog) Heartbeat(g index.GatewayRecord, replace, prune time.Duration) error {
	return c.tx("gateway heartbeat", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO walgate.gateways AS g (id, host, address, version, pid, started, last_seen, ready, stopped)
			VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8)
			ON CONFLICT (id) DO UPDATE SET host = excluded.host, address = excluded.address, version = excluded.version,
				pid = excluded.pid, started = excluded.started, last_seen = excluded.last_seen,
				ready = excluded.ready, stopped = excluded.stopped`,
			g.ID, g.Host, g.Address, g.Version, g.PID, g.Started, g.Ready, g.Stopped); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM walgate.gateways WHERE id <> $1 AND (
				last_seen < now() - $4 * interval '1 microsecond' OR
				(host = $2 AND address = $3 AND last_seen < now() - $5 * interval '1 microsecond'))`,
			g.ID, g.Host, g.Address, prune.Microseconds(), replace.Microseconds())
		return err
	})
}

// Gateways lists every registered gateway by host, address and id, with
// Since measured by the database's clock.
func (c *Catalog) Gateways() ([]index.GatewayRecord, error) {
	var out []index.GatewayRecord
	err := c.scan("listing gateways", `SELECT id, host, address, version, pid, started, last_seen, ready, stopped,
			greatest(extract(epoch FROM now() - last_seen), 0)::float8
		FROM walgate.gateways ORDER BY host, address, id`, nil, func(rows pgx.Rows) error {
		var g index.GatewayRecord
		var since float64
		if err := rows.Scan(&g.ID, &g.Host, &g.Address, &g.Version, &g.PID, &g.Started, &g.LastSeen, &g.Ready, &g.Stopped, &since); err != nil {
			return err
		}
		g.Started, g.LastSeen = g.Started.UTC(), g.LastSeen.UTC()
		g.Since = time.Duration(since * float64(time.Second))
		out = append(out, g)
		return nil
	})
	return out, err
}
