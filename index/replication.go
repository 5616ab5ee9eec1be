package index

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The replication queue: replication/<backend>/<seq, 8 bytes big-endian>
// -> Copy (JSON). A copy is queued in the same transaction that records
// its object, so an acknowledged object is always either on a backend or
// queued for it; it leaves the queue in the transaction that records the
// backend as a holder.
var bucketReplication = []byte("replication")

// Kinds of queued copies.
const (
	CopyWAL        = "wal"
	CopyBackupFile = "backup-file"
	CopySentinel   = "sentinel"
)

// Copy is one object to copy to one backend.
type Copy struct {
	Seq      uint64            `json:"-"`
	Backend  string            `json:"-"`
	Cluster  string            `json:"cluster"`
	Kind     string            `json:"kind"`           // CopyWAL, CopyBackupFile, CopySentinel
	Name     string            `json:"name"`           // WAL file or backup name
	File     string            `json:"file,omitempty"` // backup file (CopyBackupFile)
	Key      string            `json:"key"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Metadata map[string]string `json:"metadata,omitempty"` // stored with the copy
	Enqueued time.Time         `json:"enqueued"`
	// Repair replaces a copy found damaged: it is written even when the
	// backend has an object under the key.
	Repair bool `json:"repair,omitempty"`

	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// enqueue adds copies inside tx, each under its backend in arrival order.
func enqueue(tx *bolt.Tx, copies []Copy) error {
	if len(copies) == 0 {
		return nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketReplication)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, cp := range copies {
		b, err := root.CreateBucketIfNotExists([]byte(cp.Backend))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if cp.Enqueued.IsZero() {
			cp.Enqueued = now
		}
		data, err := jsonMarshal(cp)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(seq), data); err != nil {
			return err
		}
	}
	return nil
}

// Enqueue queues copies on their own (a repair of a damaged copy, a
// rebuilt catalog's other backends).
func (c *Catalog) Enqueue(copies []Copy) error {
	return c.db.Update(func(tx *bolt.Tx) error { return enqueue(tx, copies) })
}

// Pending returns up to limit queued copies for backend in queue order
// (limit <= 0: all).
func (c *Catalog) Pending(backend string, limit int) ([]Copy, error) {
	var out []Copy
	err := c.db.View(func(tx *bolt.Tx) error {
		b := queueBucket(tx, backend)
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = cur.Next() {
			var cp Copy
			if err := jsonUnmarshal(v, &cp); err != nil {
				return fmt.Errorf("replication queue of %s: %w", backend, err)
			}
			cp.Seq, cp.Backend = binary.BigEndian.Uint64(k), backend
			out = append(out, cp)
		}
		return nil
	})
	return out, err
}

func queueBucket(tx *bolt.Tx, backend string) *bolt.Bucket {
	root := tx.Bucket(bucketReplication)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(backend))
}

// QueueStats summarises one backend's queue.
type QueueStats struct {
	Count       int
	Bytes       int64
	Oldest      time.Time // enqueue time of the oldest copy
	LastError   string
	LastErrorAt time.Time
	// ByCluster splits Count, Bytes and Oldest per cluster.
	ByCluster map[string]QueueStats
}

// QueueStats scans backend's queue.
func (c *Catalog) QueueStats(backend string) (QueueStats, error) {
	qs := QueueStats{ByCluster: map[string]QueueStats{}}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := queueBucket(tx, backend)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var cp Copy
			if err := jsonUnmarshal(v, &cp); err != nil {
				return err
			}
			qs.Add(cp)
			return nil
		})
	})
	return qs, err
}

// RetryCopy records a failed attempt and when to try again.
func (c *Catalog) RetryCopy(cp Copy, next time.Time, errMsg string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		b := queueBucket(tx, cp.Backend)
		if b == nil || b.Get(seqKey(cp.Seq)) == nil {
			return nil // completed or cancelled meanwhile
		}
		cp.Attempts++
		cp.NextAttempt = next.UTC()
		cp.LastError = errMsg
		cp.LastErrorAt = time.Now().UTC()
		data, err := jsonMarshal(cp)
		if err != nil {
			return err
		}
		return b.Put(seqKey(cp.Seq), data)
	})
}

// CompleteCopy removes a done copy from the queue and records its backend
// as a holder of the object, in one transaction. A copy whose object left
// the catalog meanwhile (a deleted backup) just leaves the queue.
func (c *Catalog) CompleteCopy(cp Copy) error {
	defer func() {
		if cp.Kind != CopyWAL {
			c.bump(cp.Cluster)
		}
	}()
	return c.db.Update(func(tx *bolt.Tx) error {
		if b := queueBucket(tx, cp.Backend); b != nil {
			if err := b.Delete(seqKey(cp.Seq)); err != nil {
				return err
			}
		}
		switch cp.Kind {
		case CopyWAL:
			cb := clusterBucket(tx, cp.Cluster)
			if cb == nil {
				return nil
			}
			b := cb.Bucket(bucketWAL)
			var obj WALObject
			if ok, err := getJSON(b, cp.Name, &obj); err != nil || !ok || !obj.AddCopy(cp) {
				return err
			}
			return putWALRecord(cb, obj)
		case CopyBackupFile, CopySentinel:
			bb, err := clusterSub(tx, cp.Cluster, bucketBackups, false)
			if err != nil || bb == nil {
				return err
			}
			var bk Backup
			if ok, err := getJSON(bb, cp.Name, &bk); err != nil || !ok {
				return err
			}
			if !bk.AddCopy(cp) {
				return nil
			}
			return putJSON(bb, cp.Name, bk)
		}
		return fmt.Errorf("replication queue: unknown kind %q", cp.Kind)
	})
}

// CancelCopies drops every queued copy of the given keys, on every backend
// (the objects are being deleted).
func (c *Catalog) CancelCopies(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketReplication)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			var del [][]byte
			if err := b.ForEach(func(k, v []byte) error {
				var cp Copy
				if err := jsonUnmarshal(v, &cp); err != nil {
					return err
				}
				if drop[cp.Key] {
					del = append(del, slices.Clone(k))
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func addHolder(holders []string, name string) []string {
	if slices.Contains(holders, name) {
		return holders
	}
	return append(slices.Clone(holders), name)
}

// Holders are the backends that hold the WAL object (older records name
// one, in Backend).
func (o WALObject) Holders() []string {
	if len(o.Backends) > 0 {
		return o.Backends
	}
	if o.Backend != "" {
		return []string{o.Backend}
	}
	return nil
}

// Holders are the backends that hold every object of the backup: those
// its sentinel reached (a replica gets the sentinel after the parts).
func (b Backup) Holders() []string {
	if len(b.Backends) > 0 {
		return b.Backends
	}
	if b.Backend != "" {
		return []string{b.Backend}
	}
	return nil
}

// Holders are the backends that hold the file; def is the backup's
// backend, for records written before files listed theirs.
func (f BackupFile) Holders(def string) []string {
	if len(f.Backends) > 0 {
		return f.Backends
	}
	if def != "" {
		return []string{def}
	}
	return nil
}
