package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keySystem holds a cluster's ClusterSystem record, beside keyCreated in
// clusters/<name>/.
var keySystem = []byte("system")

// ClusterSystem is the PostgreSQL system a cluster name belongs to: the
// first system identifier that a WAL push or a backup commit carried.
// pg_upgrade and initdb make a new system; it archives under a new name.
type ClusterSystem struct {
	SystemIdentifier uint64    `json:"system_identifier"`
	Since            time.Time `json:"since"`  // when it was recorded
	Source           string    `json:"source"` // what carried it first, e.g. "WAL 000000010000000000000003"
}

// ClaimSystem records claim as the system of cluster unless one is
// recorded, atomically, and returns the record the catalog holds
// afterwards: the caller compares its identifier with claim's. It creates
// the cluster's record when there is none.
func (c *Catalog) ClaimSystem(cluster string, claim ClusterSystem) (ClusterSystem, error) {
	if claim.SystemIdentifier == 0 {
		return ClusterSystem{}, fmt.Errorf("catalog: system identifier 0 is not an identifier")
	}
	// The record is written once per cluster: read it without a write
	// transaction (whose commit syncs the file) on every later push.
	if cur, err := c.System(cluster); err == nil || !errors.Is(err, ErrNotFound) {
		return cur, err
	}
	cur := claim
	err := c.db.Update(func(tx *bolt.Tx) error {
		cb, err := ensureCluster(tx, cluster)
		if err != nil {
			return err
		}
		if data := cb.Get(keySystem); data != nil {
			return jsonUnmarshal(data, &cur)
		}
		return putJSON(cb, string(keySystem), claim)
	})
	if err != nil {
		return ClusterSystem{}, err
	}
	return cur, nil
}

// System returns the system recorded for cluster, or ErrNotFound when none
// is (a new cluster, a catalog from before the record, or only objects
// without an identifier so far).
func (c *Catalog) System(cluster string) (ClusterSystem, error) {
	var s ClusterSystem
	err := c.db.View(func(tx *bolt.Tx) error {
		cb := clusterBucket(tx, cluster)
		if cb == nil {
			return ErrNotFound
		}
		data := cb.Get(keySystem)
		if data == nil {
			return ErrNotFound
		}
		return jsonUnmarshal(data, &s)
	})
	return s, err
}

// checkSystem is Catalog.Check's look at a cluster's system record: when
// present it decodes and names an identifier.
func checkSystem(cb *bolt.Bucket, cluster []byte) string {
	v := cb.Get(keySystem)
	if v == nil {
		return ""
	}
	var s ClusterSystem
	if err := json.Unmarshal(v, &s); err != nil || !CheckSystemRecord(s) {
		return fmt.Sprintf("cluster %s: damaged system record", cluster)
	}
	return ""
}
