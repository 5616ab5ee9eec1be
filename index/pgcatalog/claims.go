package pgcatalog

import "time"

// ClaimWAL takes or renews owner's claim on the WAL name of cluster for
// lease, by the database's clock, and reports whether owner holds it
// afterwards. One statement: an insert, or an update of a claim that is
// owner's own or has expired; of gateways racing, one row wins.
func (c *Catalog) ClaimWAL(cluster, name, owner string, lease time.Duration) (bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	tag, err := c.pool.Exec(ctx, `INSERT INTO walgate.wal_claims AS w (cluster, name, owner, until)
		VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
		ON CONFLICT (cluster, name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE w.owner = excluded.owner OR w.until < now()`, cluster, name, owner, lease.Microseconds())
	if err != nil {
		return false, c.wrap("claiming WAL "+name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseWAL drops owner's claim on the name; another owner's claim stays.
func (c *Catalog) ReleaseWAL(cluster, name, owner string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.pool.Exec(ctx, `DELETE FROM walgate.wal_claims WHERE cluster = $1 AND name = $2 AND owner = $3`, cluster, name, owner)
	return c.wrap("releasing WAL "+name, err)
}

// TryLease takes or renews owner's lease on a shared duty for ttl, by the
// database's clock (see ClaimWAL): one statement, one winner.
func (c *Catalog) TryLease(duty, owner string, ttl time.Duration) (bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	tag, err := c.pool.Exec(ctx, `INSERT INTO walgate.leases AS l (duty, owner, until)
		VALUES ($1, $2, now() + $3 * interval '1 microsecond')
		ON CONFLICT (duty) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE l.owner = excluded.owner OR l.until < now()`, duty, owner, ttl.Microseconds())
	if err != nil {
		return false, c.wrap("lease "+duty, err)
	}
	return tag.RowsAffected() == 1, nil
}
