package lifecycle

import (
	"runtime"
	"testing"
	"time"

	"github.com/walgate/walgate/index/pgname"
)

// TestStreamMemoryBounded plans a cluster of a million streamed segments
// and checks the heap does not grow with them.
func TestStreamMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 1_000_000
	first := now.Add(-n * time.Minute)
	c := Cluster{Name: "big", Backups: []Backup{backup("big", "base_recent", true, "", 1, n-100, n-99, now.Add(-90*time.Minute), "s3")}}
	var peak uint64
	c.WAL = func(yield func(WALFile) bool) {
		cs := []Copy{{Backend: "s3"}}
		var ms runtime.MemStats
		for i := uint64(0); i < n; i++ {
			if i%100_000 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
			if !yield(WALFile{Name: "x", Key: "k", Kind: pgname.Segment, Timeline: 1, Segment: i, Size: 1, StoredAt: first.Add(time.Duration(i) * time.Minute), Copies: cs}) {
				return
			}
		}
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	deletes := 0
	r, err := PlanStream(oneCluster(c), testBackends(), Policy{RetainFull: 1, Tiers: []Tier{{Kind: WAL, After: time.Hour, Class: Warm}}}, now,
		func(a Action) {
			if a.Kind == Delete {
				deletes++
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if r.Clusters[0].WALScanned != n || deletes != n-100 {
		t.Fatalf("scanned %d, deleted %d", r.Clusters[0].WALScanned, deletes)
	}
	if grow := int64(peak) - int64(base.HeapAlloc); grow > 8<<20 {
		t.Fatalf("heap grew by %d bytes while streaming %d segments", grow, n)
	}
}

// oneCluster streams one cluster.
func oneCluster(c Cluster) func(func(Cluster) bool) {
	return func(yield func(Cluster) bool) { yield(c) }
}
