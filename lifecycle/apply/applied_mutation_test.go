package apply_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// An applied run deletes what its plan says, on every backend and in the
// catalog, and reports exactly that: each backup object deleted
// everywhere counts once, each WAL copy once per backend; every action is
// observed, the gateway hears once that the cluster's WAL changed, and
// the deleted backup is logged with the reason the plan gave; nothing is
// logged as a warning.
func TestAppliedRunReportsWhatItDid(t *testing.T) {
	a := newArchive(t)
	lb, err := a.set.LifecycleBackends()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	observed := map[string]int{}
	var walDeleted []string
	var logged bytes.Buffer
	exec := apply.New(apply.Config{Log: slog.New(slog.NewJSONHandler(&logged, nil)), Catalog: a.cat, Stores: a.set, Backends: lb,
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil },
		Observe: func(kind lifecycle.ActionKind, result string) {
			mu.Lock()
			observed[string(kind)+" "+result]++
			mu.Unlock()
		},
		WALDeleted: func(cluster string) error {
			walDeleted = append(walDeleted, cluster)
			return nil
		}})
	res, err := exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const backupObjects, walCopies = 4, 4 * 2 // sentinel and 3 files; WAL 1-4 on a and b
	if !res.Applied || res.Done.Deleted != backupObjects+walCopies || res.Done.Moved != 0 || res.Done.Failures != 0 ||
		!slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name}) {
		t.Fatalf("done: %+v", res.Done)
	}
	if len(observed) != 1 || observed["delete done"] != backupObjects+walCopies {
		t.Errorf("observed: %v", observed)
	}
	if !slices.Equal(walDeleted, []string{cluster}) {
		t.Errorf("WAL deletion reported for %v, want once for %s", walDeleted, cluster)
	}
	var reason string
	for _, st := range res.Steps {
		if st.First == a.old.Name {
			reason = st.Reason
		}
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(logged.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["level"] != "INFO" {
			t.Errorf("a run without failures logged %v", m)
		}
		if m["msg"] == "lifecycle: deleted backup" {
			lines = append(lines, m)
		}
	}
	if reason == "" || len(lines) != 1 || lines[0]["backup"] != a.old.Name || lines[0]["reason"] != reason {
		t.Errorf("deleted backup logged as %v, want %s with the reason %q", lines, a.old.Name, reason)
	}

	// The store and the catalog agree with the report.
	var gone []string
	for _, key := range a.keys {
		for _, n := range holders {
			be, _ := a.set.Backend(n)
			if _, err := be.Stat(context.Background(), key); errors.Is(err, backends.ErrNotFound) {
				gone = append(gone, n+":"+key)
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	for _, key := range a.keys {
		for _, n := range holders {
			if slices.Contains([]string{a.old.SentinelKey, a.old.Files["metadata.json"].Key, a.old.Files["tar_partitions/part_001.tar.zst"].Key,
				a.old.Files["tar_partitions/pg_control.tar.zst"].Key}, key) {
				want = append(want, n+":"+key)
			}
		}
	}
	for seg := uint64(1); seg <= 4; seg++ {
		for _, n := range holders {
			want = append(want, n+":"+cluster+"/wal_005/"+walName(seg))
		}
	}
	slices.Sort(gone)
	slices.Sort(want)
	if !slices.Equal(gone, want) {
		t.Errorf("gone from the stores:\n%q\nwant\n%q", gone, want)
	}
	for seg := uint64(1); seg <= 8; seg++ {
		_, err := a.cat.WAL(cluster, walName(seg))
		if deleted := seg <= 4; deleted != errors.Is(err, index.ErrNotFound) {
			t.Errorf("WAL %s in the catalog: %v (deleted: %v)", walName(seg), err, deleted)
		}
	}
	if _, err := a.cat.Backup(cluster, a.old.Name); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("%s is still cataloged: %v", a.old.Name, err)
	}
	if b, err := a.cat.Backup(cluster, a.new.Name); err != nil || b.State != index.BackupCommitted {
		t.Errorf("%s: %v %v", a.new.Name, b.State, err)
	}

	// A second run finds nothing more to do.
	res, err = exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil || res.Done.Deleted != 0 || len(res.Steps) != 0 || len(walDeleted) != 1 {
		t.Fatalf("second run: %+v %v, WAL deletions reported %v", res.Done, err, walDeleted)
	}
}

// failingDelete refuses to delete one key, as a store that is up but
// denies the deletion.
type failingDelete struct {
	backends.Backend
	key string
}

var errDenied = errors.New("deletion denied")

func (f failingDelete) Delete(ctx context.Context, key string) error {
	if key == f.key {
		return errDenied
	}
	return f.Backend.Delete(ctx, key)
}

// A WAL copy a backend fails to delete is reported as a failure, and
// the catalog keeps recording it there: the copy is not forgotten while
// it still exists.
func TestFailedWALDeletionIsKept(t *testing.T) {
	key := cluster + "/wal_005/" + walName(1)
	a := newArchive(t, func(name string, b backends.Backend) backends.Backend {
		if name == "b" {
			return failingDelete{b, key}
		}
		return b
	})
	res, err := a.exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Done.Failures != 1 || len(res.Done.Errors) != 1 || !strings.Contains(res.Done.Errors[0], errDenied.Error()) || res.Done.Deleted != 4+4*2-1 {
		t.Fatalf("done: %+v", res.Done)
	}
	rec, err := a.cat.WAL(cluster, walName(1))
	if err != nil || !slices.Contains(rec.Holders(), "b") || slices.Contains(rec.Holders(), "a") {
		t.Fatalf("WAL %s after its deletion failed on b: %+v %v", walName(1), rec, err)
	}
	be, _ := a.set.Backend("b")
	if _, err := be.Stat(context.Background(), key); err != nil {
		t.Fatalf("the copy on b: %v", err)
	}
}
