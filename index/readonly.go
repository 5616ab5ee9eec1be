package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OpenReadOnly opens an existing catalog for reading only: not a byte of
// the file changes (a lifecycle plan, which "changes nothing"). It waits up
// to timeout while a writer (a running gateway) holds the file. A catalog
// this walgate must first upgrade (another schema, brief records not yet
// filled in) is refused: opening it with Open once upgrades it.
func OpenReadOnly(path string, timeout time.Duration) (*Catalog, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("catalog %s is locked by another process (is a gateway running on this data directory?)", path)
		}
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	c := &Catalog{db: db, path: path}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketTokens) == nil || tx.Bucket(bucketClusters) == nil {
			return fmt.Errorf("%w: catalog %s is not initialised; open it read-write first", ErrSchema, path)
		}
		var got int
		if v := meta.Get(keySchema); v == nil || json.Unmarshal(v, &got) != nil || got != SchemaVersion {
			return fmt.Errorf("%w: file has schema %s, this walgate reads %d", ErrSchema, meta.Get(keySchema), SchemaVersion)
		}
		clusters := tx.Bucket(bucketClusters)
		return clusters.ForEachBucket(func(name []byte) error {
			if clusters.Bucket(name).Bucket(bucketWALBrief) == nil {
				return fmt.Errorf("%w: cluster %s has no brief records yet; start the gateway once to add them", ErrSchema, name)
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}
