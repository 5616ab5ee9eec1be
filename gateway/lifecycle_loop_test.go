package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
)

// syncBuffer is a log sink safe for the loop's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The daemon's schedule: a dry-run schedule only logs the plan; with
// apply it deletes what retention does not keep.
func TestLifecycleSchedule(t *testing.T) {
	for _, apply := range []bool{false, true} {
		dir := t.TempDir()
		cfg := Config{Data: dir, Backends: []config.BackendConfig{{Name: "local", Type: "fs", Path: filepath.Join(dir, "store")}},
			Groups: []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"local"}, Lifecycle: lifecycle.Policy{RetainFull: 1}}}}
		var logs syncBuffer
		s, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		var wal []index.WALObject
		for _, name := range []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003"} {
			wal = append(wal, index.WALObject{Name: name, Key: "db/wal_005/" + name, Backend: "local", Size: 1, StoredAt: now})
		}
		if err := s.catalog.AddWALBatch("db", wal); err != nil {
			t.Fatal(err)
		}
		for i, seg := range []uint64{1, 2} {
			name := "base_" + lifecycle.SegmentName(1, seg, 0)
			key := "db/basebackups_005/" + name + "_backup_stop_sentinel.json"
			be, _ := s.stores.Backend("local")
			if _, err := be.Put(context.Background(), key, strings.NewReader("{}"), 2, backends.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			b := index.Backup{Name: name, State: index.BackupCommitted, Backend: "local", SentinelKey: key, SentinelSize: 2,
				Info: index.BackupInfo{Kind: "full", Timeline: 1, StartLSN: seg << 24, FinishLSN: seg<<24 + 100, FinishTime: now.Add(time.Duration(i-2) * time.Hour)}}
			if err := s.catalog.BeginBackup("db", b); err != nil {
				t.Fatal(err)
			}
		}
		s.cfg.Lifecycle = config.LifecycleConfig{Interval: 20 * time.Millisecond, Apply: apply}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.lifecycleLoop(ctx); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), "lifecycle run") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if apply {
			for time.Now().Before(deadline) {
				if _, err := s.catalog.WAL("db", wal[0].Name); errors.Is(err, index.ErrNotFound) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		cancel()
		<-done
		_, walErr := s.catalog.WAL("db", wal[0].Name)
		_, backupErr := s.catalog.Backup("db", "base_"+lifecycle.SegmentName(1, 1, 0))
		log := logs.String()
		if !strings.Contains(log, "lifecycle run") || !strings.Contains(log, "planned_deletions=2") {
			t.Errorf("apply=%v: the schedule did not log its plan:\n%s", apply, log)
		}
		if apply != errors.Is(walErr, index.ErrNotFound) || apply != errors.Is(backupErr, index.ErrNotFound) {
			t.Errorf("apply=%v: WAL %v, backup %v", apply, walErr, backupErr)
		}
		if n := testutil.ToFloat64(s.metrics.lifecycle.WithLabelValues("delete", "done")); apply && n != 2 || !apply && n != 0 {
			t.Errorf("apply=%v: walgate_lifecycle_actions_total{kind=delete,result=done} = %v", apply, n)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
