package index

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrLocked: another process (a running gateway) holds the catalog file.
var ErrLocked = errors.New("catalog is locked by another process")

// OpenExclusive is Open for admin verbs that must tell a held lock from
// other failures: when the lock is not free within timeout the error wraps
// ErrLocked.
func OpenExclusive(path string, timeout time.Duration) (*Catalog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("catalog %s: %w", path, ErrLocked)
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

// TokenRecords returns every token record keyed by the token's SHA-256:
// what a catalog rebuild carries over, since tokens live in no store.
func (c *Catalog) TokenRecords() (map[[32]byte]Token, error) {
	out := map[[32]byte]Token{}
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var h [32]byte
			if n, err := hex.Decode(h[:], k); err != nil || n != len(h) {
				return fmt.Errorf("token record %.12s: key is not a SHA-256", k)
			}
			var t Token
			if err := jsonUnmarshal(v, &t); err != nil {
				return err
			}
			out[h] = t
			return nil
		})
	})
	return out, err
}
