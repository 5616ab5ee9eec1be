package index

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Gateways are the rows the gateway processes sharing a catalog write
// about themselves every few seconds (their heartbeat), so that any of
// them can show the whole fleet and which of its members are alive.
// Layout (bbolt): gateways/<instance id> -> JSON GatewayRecord. They are
// statistics, not archive state: a rebuilt catalog starts without them.

var bucketGateways = []byte("gateways")

// GatewayRecord is one gateway process as it last registered itself.
type GatewayRecord struct {
	// ID is the process's instance id, as in its WAL claims and leases.
	ID   string `json:"id"`
	Host string `json:"host"`
	// Address is where clients reach it, host:port.
	Address string    `json:"address"`
	Version string    `json:"version"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// LastSeen is the last heartbeat, by the catalog's clock (the
	// database server's for PostgreSQL): gateways on machines whose clocks
	// differ are still compared fairly.
	LastSeen time.Time `json:"last_seen"`
	// Ready is the gateway's own /readyz verdict at that heartbeat.
	Ready bool `json:"ready"`
	// Stopped: the last heartbeat was its clean shutdown.
	Stopped bool `json:"stopped"`
	// Since is how long before the read LastSeen was, by the catalog's
	// clock; filled in by Gateways, never stored.
	Since time.Duration `json:"-"`
}

// sortGateways orders gateways by host, then address, then id.
func sortGateways(list []GatewayRecord) {
	slices.SortFunc(list, func(a, b GatewayRecord) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), strings.Compare(a.Address, b.Address), strings.Compare(a.ID, b.ID))
	})
}

// Heartbeat stores g with LastSeen set to now (the Stopped flag
// included), removes the rows g replaces, those of the same Host and
// Address not seen for longer than replace (a predecessor that died on
// the same host and port), and removes every row not seen for longer than
// prune (gateways gone for good).
func (c *Catalog) Heartbeat(g GatewayRecord, replace, prune time.Duration) error {
	now := time.Now().UTC()
	g.LastSeen, g.Since = now, 0
	return c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketGateways)
		if err != nil {
			return err
		}
		var drop [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var o GatewayRecord
			if string(k) == g.ID {
				return nil
			}
			if err := jsonUnmarshal(v, &o); err != nil {
				// A damaged row of this statistics table is dropped, not
				// kept to fail every heartbeat.
				drop = append(drop, slices.Clone(k))
				return nil
			}
			age := now.Sub(o.LastSeen)
			if age > prune || age > replace && o.Host == g.Host && o.Address == g.Address {
				drop = append(drop, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return putJSON(b, g.ID, g)
	})
}

// Gateways lists the registered gateways by host, address and id, with
// Since set.
func (c *Catalog) Gateways() ([]GatewayRecord, error) {
	var out []GatewayRecord
	now := time.Now()
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGateways)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var g GatewayRecord
			if err := json.Unmarshal(v, &g); err != nil {
				return nil // dropped at the next heartbeat
			}
			g.Since = max(now.Sub(g.LastSeen), 0)
			out = append(out, g)
			return nil
		})
	})
	sortGateways(out)
	return out, err
}
