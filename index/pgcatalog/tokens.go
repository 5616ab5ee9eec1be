package pgcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

// AddToken stores a token record under the token's hash.
func (c *Catalog) AddToken(hash [32]byte, t index.Token) error {
	return c.tx("adding token "+t.ID, func(ctx context.Context, tx pgx.Tx) error {
		data, err := json.Marshal(t)
		if err != nil {
			return err
		}
		if t.AllClusters {
			if t.Cluster != "" {
				return fmt.Errorf("token %s: a fleet-wide token names no cluster (got %q)", t.ID, t.Cluster)
			}
		} else if err := ensureCluster(ctx, tx, t.Cluster); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO walgate.tokens (hash, id, cluster, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (hash) DO NOTHING`, hash[:], t.ID, t.Cluster, data)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("token %s already exists", t.ID)
		}
		return nil
	})
}

// RotateToken stores next (under nextHash) as the successor of the token
// whose ID is id, in one transaction: next gets the old token's cluster,
// scopes and comment, and the old token stays valid until oldUntil (or
// its own earlier expiry). It returns the old token's updated record and
// the new one's. A token already replaced cannot be rotated again: rotate
// its successor. The old token's row is locked, so that of two rotations
// at once through different gateways one fails.
func (c *Catalog) RotateToken(id string, nextHash [32]byte, next index.Token, oldUntil time.Time) (index.Token, index.Token, error) {
	var old index.Token
	err := c.tx("rotating token "+id, func(ctx context.Context, tx pgx.Tx) error {
		var oldHash, rec []byte
		err := tx.QueryRow(ctx, `SELECT hash, record FROM walgate.tokens WHERE id = $1 ORDER BY hash LIMIT 1 FOR UPDATE`, id).Scan(&oldHash, &rec)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, index.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := decode(rec, &old); err != nil {
			return err
		}
		if old.Successor != "" {
			return fmt.Errorf("token %s was already rotated to %s: rotate that one", id, old.Successor)
		}
		next.Cluster, next.AllClusters, next.Scopes, next.Comment = old.Cluster, old.AllClusters, old.Scopes, old.Comment
		next.RotatedFrom = old.ID
		old.Successor = next.ID
		if old.Expires.IsZero() || oldUntil.Before(old.Expires) {
			old.Expires = oldUntil
		}
		nextRec, err := json.Marshal(next)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO walgate.tokens (hash, id, cluster, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (hash) DO NOTHING`, nextHash[:], next.ID, next.Cluster, nextRec)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("token %s already exists", next.ID)
		}
		oldRec, err := json.Marshal(old)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE walgate.tokens SET record = $2 WHERE hash = $1`, oldHash, oldRec)
		return err
	})
	if err != nil {
		return index.Token{}, index.Token{}, err
	}
	return old, next, nil
}

// LookupToken finds the record of the token with this hash.
func (c *Catalog) LookupToken(hash [32]byte) (index.Token, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	var rec []byte
	var t index.Token
	err := c.pool.QueryRow(ctx, `SELECT record FROM walgate.tokens WHERE hash = $1`, hash[:]).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("token: %w", index.ErrNotFound)
	}
	if err != nil {
		return t, c.wrap("token", err)
	}
	return t, decode(rec, &t)
}

// ListTokens returns every token record, by cluster then ID.
func (c *Catalog) ListTokens() ([]index.Token, error) {
	recs, err := c.TokenRecords()
	if err != nil {
		return nil, err
	}
	out := make([]index.Token, 0, len(recs))
	for _, t := range recs {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// TokenRecords returns every token record keyed by the token's SHA-256.
func (c *Catalog) TokenRecords() (map[[32]byte]index.Token, error) {
	out := map[[32]byte]index.Token{}
	err := c.scan("listing tokens", `SELECT hash, record FROM walgate.tokens`, nil, func(rows pgx.Rows) error {
		var h, rec []byte
		if err := rows.Scan(&h, &rec); err != nil {
			return err
		}
		var key [32]byte
		if len(h) != len(key) {
			return fmt.Errorf("token record %.12x: key is not a SHA-256", h)
		}
		copy(key[:], h)
		var t index.Token
		if err := decode(rec, &t); err != nil {
			return err
		}
		out[key] = t
		return nil
	})
	return out, err
}

// RevokeToken deletes the token whose ID is id.
func (c *Catalog) RevokeToken(id string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	tag, err := c.pool.Exec(ctx, `DELETE FROM walgate.tokens WHERE hash = (SELECT hash FROM walgate.tokens WHERE id = $1 ORDER BY hash LIMIT 1)`, id)
	if err != nil {
		return c.wrap("revoking token "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %s: %w", id, index.ErrNotFound)
	}
	return nil
}

// ClaimSystem records claim as the system of cluster unless one is
// recorded, atomically, and returns the record the catalog holds
// afterwards.
func (c *Catalog) ClaimSystem(cluster string, claim index.ClusterSystem) (index.ClusterSystem, error) {
	if claim.SystemIdentifier == 0 {
		return index.ClusterSystem{}, fmt.Errorf("catalog: system identifier 0 is not an identifier")
	}
	if cur, err := c.System(cluster); err == nil || !errors.Is(err, index.ErrNotFound) {
		return cur, err
	}
	cur := claim
	err := c.tx("recording the system of cluster "+cluster, func(ctx context.Context, tx pgx.Tx) error {
		if err := ensureCluster(ctx, tx, cluster); err != nil {
			return err
		}
		data, err := json.Marshal(claim)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE walgate.clusters SET system = $2 WHERE name = $1 AND system IS NULL`, cluster, data); err != nil {
			return err
		}
		var rec []byte
		if err := tx.QueryRow(ctx, `SELECT system FROM walgate.clusters WHERE name = $1`, cluster).Scan(&rec); err != nil {
			return err
		}
		return decode(rec, &cur)
	})
	if err != nil {
		return index.ClusterSystem{}, err
	}
	return cur, nil
}

// System returns the system recorded for cluster, or index.ErrNotFound.
func (c *Catalog) System(cluster string) (index.ClusterSystem, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	var rec []byte
	var s index.ClusterSystem
	err := c.pool.QueryRow(ctx, `SELECT system FROM walgate.clusters WHERE name = $1`, cluster).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && rec == nil {
		return s, index.ErrNotFound
	}
	if err != nil {
		return s, c.wrap("system of cluster "+cluster, err)
	}
	return s, decode(rec, &s)
}
