package index

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// EnqueueRepair queues the repair of cp.Backend's copy of cp.Key unless the
// queue already holds one: one entry per object and backend, however often
// the damage is seen. A plain copy of the same key already queued becomes
// the repair. It reports whether a new entry was added.
func (c *Catalog) EnqueueRepair(cp Copy) (bool, error) {
	cp.Repair = true
	added := false
	err := c.db.Update(func(tx *bolt.Tx) error {
		if b := queueBucket(tx, cp.Backend); b != nil {
			quoted, err := jsonMarshal(cp.Key)
			if err != nil {
				return err
			}
			needle := append([]byte(`"key":`), quoted...)
			cur := b.Cursor()
			for k, v := cur.First(); k != nil; k, v = cur.Next() {
				if !bytes.Contains(v, needle) {
					continue
				}
				var q Copy
				if err := jsonUnmarshal(v, &q); err != nil || q.Key != cp.Key {
					continue
				}
				if q.Repair {
					return nil
				}
				q.Repair = true
				data, err := jsonMarshal(q)
				if err != nil {
					return err
				}
				return b.Put(k, data)
			}
		}
		added = true
		return enqueue(tx, []Copy{cp})
	})
	if err != nil {
		return false, err
	}
	return added, nil
}
