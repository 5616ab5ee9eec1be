package index

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Check reports a token record that grants nothing (no scope) as damaged,
// and passes the same record with one scope.
func TestCheckRefusesTokenWithoutScopes(t *testing.T) {
	for _, tc := range []struct {
		record  string
		damaged bool
	}{
		{`{"id":"0123456789ab","cluster":"main","scopes":[],"created":"2025-01-02T03:04:05Z"}`, true},
		{`{"id":"0123456789ab","cluster":"main","created":"2025-01-02T03:04:05Z"}`, true},
		{`{"id":"0123456789ab","cluster":"main","scopes":["fetch"],"created":"2025-01-02T03:04:05Z"}`, false},
	} {
		c, _ := openTest(t)
		h := sha256.Sum256([]byte("secret"))
		if err := c.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketTokens).Put([]byte(hex.EncodeToString(h[:])), []byte(tc.record))
		}); err != nil {
			t.Fatal(err)
		}
		err := c.Check()
		if got := err != nil && strings.Contains(err.Error(), "token record "+hex.EncodeToString(h[:])[:12]+": damaged"); got != tc.damaged {
			t.Errorf("token %s: Check says %v; want damaged %v", tc.record, err, tc.damaged)
		}
	}
}
