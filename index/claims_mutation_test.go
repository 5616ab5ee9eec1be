package index

import (
	"slices"
	"testing"
	"time"
)

// A copy claimed by one gateway stays its own: another's release does
// not free it, another's completion leaves it queued, and the owner's own
// completion removes it and records the holder.
func TestCopyClaimsBelongToTheirOwner(t *testing.T) {
	c, _ := openTest(t)
	seg := queueWALCopy(t, c)
	claim := func(owner string) []Copy {
		t.Helper()
		got, _, err := c.ClaimCopies("b", owner, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	mine := claim("g1")
	if len(mine) != 1 || mine[0].ClaimedBy != "g1" {
		t.Fatalf("g1 claimed %+v", mine)
	}
	if got := claim("g2"); len(got) != 0 {
		t.Fatalf("g2 claimed %+v while g1 holds it", got)
	}
	if err := c.ReleaseCopies("g2", mine); err != nil {
		t.Fatal(err)
	}
	if got := claim("g3"); len(got) != 0 {
		t.Fatalf("g2's release freed g1's claim: g3 claimed %+v", got)
	}
	stale := mine[0]
	stale.ClaimedBy = "g2"
	if err := c.CompleteCopy(stale); err != nil {
		t.Fatal(err)
	}
	if pending, _ := c.Pending("b", 0); len(pending) != 1 {
		t.Fatalf("g2's completion removed the entry g1 claims: queue %+v", pending)
	}
	if err := c.CompleteCopy(mine[0]); err != nil {
		t.Fatal(err)
	}
	if pending, _ := c.Pending("b", 0); len(pending) != 0 {
		t.Fatalf("g1's own completion left the entry queued: %+v", pending)
	}
	if o, err := c.WAL("db", seg.Name); err != nil || !slices.Equal(o.Holders(), []string{"a", "b"}) {
		t.Fatalf("after the copy: %+v %v", o, err)
	}
}
