package index

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestBriefCutShortIsCorrupt: a brief record cut anywhere is corrupt, not a
// shorter record: a listing built from it would plan deletions on sizes
// and holders that are not the catalog's.
func TestBriefCutShortIsCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 5 {
		data := encodeBrief(randWAL(rng))
		for n := range len(data) {
			var w WALBrief
			if err := decodeBrief(data[:n], &w); !errors.Is(err, errBrief) {
				t.Fatalf("%x cut to %d bytes: %v, want errBrief", data, n, err)
			}
		}
	}
}
