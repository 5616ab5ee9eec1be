package client_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/gateway/gatewaytest"
)

// segmentOf is the 1 MiB WAL segment number seg of timeline 1 of a
// PostgreSQL 16 system id: its first page starts with the long page header
// PostgreSQL writes (little-endian).
func segmentOf(t *testing.T, seg uint64, id uint64) []byte {
	b := walLike(t, 1<<20)
	binary.LittleEndian.PutUint16(b[0:], 0xD113) // XLOG_PAGE_MAGIC of 16
	binary.LittleEndian.PutUint16(b[2:], 0x0002) // XLP_LONG_HEADER
	binary.LittleEndian.PutUint32(b[4:], 1)      // timeline
	binary.LittleEndian.PutUint64(b[8:], seg<<20)
	binary.LittleEndian.PutUint64(b[24:], id)
	binary.LittleEndian.PutUint32(b[32:], 1<<20)
	binary.LittleEndian.PutUint32(b[36:], 8192)
	return b
}

// wal-push reads the system identifier from each segment's page header:
// a segment of another system than the one the cluster archived first is
// refused (conflict, naming both), the first system's go on, and a file
// without a readable header is archived as before.
func TestPushSendsSystemIdentifier(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := newClient(t, g.URL, g.Token("db", "push", "fetch"), nil)
	ctx := context.Background()
	dir := t.TempDir()
	const a, b = uint64(7450000000000000001), uint64(7450000000000000002)
	name := func(seg uint64) string { return fmt.Sprintf("0000000100000000%08X", seg) }

	if _, err := c.PushWAL(ctx, writeFile(t, dir, name(1), segmentOf(t, 1, a))); err != nil {
		t.Fatal(err)
	}
	_, err := c.PushWAL(ctx, writeFile(t, dir, name(2), segmentOf(t, 2, b)))
	ce := wantKind(t, "a segment of another system", err, client.ErrConflict)
	if msg := ce.Error(); !strings.Contains(msg, fmt.Sprint(a)) || !strings.Contains(msg, fmt.Sprint(b)) || !strings.Contains(msg, "new cluster name") {
		t.Fatalf("refusal does not name both systems and what to do: %s", msg)
	}
	if _, err := c.PushWAL(ctx, writeFile(t, dir, name(2), segmentOf(t, 2, a))); err != nil {
		t.Fatalf("the first system's next segment: %v", err)
	}
	// The header of segment 3 under the name of segment 4 is not read as
	// a header: the system is unknown, and the push is not refused.
	if _, err := c.PushWAL(ctx, writeFile(t, dir, name(4), segmentOf(t, 3, b))); err != nil {
		t.Fatalf("a segment without a readable header: %v", err)
	}
	if _, err := c.PushWAL(ctx, writeFile(t, dir, "00000002.history", []byte("1\t0/5000000\tno recovery target specified\n"))); err != nil {
		t.Fatalf("a history file: %v", err)
	}
	assertStore(t, g, "db/wal_005/"+name(1)+".zst", "db/wal_005/"+name(2)+".zst", "db/wal_005/"+name(4)+".zst", "db/wal_005/00000002.history.zst")
}
