package index

import (
	"encoding/hex"
	"errors"
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
//
// A token acts on its Cluster only, whatever its scopes. A fleet-wide
// admin token (AllClusters, admin scope only) acts on every cluster and is
// the only kind that opens the fleet-wide dashboard pages. Records written
// before AllClusters, Expires, Successor and RotatedFrom existed load with
// their zero values: bound to their cluster, never expiring.
type Token struct {
	ID      string    `json:"id"`
	Cluster string    `json:"cluster"`
	Scopes  []Scope   `json:"scopes"`
	Created time.Time `json:"created"`
	Comment string    `json:"comment,omitempty"`
	// AllClusters makes an admin token fleet-wide (Cluster is then "").
	AllClusters bool `json:"all_clusters,omitempty"`
	// Expires is when the token stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// Successor is the ID of the token that replaced this one by
	// rotation; RotatedFrom the ID of the one it replaced.
	Successor   string `json:"successor,omitempty"`
	RotatedFrom string `json:"rotated_from,omitempty"`
}

// ErrTokenExpired is returned by Token.Valid for a token past its expiry.
var ErrTokenExpired = errors.New("expired")

// Valid reports whether the token may be used at now: an error wrapping
// ErrTokenExpired once its expiry has passed.
func (t Token) Valid(now time.Time) error {
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return fmt.Errorf("token %s %w at %s", t.ID, ErrTokenExpired, t.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Covers reports whether the token may act on cluster.
func (t Token) Covers(cluster string) bool {
	return t.AllClusters || t.Cluster == cluster
}

// Target names what the token acts on: its cluster, or "all clusters".
func (t Token) Target() string {
	if t.AllClusters {
		return "all clusters"
	}
	return t.Cluster
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
		if t.AllClusters {
			if t.Cluster != "" {
				return fmt.Errorf("token %s: a fleet-wide token names no cluster (got %q)", t.ID, t.Cluster)
			}
			return putJSON(b, key, t)
		}
		if _, err := ensureCluster(tx, t.Cluster); err != nil {
			return err
		}
		return putJSON(b, key, t)
	})
}

// RotateToken stores next (under nextHash) as the successor of the token
// whose ID is id, in one transaction: next gets the old token's cluster,
// scopes and comment, and the old token stays valid until oldUntil (or
// its own earlier expiry). It returns the old token's updated record and
// the new one's. A token already replaced cannot be rotated again: rotate
// its successor.
func (c *Catalog) RotateToken(id string, nextHash [32]byte, next Token, oldUntil time.Time) (Token, Token, error) {
	var old Token
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		oldKey, t, err := tokenByID(b, id)
		if err != nil {
			return err
		}
		old = t
		if old.Successor != "" {
			return fmt.Errorf("token %s was already rotated to %s: rotate that one", id, old.Successor)
		}
		key := hex.EncodeToString(nextHash[:])
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("token %s already exists", next.ID)
		}
		next.Cluster, next.AllClusters, next.Scopes, next.Comment = old.Cluster, old.AllClusters, old.Scopes, old.Comment
		next.RotatedFrom = old.ID
		old.Successor = next.ID
		if old.Expires.IsZero() || oldUntil.Before(old.Expires) {
			old.Expires = oldUntil
		}
		if err := putJSON(b, string(oldKey), old); err != nil {
			return err
		}
		return putJSON(b, key, next)
	})
	return old, next, err
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
		key, _, err := tokenByID(b, id)
		if err != nil {
			return err
		}
		return b.Delete(key)
	})
}

// tokenByID finds the record whose ID is id in the tokens bucket and
// returns its key (copied out of bbolt) and the record.
func tokenByID(b *bolt.Bucket, id string) ([]byte, Token, error) {
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		var t Token
		if err := jsonUnmarshal(v, &t); err != nil {
			return nil, Token{}, err
		}
		if t.ID == id {
			return append([]byte(nil), k...), t, nil
		}
	}
	return nil, Token{}, fmt.Errorf("token %s: %w", id, ErrNotFound)
}
