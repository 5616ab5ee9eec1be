package pgcatalog

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type pgconnNotification = pgconn.Notification

// walChannel is the NOTIFY channel of new WAL records: the payload is
// "<origin> <cluster>/<name>", origin naming the Catalog that added it.
const walChannel = "walgate_wal"

// notifyWAL announces a new WAL record inside the transaction that adds
// it: listeners hear of it only if it commits.
func (c *Catalog) notifyWAL(ctx context.Context, tx pgx.Tx, cluster, name string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, walChannel, c.origin+" "+cluster+"/"+name)
	return err
}

// WatchWAL calls added for every WAL record that another process (another
// gateway's Catalog) adds, until ctx ends, on a session of its own.
// Records committed before its LISTEN took effect are not notified: those
// added after the caller read the catalog and before the first LISTEN, and
// those added while a lost connection was coming back. So it calls resync
// each time it starts listening, the first time included.
func (c *Catalog) WatchWAL(ctx context.Context, added func(cluster, name string), resync func()) {
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, c.pool.Config().ConnConfig.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+walChannel)
			if err == nil {
				resync()
			}
			for err == nil {
				var n *pgconnNotification
				n, err = conn.WaitForNotification(ctx)
				if err != nil {
					break
				}
				origin, target, ok := strings.Cut(n.Payload, " ")
				cluster, name, ok2 := strings.Cut(target, "/")
				if ok && ok2 && origin != c.origin {
					added(cluster, name)
				}
			}
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
