package index

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) (*Catalog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func walObj(name, cid string) WALObject {
	return WALObject{Name: name, Key: "db/wal_005/" + name + ".zst", Backend: "local", Size: 10,
		SHA256: strings.Repeat("a", 64), ContentID: cid, PlainSize: 16, Compression: "zstd", Encryption: "none",
		StoredAt: time.Now().UTC()}
}

func TestTokens(t *testing.T) {
	c, _ := openTest(t)
	h := sha256.Sum256([]byte("secret"))
	tok := Token{ID: "abc", Cluster: "db", Scopes: []Scope{ScopeFetch, ScopePush}, Created: time.Now().UTC()}
	if err := c.AddToken(h, tok); err != nil {
		t.Fatal(err)
	}
	if err := c.AddToken(h, tok); err == nil {
		t.Fatal("same hash added twice")
	}
	got, err := c.LookupToken(h)
	if err != nil || got.Cluster != "db" || !got.Has(ScopePush) || got.Has(ScopeAdmin) {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if _, err := c.LookupToken(sha256.Sum256([]byte("other"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if err := c.RevokeToken("abc"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupToken(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked token still found: %v", err)
	}
	if err := c.RevokeToken("abc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestParseScopes(t *testing.T) {
	s, err := ParseScopes("push, fetch,push")
	if err != nil || len(s) != 2 || s[0] != ScopeFetch || s[1] != ScopePush {
		t.Fatalf("%v %v", s, err)
	}
	for _, bad := range []string{"", "read", "push,,fetch", "PUSH"} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAddWALOnceAndOrder(t *testing.T) {
	c, path := openTest(t)
	names := []string{"000000020000000000000001", "000000010000000000000003", "00000002.history", "000000010000000000000001"}
	for _, n := range names {
		if _, added, err := c.AddWAL("db", walObj(n, "sha256:"+n)); err != nil || !added {
			t.Fatalf("%s: added=%v err=%v", n, added, err)
		}
	}
	cur, added, err := c.AddWAL("db", walObj(names[0], "sha256:different"))
	if err != nil || added || cur.ContentID != "sha256:"+names[0] {
		t.Fatalf("second add replaced the record: %+v added=%v err=%v", cur, added, err)
	}
	var got []string
	if err := c.ListWAL("db", "", func(o WALObject) error { got = append(got, o.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	want := "000000010000000000000001 000000010000000000000003 00000002.history 000000020000000000000001"
	if strings.Join(got, " ") != want {
		t.Fatalf("order: %v", got)
	}
	if _, err := c.WAL("other", names[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other cluster sees the record: %v", err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	// Survives a reopen; a second opener waits for the lock, then fails clearly.
	if _, err := Open(path, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v", err)
	}
	c.Close()
	c2, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if o, err := c2.WAL("db", names[1]); err != nil || o.Key != walObj(names[1], "").Key {
		t.Fatalf("after reopen: %+v %v", o, err)
	}
}

func TestConcurrentAddWAL(t *testing.T) {
	c, _ := openTest(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, added, err := c.AddWAL("db", walObj("000000010000000000000009", fmt.Sprintf("sha256:%d", i)))
			if err != nil {
				t.Error(err)
			}
			if added {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d winners, want 1", winners)
	}
}

func TestCheckFindsDamage(t *testing.T) {
	c, _ := openTest(t)
	bad := walObj("000000010000000000000001", "")
	if _, _, err := c.AddWAL("db", bad); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err == nil {
		t.Fatal("Check passed a record without content ID")
	}
}
