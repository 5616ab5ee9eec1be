package stores_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/backendtest"
)

// A write that reaches fewer backends than the group's ack policy is an
// error: under a count policy when stand-ins cannot make up the count,
// under primary or all when one of the required backends fails.
func TestPutObjectBelowAckPolicyFails(t *testing.T) {
	for _, c := range []struct {
		ack  string
		down []string
	}{
		{"primary", []string{"a"}},
		{"all", []string{"c"}},
		{"2", []string{"b", "c"}},
		{"3", []string{"c"}},
	} {
		t.Run(fmt.Sprintf("ack %s, %v down", c.ack, c.down), func(t *testing.T) {
			set, _, faults := openFaultySet(t, c.ack, "a", "b", "c")
			for _, n := range c.down {
				faults[n].SetDown(true)
			}
			g, err := set.GroupFor(testCluster)
			if err != nil {
				t.Fatal(err)
			}
			body := bytes.Repeat([]byte("segment "), 10000)
			w, err := set.PutObject(context.Background(), g, testCluster+"/wal_005/000000010000000000000001", bytes.NewReader(body), int64(len(body)), backends.PutOptions{})
			if err == nil {
				t.Fatalf("a write held by %v was acknowledged under ack %s", w.Held, c.ack)
			}
		})
	}
}

// A body that fails after its last byte (a hash found wrong at the end,
// a connection cut before the request completed) leaves nothing on any
// backend of a teed write: no object a later rebuild would catalog.
func TestTeeBodyFailingAtTheEndStoresNothing(t *testing.T) {
	set, _, _ := openFaultySet(t, "all", "a", "b", "c")
	g, err := set.GroupFor(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("segment "), 100000)
	key := testCluster + "/wal_005/000000010000000000000001"
	bad := errors.New("the body's SHA-256 is not the one announced")
	_, err = set.PutObject(context.Background(), g, key, backendtest.FailingReader(bytes.NewReader(body), int64(len(body)), bad), int64(len(body)), backends.PutOptions{})
	if !errors.Is(err, bad) {
		t.Fatalf("a failed body: %v", err)
	}
	for _, n := range []string{"a", "b", "c"} {
		be, _ := set.Backend(n)
		if _, err := be.Stat(context.Background(), key); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("backend %s holds the object of a failed body: %v", n, err)
		}
	}
}
