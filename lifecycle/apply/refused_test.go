package apply_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

const cluster = "db"

var holders = []string{"a", "b"}

func walName(seg uint64) string { return fmt.Sprintf("00000001%016X", seg) }

// archive is a catalog and two healthy fs backends that both hold every
// object of cluster db: WAL 1-8 and full backups at segments 2 and 5.
type archive struct {
	cat  *index.Catalog
	set  *stores.Set
	exec *apply.Executor
	keys []string // every object
	old  index.Backup
	new  index.Backup
}

func newArchive(t *testing.T, wrap ...stores.Wrap) *archive {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Config{Data: dir}
	for _, n := range holders {
		cfg.Backends = append(cfg.Backends, config.BackendConfig{Name: n, Type: "fs", Path: filepath.Join(dir, "store-"+n)})
	}
	cfg.Groups = []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: holders, Ack: "all",
		Lifecycle: lifecycle.Policy{RetainFull: 1}}}
	var w stores.Wrap
	if len(wrap) > 0 {
		w = wrap[0]
	}
	set, cat := gatewaytest.OpenStores(t, cfg, config.CatalogPath(dir), w)
	lb, err := set.LifecycleBackends()
	if err != nil {
		t.Fatal(err)
	}
	a := &archive{cat: cat, set: set}
	a.exec = apply.New(apply.Config{Catalog: cat, Stores: set, Backends: lb,
		SegmentSize: func(string) (uint64, error) { return 16 << 20, nil }})

	now := time.Now().UTC()
	a.addWAL(t, 1, 8, holders...)
	a.old = a.addFull(t, 1, 2, now.Add(-time.Hour))
	a.new = a.addFull(t, 1, 5, now.Add(-30*time.Minute))
	return a
}

// put stores body at key on the backends named and returns its SHA-256.
// Keys stored on every backend are listed in a.keys.
func (a *archive) put(t *testing.T, key string, body []byte, on ...string) string {
	t.Helper()
	for _, n := range on {
		be, _ := a.set.Backend(n)
		if _, err := be.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), backends.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Equal(on, holders) {
		a.keys = append(a.keys, key)
	}
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}

// addWAL stores and catalogs WAL segments from..to of timeline 1 on the
// backends named, archived two hours ago.
func (a *archive) addWAL(t *testing.T, from, to uint64, on ...string) {
	t.Helper()
	var wal []index.WALObject
	for seg := from; seg <= to; seg++ {
		key := cluster + "/wal_005/" + walName(seg)
		body := []byte("segment " + walName(seg))
		wal = append(wal, index.WALObject{Name: walName(seg), Key: key, Backend: on[0], Backends: on, Size: int64(len(body)),
			SHA256: a.put(t, key, body, on...), ContentID: "sha256:" + hex.EncodeToString(make([]byte, 32)), Compression: "none", Encryption: "none",
			StoredAt: time.Now().UTC().Add(-2 * time.Hour)})
	}
	if err := a.cat.AddWALBatch(cluster, wal); err != nil {
		t.Fatal(err)
	}
}

