package gateway_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
)

// A cluster archives one WAL segment size: a segment of another size (a
// server re-initialised with another --wal-segsize under the same cluster
// name) is refused with a clear message and nothing is stored, while the
// cluster's own size goes on being accepted.
func TestWALSegmentSizeMixRefused(t *testing.T) {
	e := start(t, gatewaytest.Options{})
	expect(t, "first 1 MiB segment", e.put(t, seg1, e.pushFetch, randBytes(t, 1<<20)), http.StatusCreated, "")
	r := e.put(t, seg2, e.pushFetch, randBytes(t, 2<<20))
	expect(t, "2 MiB segment after 1 MiB ones", r, http.StatusBadRequest, protocol.CodeBadRequest)
	if !strings.Contains(r.msg, "archives 1 MiB segments") || !strings.Contains(r.msg, "wal_segment_size") {
		t.Fatalf("refusal does not say why: %q", r.msg)
	}
	if _, err := os.Stat(e.objectPath(seg2)); !os.IsNotExist(err) {
		t.Fatalf("the refused segment is in the store (%v)", err)
	}
	expect(t, "1 MiB segment again", e.put(t, seg2, e.pushFetch, randBytes(t, 1<<20)), http.StatusCreated, "")
}
