package apply_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// tieredStores is the archive's stores with one policy for every cluster.
type tieredStores struct {
	*stores.Set
	policy lifecycle.Policy
}

func (s tieredStores) Policy(string) (lifecycle.Policy, error) { return s.policy, nil }

// An applied run that moves copies to a colder class counts each move,
// records the new class of each WAL copy and of each backup object in the
// catalog (and no class for what stayed), and deletes nothing it was told
// to move; the next run reads the classes back and has nothing left to
// move. Both backends name their classes as a store with classes does;
// the fs store under them accepts any class.
func TestAppliedRunRecordsMoves(t *testing.T) {
	a := newArchive(t)
	var lb []lifecycle.Backend
	for _, n := range holders {
		lb = append(lb, lifecycle.Backend{Name: n, Classes: map[lifecycle.Class]string{lifecycle.Hot: "", lifecycle.Cold: "COLD"}})
	}
	policy := lifecycle.Policy{RetainFull: 1, Tiers: []lifecycle.Tier{
		{Kind: lifecycle.WAL, After: time.Hour, Class: lifecycle.Cold},
		{Kind: lifecycle.BackupData, After: 10 * time.Minute, Class: lifecycle.Cold},
	}}
	var mu sync.Mutex
	observed := map[string]int{}
	exec := apply.New(apply.Config{Catalog: a.cat, Stores: tieredStores{a.set, policy}, Backends: lb,
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil },
		Observe: func(kind lifecycle.ActionKind, result string) {
			mu.Lock()
			observed[string(kind)+" "+result]++
			mu.Unlock()
		}})
	res, err := exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// WAL 5-8 (WAL 1-4 go with the old backup) and the new backup's two
	// tar partitions, on both backends; its metadata has no rule.
	const walMoves, backupMoves = 4 * 2, 2 * 2
	const deleted = 4 + 4*2 // the old backup's objects, WAL 1-4 on a and b
	if res.Done.Moved != walMoves+backupMoves || res.Done.Deleted != deleted || res.Done.Failures != 0 ||
		!slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name}) {
		t.Fatalf("done: %+v", res.Done)
	}
	if want := map[string]int{"set-class done": walMoves + backupMoves, "delete done": deleted}; !maps.Equal(observed, want) {
		t.Errorf("observed %v, want %v", observed, want)
	}
	cold := map[string]string{"a": "COLD", "b": "COLD"}
	for seg := uint64(5); seg <= 8; seg++ {
		rec, err := a.cat.WAL(cluster, walName(seg))
		if err != nil || !maps.Equal(rec.Classes, cold) || !slices.Equal(rec.Holders(), holders) {
			t.Errorf("WAL %s after its move: %+v %v", walName(seg), rec, err)
		}
	}
	b, err := a.cat.Backup(cluster, a.new.Name)
	if err != nil {
		t.Fatal(err)
	}
	for f, rec := range b.Files {
		want := cold
		if f == "metadata.json" {
			want = nil
		}
		if !maps.Equal(rec.Classes, want) || !slices.Equal(rec.Holders(b.Backend), holders) {
			t.Errorf("backup %s, %s after the run: classes %v, holders %v", b.Name, f, rec.Classes, rec.Holders(b.Backend))
		}
	}
	if len(b.SentinelClasses) != 0 {
		t.Errorf("backup %s's sentinel moved: %v", b.Name, b.SentinelClasses)
	}

	res, err = exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil || len(res.Steps) != 0 || res.Done.Moved != 0 || res.Done.Deleted != 0 || res.Done.Failures != 0 {
		t.Fatalf("second run: steps %+v, done %+v, %v", res.Steps, res.Done, err)
	}
}