// addFull stores and catalogs a committed full backup of timeline tl
// starting in segment seg, on both backends.
func (a *archive) addFull(t *testing.T, tl uint32, seg uint64, finish time.Time) index.Backup {
	t.Helper()
	name := fmt.Sprintf("base_%08X%016X", tl, seg)
	prefix := cluster + "/basebackups_005/" + name
	b := index.Backup{Name: name, State: index.BackupCommitted, Backend: "a", Backends: holders, Files: map[string]index.BackupFile{},
		Begun: finish, LastActivity: finish, Committed: finish,
		Info: index.BackupInfo{Kind: "full", Timeline: tl, StartLSN: seg << 24, FinishLSN: seg<<24 + 100, FinishTime: finish}}
	for _, f := range []string{"tar_partitions/part_001.tar.zst", "tar_partitions/pg_control.tar.zst", "metadata.json"} {
		body := []byte(name + " " + f)
		key := prefix + "/" + f
		b.Files[f] = index.BackupFile{Key: key, Size: int64(len(body)), SHA256: a.put(t, key, body, holders...), Compression: "none", Encryption: "none", Backends: holders}
	}
	sentinel := []byte("{}")
	b.SentinelKey, b.SentinelSize = prefix+"_backup_stop_sentinel.json", int64(len(sentinel))
	a.put(t, b.SentinelKey, sentinel, holders...)
	if err := a.cat.BeginBackup(cluster, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// intact checks that every object is still on both backends, except
// those in gone, and that the catalog still has both backups and all WAL.
func (a *archive) intact(t *testing.T, what string, gone ...string) {
	t.Helper()
	for _, key := range a.keys {
		for _, n := range holders {
			be, _ := a.set.Backend(n)
			_, err := be.Stat(context.Background(), key)
			if slices.Contains(gone, n+":"+key) {
				continue
			}
			if err != nil {
				t.Errorf("%s: %s is gone from backend %s: %v", what, key, n, err)
			}
		}
	}
	for _, b := range []index.Backup{a.old, a.new} {
		if got, err := a.cat.Backup(cluster, b.Name); err != nil || got.State != index.BackupCommitted {
			t.Errorf("%s: backup %s in the catalog: %v %v", what, b.Name, got.State, err)
		}
	}
	for seg := uint64(1); seg <= 8; seg++ {
		if _, err := a.cat.WAL(cluster, walName(seg)); err != nil {
			t.Errorf("%s: WAL %s in the catalog: %v", what, walName(seg), err)
		}
	}
}

// A refused plan deletes nothing even when every backend is up and would
// accept the deletions: the guard rail alone stops them. Each refusal is
// made with healthy backends; once it is lifted, the same run deletes,
// so the archive was deletable all along.
func TestRefusedPlanDeletesNothingWithHealthyBackends(t *testing.T) {
	for _, c := range []struct {
		name   string
		refuse func(t *testing.T, a *archive) (lift func(), gone []string)
		reason string
	}{
		{"a copy pending replication", func(t *testing.T, a *archive) (func(), []string) {
			obj, err := a.cat.WAL(cluster, walName(8))
			if err != nil {
				t.Fatal(err)
			}
			cp := stores.WALCopy(cluster, obj)
			cp.Backend = "b"
			if err := a.cat.Enqueue([]index.Copy{cp}); err != nil {
				t.Fatal(err)
			}
			return func() {
				pending, err := a.cat.Pending("b", 10)
				if err != nil || len(pending) != 1 {
					t.Fatalf("pending: %v %v", pending, err)
				}
				if err := a.cat.CompleteCopy(pending[0]); err != nil {
					t.Fatal(err)
				}
			}, nil
		}, "replicated"},
		{"a sentinel missing from a backend", func(t *testing.T, a *archive) (func(), []string) {
			be, _ := a.set.Backend("b")
			if err := be.Delete(context.Background(), a.new.SentinelKey); err != nil {
				t.Fatal(err)
			}
			return func() {
				if _, err := be.Put(context.Background(), a.new.SentinelKey, bytes.NewReader([]byte("{}")), 2, backends.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}, []string{"b:" + a.new.SentinelKey}
		}, "missing from backend b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newArchive(t)
			lift, gone := c.refuse(t, a)
			res, err := a.exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Plan.Clusters) != 1 {
				t.Fatalf("plan: %+v", res.Plan)
			}
			cp := res.Plan.Clusters[0]
			if !cp.Refused || len(res.Plan.Refusals) != 1 || !strings.Contains(res.Plan.Refusals[0].Reason, c.reason) {
				t.Fatalf("the plan is not refused for %q: %+v %+v", c.reason, cp, res.Plan.Refusals)
			}
			if !slices.Equal(cp.DeletedBackups, []string{a.old.Name}) {
				t.Fatalf("the refused plan would delete %v, want %s (the test needs a deletion to refuse)", cp.DeletedBackups, a.old.Name)
			}
			if res.Done.Deleted != 0 || len(res.Done.BackupsDeleted) != 0 || res.Done.Failures != 0 {
				t.Errorf("a refused run did something: %+v", res.Done)
			}
			a.intact(t, "after a refused run", gone...)
			if bs, err := a.cat.Backups(cluster, index.BackupDeleting); err != nil || len(bs) != 0 {
				t.Errorf("backups marked deleting after a refused run: %v %v", bs, err)
			}

			// Lifted, the same run deletes the old backup.
			lift()
			res, err = a.exec.Run(context.Background(), apply.Options{Apply: true}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Plan.Refusals) != 0 || !slices.Equal(res.Done.BackupsDeleted, []string{a.old.Name}) {
				t.Fatalf("once lifted: refusals %+v, done %+v", res.Plan.Refusals, res.Done)
			}
			if _, err := a.cat.Backup(cluster, a.old.Name); !errors.Is(err, index.ErrNotFound) {
				t.Fatalf("once lifted, %s is still cataloged: %v", a.old.Name, err)
			}
		})
	}
}
