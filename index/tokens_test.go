package index

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A record written before fleet-wide tokens, expiry and rotation loads
// as a token bound to its cluster that never expires.
func TestTokenRecordFromBefore(t *testing.T) {
	c, _ := openTest(t)
	h := sha256.Sum256([]byte("old"))
	old := `{"id":"0123456789ab","cluster":"main","scopes":["admin"],"created":"2025-01-02T03:04:05Z","comment":"ops"}`
	if err := c.db.Update(func(tx *bolt.Tx) error {
		if _, err := ensureCluster(tx, "main"); err != nil {
			return err
		}
		return tx.Bucket(bucketTokens).Put([]byte(hex.EncodeToString(h[:])), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	got, err := c.LookupToken(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.AllClusters || !got.Covers("main") || got.Covers("mainx") || got.Valid(time.Now().AddDate(100, 0, 0)) != nil || got.Successor != "" {
		t.Fatalf("old record: %+v", got)
	}
}

// Rotation in one transaction: the successor takes the old token's
// cluster, scopes and comment; the old one gets the grace expiry (or
// keeps an earlier one) and names its successor; it cannot be rotated
// twice. Expiry is exact at the instant.
func TestRotateToken(t *testing.T) {
	c, _ := openTest(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h1, h2, h3 := sha256.Sum256([]byte("1")), sha256.Sum256([]byte("2")), sha256.Sum256([]byte("3"))
	if err := c.AddToken(h1, Token{ID: "t1", Cluster: "db", Scopes: []Scope{ScopePush}, Created: now, Comment: "host1", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	old, next, err := c.RotateToken("t1", h2, Token{ID: "t2", Created: now}, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !old.Expires.Equal(now.Add(time.Hour)) || old.Successor != "t2" || next.Cluster != "db" || next.Comment != "host1" || next.RotatedFrom != "t1" || !next.Has(ScopePush) {
		t.Fatalf("rotation: old %+v next %+v", old, next)
	}
	if got, _ := c.LookupToken(h1); got.Successor != "t2" {
		t.Fatalf("stored old record: %+v", got)
	}
	if _, _, err := c.RotateToken("t1", h3, Token{ID: "t3"}, now); err == nil || !strings.Contains(err.Error(), "t2") {
		t.Fatalf("second rotation of t1: %v", err)
	}
	if err := old.Valid(now.Add(time.Hour - time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if err := old.Valid(now.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "t1 expired") {
		t.Fatalf("at its expiry: %v", err)
	}
	// A fleet-wide token names no cluster and creates none.
	if err := c.AddToken(h3, Token{ID: "f", AllClusters: true, Scopes: []Scope{ScopeAdmin}}); err != nil {
		t.Fatal(err)
	}
	if cl, _ := c.Clusters(); len(cl) != 1 {
		t.Fatalf("clusters after a fleet-wide token: %+v", cl)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}
