package index

import (
	"sync"
	"time"
)

// walClaim is one claim on a WAL name: who may write it, until when.
type walClaim struct {
	owner string
	until time.Time
}

// claims are the bbolt catalog's WAL claims. The file is open in one
// process only, so they live in memory: a restart drops them, and with
// them the claims of the requests that died with the process.
type claims struct {
	mu sync.Mutex
	m  map[string]walClaim
}

// ClaimWAL takes or renews owner's claim on the WAL name of cluster for
// lease, and reports whether owner holds it afterwards: another owner's
// claim that has not expired stays. A gateway writes a WAL object under
// its final key only while it holds the claim, so two gateways never
// write different bytes under one name (see index.Interface).
func (c *Catalog) ClaimWAL(cluster, name, owner string, lease time.Duration) (bool, error) {
	c.claims.mu.Lock()
	defer c.claims.mu.Unlock()
	if c.claims.m == nil {
		c.claims.m = map[string]walClaim{}
	}
	k := cluster + "\x00" + name
	now := time.Now()
	if cur, ok := c.claims.m[k]; ok && cur.owner != owner && now.Before(cur.until) {
		return false, nil
	}
	c.claims.m[k] = walClaim{owner: owner, until: now.Add(lease)}
	return true, nil
}

// ReleaseWAL drops owner's claim on the name; another owner's claim stays.
func (c *Catalog) ReleaseWAL(cluster, name, owner string) error {
	c.claims.mu.Lock()
	defer c.claims.mu.Unlock()
	k := cluster + "\x00" + name
	if cur, ok := c.claims.m[k]; ok && cur.owner == owner {
		delete(c.claims.m, k)
	}
	return nil
}

// TryLease takes or renews owner's lease on a shared duty (the lifecycle
// schedule, the janitor) for ttl and reports whether owner holds it: one
// process of a fleet does the duty, and another takes it over when the
// holder stops renewing. The bbolt catalog serves one process: its one
// gateway always gets it.
func (c *Catalog) TryLease(duty, owner string, ttl time.Duration) (bool, error) {
	return c.ClaimWAL("\x00lease", duty, owner, ttl)
}
