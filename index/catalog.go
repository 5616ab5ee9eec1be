package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the catalog layout this code reads and writes.
const SchemaVersion = 1

// Errors returned by the catalog; test with errors.Is.
var (
	ErrNotFound = errors.New("not in the catalog")
	ErrSchema   = errors.New("catalog schema not supported")
	ErrExists   = errors.New("already in the catalog")
	// ErrUnavailable: the catalog's database cannot be reached or did not
	// answer in time; nothing was changed that the caller may rely on.
	// The gateway answers 503 and acknowledges nothing.
	ErrUnavailable = errors.New("catalog unavailable")
)

// Top-level buckets. Per-cluster data lives in nested buckets under
// clusters/<name>/.
var (
	bucketMeta     = []byte("meta")
	bucketTokens   = []byte("tokens")
	bucketClusters = []byte("clusters")
	bucketWAL      = []byte("wal")
	keySchema      = []byte("schema")
	keyCreated     = []byte("created")
)

// Catalog is the open catalog file. It is safe for concurrent use.
type Catalog struct {
	db   *bolt.DB
	path string

	genMu sync.Mutex
	gens  map[string]uint64 // per cluster: bumped by every backup or drill write

	claims     claims // WAL names being written (ClaimWAL)
	copyClaims claims // queued copies being made (ClaimCopies), by backend and seq
}

// Generation is a number that changes whenever a backup or drill record
// of cluster is written through this Catalog: callers cache what they
// derive from those records and recompute when it moves.
func (c *Catalog) Generation(cluster string) uint64 {
	c.genMu.Lock()
	defer c.genMu.Unlock()
	return c.gens[cluster]
}

func (c *Catalog) bump(cluster string) {
	c.genMu.Lock()
	if c.gens == nil {
		c.gens = map[string]uint64{}
	}
	c.gens[cluster]++
	c.genMu.Unlock()
}

// Open opens or creates the catalog at path. A second process opening the
// same file waits up to timeout for the lock, then fails.
func Open(path string, timeout time.Duration) (*Catalog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("catalog %s is locked by another process (is a gateway running on this data directory?)", path)
		}
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	c := &Catalog{db: db, path: path}
	if err := c.init(); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

func (c *Catalog) init() error {
	return c.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil {
			var got int
			if err := json.Unmarshal(v, &got); err != nil || got != SchemaVersion {
				return fmt.Errorf("%w: file has schema %s, this walgate reads %d", ErrSchema, v, SchemaVersion)
			}
		} else {
			if err := meta.Put(keySchema, []byte(fmt.Sprint(SchemaVersion))); err != nil {
				return err
			}
			if err := meta.Put(keyCreated, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketTokens, bucketClusters} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		// Catalogs from before brief records get them here, once.
		clusters := tx.Bucket(bucketClusters)
		return clusters.ForEachBucket(func(name []byte) error {
			if err := fillBriefs(clusters.Bucket(name)); err != nil {
				return fmt.Errorf("cluster %s: %w", name, err)
			}
			return nil
		})
	})
}

// Path is the catalog file's path.
func (c *Catalog) Path() string { return c.path }

// Close closes the catalog file.
func (c *Catalog) Close() error { return c.db.Close() }

// SizeBytes is the catalog file's current size.
func (c *Catalog) SizeBytes() int64 {
	var n int64
	_ = c.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// getJSON decodes the value under key into v; false when absent. The
// value is copied out by json.Unmarshal, so no bbolt memory escapes.
func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	return true, json.Unmarshal(data, v)
}
