package apply_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// A dry run reports its plan as steps: one per backend, kind and reason,
// over one backup's objects or one timeline's WAL files, counting them
// and naming the first and last. The two backends' actions come
// interleaved (a copy on a, then on b); each backend still gets its own
// steps. It also prices the plan with the executor's prices when the
// group sets none.
func TestDryRunSteps(t *testing.T) {
	a := newArchive(t)
	lb, err := a.set.LifecycleBackends()
	if err != nil {
		t.Fatal(err)
	}
	const hotPerGiB = 1 << 20
	exec := apply.New(apply.Config{Catalog: a.cat, Stores: a.set, Backends: lb, Prices: map[lifecycle.Class]float64{lifecycle.Hot: hotPerGiB},
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil }})
	res, err := exec.Run(context.Background(), apply.Options{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied || res.Done.Deleted != 0 {
		t.Fatalf("a dry run did something: %+v", res.Done)
	}
	var want []apply.Step
	for _, be := range holders {
		want = append(want, apply.Step{Cluster: cluster, Backend: be, Kind: lifecycle.Delete, First: a.old.Name, Last: a.old.Name, Count: 4})
	}
	for _, be := range holders {
		want = append(want, apply.Step{Cluster: cluster, Backend: be, Kind: lifecycle.Delete, First: walName(1), Last: walName(4), Count: 4})
	}
	if len(res.Steps) != len(want) {
		t.Fatalf("steps:\n%+v\nwant\n%+v", res.Steps, want)
	}
	for i, s := range res.Steps {
		if s.Reason == "" {
			t.Errorf("step %d has no reason: %+v", i, s)
		}
		s.Reason = ""
		if s != want[i] {
			t.Errorf("step %d: %+v, want %+v", i, s, want[i])
		}
	}

	// Every object is on both backends, priced hot: the plan's cost
	// before and after, and the sum over the clusters, use the price.
	var before, after int64
	for _, c := range res.Plan.Clusters {
		before, after = before+c.Before.Bytes[lifecycle.Hot], after+c.After.Bytes[lifecycle.Hot]
	}
	if before == 0 || after >= before {
		t.Fatalf("plan bytes before %d, after %d", before, after)
	}
	for _, c := range []struct {
		what  string
		got   lifecycle.Cost
		bytes int64
	}{{"before", res.Plan.Before, before}, {"after", res.Plan.After, after}} {
		wantMonthly := float64(c.bytes) / (1 << 30) * hotPerGiB
		if c.got.Bytes[lifecycle.Hot] != c.bytes || !(math.Abs(c.got.Monthly-wantMonthly) <= 1e-9) {
			t.Errorf("cost %s: %+v, want %d hot bytes at %.6f a month", c.what, c.got, c.bytes, wantMonthly)
		}
	}
}
