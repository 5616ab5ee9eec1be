package index

import (
	"crypto/sha256"
	"testing"
	"time"
)

// A rotation stores the successor: the new secret looks it up, with the
// old token's cluster and scopes, and the old secret still finds the old
// record until its grace expiry.
func TestRotatedTokenIsStored(t *testing.T) {
	c, _ := openTest(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h1, h2 := sha256.Sum256([]byte("1")), sha256.Sum256([]byte("2"))
	if err := c.AddToken(h1, Token{ID: "t1", Cluster: "db", Scopes: []Scope{ScopePush}, Created: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.RotateToken("t1", h2, Token{ID: "t2", Created: now}, now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	next, err := c.LookupToken(h2)
	if err != nil || next.ID != "t2" || next.Cluster != "db" || !next.Has(ScopePush) || next.RotatedFrom != "t1" {
		t.Fatalf("the successor's secret finds %+v (%v)", next, err)
	}
	if old, err := c.LookupToken(h1); err != nil || old.ID != "t1" || old.Successor != "t2" || !old.Expires.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("the old secret finds %+v (%v)", old, err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}
