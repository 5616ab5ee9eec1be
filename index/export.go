package index

import bolt "go.etcd.io/bbolt"

// QueueBackends names every backend the replication queue holds copies
// for, in name order: what a copy of the whole catalog reads the queue of
// (Pending needs a backend's name, and a backend may have left the
// configuration with copies still queued).
func (c *Catalog) QueueBackends() ([]string, error) {
	var out []string
	err := c.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketReplication)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}
