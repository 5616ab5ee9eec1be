package gateway_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index/layout"
)

// TestWALWriteIsConditional: with stores shared by several gateways, the
// WAL write to the final name never replaces an object the catalog does
// not list. The same object already
// there (an acknowledgement lost after the write) counts as stored; a
// different young one gets 503 and stays as it was; one older than the
// orphan age is removed and the retry stores the push.
func TestWALWriteIsConditional(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{Log: testLog(), Config: gateway.Config{SharedStores: true}})
	be, ok := e.g.Server.Stores().Backend("local")
	if !ok {
		t.Fatalf("no backend named local: %v", e.g.Server.Stores().Names())
	}
	ctx := context.Background()
	key := cluster + "/wal_005/" + seg1
	body := randBytes(t, 64<<10)
	md := map[string]string{layout.MetaSHA256: sha(body)}
	if _, err := be.Put(ctx, key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{Metadata: md}); err != nil {
		t.Fatal(err)
	}
	expect(t, "push over the same object", e.put(t, seg1, e.pushFetch, body), 201, "")
	if r := e.get(t, seg1, e.pushFetch); r.status != 200 || !bytes.Equal(r.body, body) {
		t.Fatalf("GET after a push over the same object: %d", r.status)
	}

	key2 := cluster + "/wal_005/" + seg2
	other := randBytes(t, 64<<10)
	if _, err := be.Put(ctx, key2, bytes.NewReader(other), int64(len(other)), backends.PutOptions{Metadata: map[string]string{layout.MetaSHA256: sha(other)}}); err != nil {
		t.Fatal(err)
	}
	expect(t, "push over a young unlisted object", e.put(t, seg2, e.pushFetch, body), 503, protocol.CodeUnavailable)
	if got, err := os.ReadFile(e.objectPath(seg2)); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("the unlisted object was changed: %v", err)
	}
	if r := e.get(t, seg2, e.pushFetch); r.status != 404 {
		t.Fatalf("GET after a refused push: %d, want 404", r.status)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(e.objectPath(seg2), old, old); err != nil {
		t.Fatal(err)
	}
	expect(t, "push over an old orphan", e.put(t, seg2, e.pushFetch, body), 503, protocol.CodeUnavailable)
	expect(t, "retry after the orphan was removed", e.put(t, seg2, e.pushFetch, body), 201, "")
	if got, err := os.ReadFile(e.objectPath(seg2)); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after the retry the store holds other bytes: %v", err)
	}
}
