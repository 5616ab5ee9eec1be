package index

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Scope is what a token may do.
type Scope string

// Scopes.
const (
	ScopePush  Scope = "push"  // archive WAL, push backups
	ScopeFetch Scope = "fetch" // restore WAL and backups
	ScopeAdmin Scope = "admin" // storage-team verbs: delete, retention
)

// ParseScopes reads a comma-separated scope list ("push,fetch").
func ParseScopes(s string) ([]Scope, error) {
	seen := map[Scope]bool{}
	var out []Scope
	for _, part := range strings.Split(s, ",") {
		sc := Scope(strings.TrimSpace(part))
		switch sc {
		case ScopePush, ScopeFetch, ScopeAdmin:
		default:
			return nil, fmt.Errorf("unknown scope %q: use push, fetch and/or admin, comma-separated", sc)
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Token is a token's catalog record. The token itself is never stored,
// only its SHA-256.
type Token struct {
	ID      string    `json:"id"`
	Cluster string    `json:"cluster"`
	Scopes  []Scope   `json:"scopes"`
	Created time.Time `json:"created"`
	Comment string    `json:"comment,omitempty"`
}

// Has reports whether the token carries scope s.
func (t Token) Has(s Scope) bool {
	for _, x := range t.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// AddToken stores a token record under the token's hash.
func (c *Catalog) AddToken(hash [32]byte, t Token) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		key := hex.EncodeToString(hash[:])
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("token %s already exists", t.ID)
		}
		if _, err := ensureCluster(tx, t.Cluster); err != nil {
			return err
		}
		return putJSON(b, key, t)
	})
}

// LookupToken finds the record of the token with this hash.
func (c *Catalog) LookupToken(hash [32]byte) (Token, error) {
	var t Token
	err := c.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketTokens), hex.EncodeToString(hash[:]), &t)
		if err == nil && !ok {
			err = fmt.Errorf("token: %w", ErrNotFound)
		}
		return err
	})
	return t, err
}

// ListTokens returns every token record, by cluster then ID.
func (c *Catalog) ListTokens() ([]Token, error) {
	var out []Token
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var t Token
			if err := jsonUnmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// RevokeToken deletes the token whose ID is id.
func (c *Catalog) RevokeToken(id string) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			var t Token
			if err := jsonUnmarshal(v, &t); err != nil {
				return err
			}
			if t.ID == id {
				return b.Delete(k)
			}
		}
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	})
}
