package index

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// WALObject is the catalog record of one archived WAL file (segment,
// timeline history, backup history or partial segment) of a cluster.
type WALObject struct {
	Name        string    `json:"name"`               // PostgreSQL's file name, the catalog key
	Key         string    `json:"key"`                // object key in the backend
	Backend     string    `json:"backend"`            // backend the push wrote first
	Backends    []string  `json:"backends,omitempty"` // every backend that holds it (see Holders)
	Size        int64     `json:"size"`               // stored (compressed, encrypted) bytes
	SHA256      string    `json:"sha256"`             // hex SHA-256 of the stored bytes
	ContentID   string    `json:"content_id"`         // client's plaintext identity
	PlainSize   int64     `json:"plain_size"`         // plaintext bytes
	Compression string    `json:"compression"`        // zstd, lz4, brotli, none
	Encryption  string    `json:"encryption"`         // libsodium, none
	StoredAt    time.Time `json:"stored_at"`          // when the catalog committed it
	TokenID     string    `json:"token_id"`           // who pushed it
	// Classes holds the storage class of copies not in their backend's
	// default class, by backend name (lifecycle tiering).
	Classes map[string]string `json:"classes,omitempty"`
	// TimelineParent and SwitchLSN are what a timeline history file says
	// of its timeline: it branched from TimelineParent at SwitchLSN (0:
	// not a history file, or not known).
	TimelineParent uint32 `json:"timeline_parent,omitempty"`
	SwitchLSN      uint64 `json:"switch_lsn,omitempty"`
	// KeyFingerprint names the key the object was sealed with ("":
	// unknown or unencrypted); the gateway keeps it, never the key.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
}

// Cluster is a cluster's catalog record.
type Cluster struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

func ensureCluster(tx *bolt.Tx, name string) (*bolt.Bucket, error) {
	cb, err := tx.Bucket(bucketClusters).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, err
	}
	if cb.Get(keyCreated) == nil {
		if err := cb.Put(keyCreated, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			return nil, err
		}
	}
	if _, err := cb.CreateBucketIfNotExists(bucketWAL); err != nil {
		return nil, err
	}
	// Every cluster's briefs exist from Open on (see fillBriefs).
	if _, err := cb.CreateBucketIfNotExists(bucketWALBrief); err != nil {
		return nil, err
	}
	return cb, nil
}

func walBucket(tx *bolt.Tx, cluster string) *bolt.Bucket {
	cb := tx.Bucket(bucketClusters).Bucket([]byte(cluster))
	if cb == nil {
		return nil
	}
	return cb.Bucket(bucketWAL)
}

// AddWALBatch records objs for cluster in one transaction, skipping names
// the catalog already holds (a catalog rebuild, a benchmark's seeding).
func (c *Catalog) AddWALBatch(cluster string, objs []WALObject) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		cb, err := ensureCluster(tx, cluster)
		if err != nil {
			return err
		}
		b := cb.Bucket(bucketWAL)
		for _, o := range objs {
			if b.Get([]byte(o.Name)) != nil {
				continue
			}
			if err := putWALRecord(cb, o); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddWAL records obj for cluster unless a record of that name exists. It
// returns the record that is in the catalog afterwards and whether it is
// the one just added. The caller compares ContentIDs to tell a harmless
// re-push from a conflict.
func (c *Catalog) AddWAL(cluster string, obj WALObject) (WALObject, bool, error) {
	return c.AddWALCopies(cluster, obj, nil)
}

// AddWALCopies is AddWAL that also queues copies of the object to other
// backends, in the same transaction; nothing is queued when the name
// existed.
func (c *Catalog) AddWALCopies(cluster string, obj WALObject, copies []Copy) (WALObject, bool, error) {
	var existing WALObject
	added := false
	err := c.db.Update(func(tx *bolt.Tx) error {
		cb, err := ensureCluster(tx, cluster)
		if err != nil {
			return err
		}
		b := cb.Bucket(bucketWAL)
		ok, err := getJSON(b, obj.Name, &existing)
		if err != nil || ok {
			return err
		}
		added = true
		existing = obj
		if err := putWALRecord(cb, obj); err != nil {
			return err
		}
		return enqueue(tx, copies)
	})
	return existing, added, err
}

// WAL returns the record of one WAL file, or ErrNotFound.
func (c *Catalog) WAL(cluster, name string) (WALObject, error) {
	var obj WALObject
	err := c.db.View(func(tx *bolt.Tx) error {
		b := walBucket(tx, cluster)
		if b == nil {
			return fmt.Errorf("WAL %s of cluster %s: %w", name, cluster, ErrNotFound)
		}
		ok, err := getJSON(b, name, &obj)
		if err == nil && !ok {
			err = fmt.Errorf("WAL %s of cluster %s: %w", name, cluster, ErrNotFound)
		}
		return err
	})
	return obj, err
}

// ListWAL calls fn for the cluster's WAL records with names >= from, in
// name order (which is timeline, then segment order). fn must not call back
// into the catalog for writes.
func (c *Catalog) ListWAL(cluster, from string, fn func(WALObject) error) error {
	return c.db.View(func(tx *bolt.Tx) error {
		b := walBucket(tx, cluster)
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.Seek([]byte(from)); k != nil; k, v = cur.Next() {
			var obj WALObject
			if err := jsonUnmarshal(v, &obj); err != nil {
				return err
			}
			if err := fn(obj); err != nil {
				return err
			}
		}
		return nil
	})
}

// Clusters lists every cluster the catalog knows, by name.
func (c *Catalog) Clusters() ([]Cluster, error) {
	var out []Cluster
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClusters).ForEachBucket(func(k []byte) error {
			cl := Cluster{Name: string(k)}
			if v := tx.Bucket(bucketClusters).Bucket(k).Get(keyCreated); v != nil {
				cl.Created, _ = time.Parse(time.RFC3339, string(v))
			}
			out = append(out, cl)
			return nil
		})
	})
	return out, err
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("catalog record is corrupt: %w", err)
	}
	return nil
}

// Check reads every record of the catalog and reports structural damage:
// undecodable records, a WAL record whose name differs from its key or
// lacks its object key, hash or sizes. Tests run it after each scenario;
// it does no storage I/O (the gateway checks objects against backends).
func (c *Catalog) Check() error {
	var problems []string
	err := c.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil || !CheckToken(t) {
				problems = append(problems, fmt.Sprintf("token record %.12s: damaged", k))
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketClusters).ForEachBucket(func(cluster []byte) error {
			if p := checkSystem(clusterBucket(tx, string(cluster)), cluster); p != "" {
				problems = append(problems, p)
			}
			b := walBucket(tx, string(cluster))
			if b == nil {
				problems = append(problems, fmt.Sprintf("cluster %s: no wal bucket", cluster))
				return nil
			}
			bb := clusterBucket(tx, string(cluster)).Bucket(bucketWALBrief)
			if bb == nil {
				problems = append(problems, fmt.Sprintf("cluster %s: no walbrief bucket", cluster))
				return nil
			}
			if nb, nw := bb.Stats().KeyN, b.Stats().KeyN; nb != nw {
				problems = append(problems, fmt.Sprintf("cluster %s: %d brief records for %d WAL records", cluster, nb, nw))
			}
			return b.ForEach(func(k, v []byte) error {
				var o WALObject
				if json.Unmarshal(v, &o) != nil {
					problems = append(problems, fmt.Sprintf("%s/%s: undecodable", cluster, k))
				} else if p := CheckWALRecord(string(cluster), string(k), o, bb.Get(k)); p != "" {
					problems = append(problems, p)
				}
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("catalog check: %d problems: %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}
