package lifecycle_test

import (
	"fmt"
	"time"

	"github.com/walgate/walgate/backends/s3"
	"github.com/walgate/walgate/lifecycle"
)

// A cluster with two weekly full backups and three weeks of WAL, a segment
// a day, on S3; keep one full, WAL warm after a week.
func ExamplePlan() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var wal []lifecycle.WALFile
	for n := uint64(1); n <= 21; n++ {
		f, _ := lifecycle.ParseWALFile(lifecycle.SegmentName(1, n, 0), 0)
		f.Key, f.Size = "db/wal_005/"+f.Name+".zst", 4<<20
		f.StoredAt = now.Add(-time.Duration(22-n) * 24 * time.Hour)
		f.Copies = []lifecycle.Copy{{Backend: "s3"}}
		wal = append(wal, f)
	}
	full := func(seg uint64) lifecycle.Backup {
		name := "base_" + lifecycle.SegmentName(1, seg, 0)
		return lifecycle.Backup{Name: name, Full: true, Timeline: 1, StartSegment: seg, FinishSegment: seg,
			FinishTime: now.Add(-time.Duration(22-seg) * 24 * time.Hour),
			Objects: []lifecycle.Object{{Key: "db/basebackups_005/" + name + "_backup_stop_sentinel.json", Kind: lifecycle.Metadata,
				Size: 1 << 10, Sentinel: true, Copies: []lifecycle.Copy{{Backend: "s3"}}}}}
	}
	c := lifecycle.Cluster{Name: "db", Backups: []lifecycle.Backup{full(2), full(16)}, WAL: lifecycle.WALSlice(wal)}
	s3 := lifecycle.NewBackend("s3", s3.Classes())
	policy, err := lifecycle.ParsePolicy([]byte(`
tiers: [{kind: wal, after: 120h, class: warm}]
retain_full: 1
prices: {hot: 0.023, warm: 0.0125}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, err := lifecycle.Plan([]lifecycle.Cluster{c}, []lifecycle.Backend{s3}, policy, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	show := func(a lifecycle.Action) {
		fmt.Printf("%s %s %s %s: %s\n", a.Kind, a.Backend, a.Object, a.To, a.Reason)
	}
	show(plan.Actions[0])
	show(plan.Actions[1])
	fmt.Printf("... %d actions\n", len(plan.Actions))
	show(plan.Actions[len(plan.Actions)-1])
	for _, r := range plan.Clusters[0].Retained {
		fmt.Println("keep", r.Name, r.Reasons)
	}
	fmt.Println("WAL kept from", plan.Clusters[0].WALKeptFrom[1])
	// Output:
	// delete s3 base_000000010000000000000002 : backup not retained: not among or built on the newest 1 full backups, not permanent, not the newest full backup
	// delete s3 000000010000000000000001 : before 000000010000000000000010, the start of base_000000010000000000000010, the oldest retained backup restoring through timeline 1
	// ... 18 actions
	// set-class s3 000000010000000000000011 STANDARD_IA: wal older than 120h0m0s belongs in warm
	// keep base_000000010000000000000010 [the newest full backup is never deleted one of the newest 1 full backups]
	// WAL kept from 000000010000000000000010
}
