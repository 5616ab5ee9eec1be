package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
)

// A backup reaches a replica part by part, and its sentinel only after
// every part is there; sentinels of successive backups arrive in the
// primary's order. Replica c is down during two backups, then comes back
// with the copies of the first backup's second part failing for a while:
// a watcher polling c's directory must never see a sentinel without all
// of its backup's parts, nor the second sentinel before the first.
func TestFanoutBackupSentinelLast(t *testing.T) {
	t.Parallel()
	f := startFanout(t, "primary", "")
	u, _ := url.Parse(f.g.URL)
	c, err := client.New(client.Config{URL: u, Token: f.pushFetch, Cluster: cluster, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	f.faults["c"].SetDown(true)
	names := []string{"base_000000010000000000000004", "base_000000010000000000000008"}
	files := []string{"tar_partitions/part_001.tar.zst", "tar_partitions/part_002.tar.zst", "tar_partitions/pg_control.tar.zst"}
	for i, name := range names {
		up, err := c.BeginBackup(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for j, file := range files {
			body := bytes.Repeat([]byte(fmt.Sprintf("%s %s ", name, file)), 5000*(j+1))
			if _, err := up.Upload(ctx, file, "zstd", "none", bytes.NewReader(body)); err != nil {
				t.Fatalf("upload %s: %v", file, err)
			}
		}
		lsn := uint64(0x4000028 + i*0x4000000)
		sentinel, _ := json.Marshal(map[string]any{"LSN": lsn, "FinishLSN": lsn + 0x100, "FinishTime": time.Now().UTC(), "StartTime": time.Now().UTC()})
		if _, err := up.Commit(ctx, sentinel); err != nil {
			t.Fatalf("commit %s: %v", name, err)
		}
	}
	cdir := filepath.Join(f.dirs["c"], cluster, "basebackups_005")
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(cdir, p)); return err == nil }
	if exists(names[0] + "_backup_stop_sentinel.json") {
		t.Fatal("c holds a sentinel while it was down")
	}

	// The watcher.
	stop := make(chan struct{})
	done := make(chan []string)
	go func() {
		var violations []string
		for {
			select {
			case <-stop:
				done <- violations
				return
			default:
			}
			for i, name := range names {
				if !exists(name + "_backup_stop_sentinel.json") {
					continue
				}
				for _, file := range files {
					if !exists(filepath.Join(name, filepath.FromSlash(file))) {
						violations = append(violations, "sentinel of "+name+" before "+file)
					}
				}
				if i > 0 && !exists(names[i-1]+"_backup_stop_sentinel.json") {
					violations = append(violations, "sentinel of "+name+" before the one of "+names[i-1])
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	f.faults["c"].FailKey(names[0]+"/tar_partitions/part_002", 4)
	f.faults["c"].SetDown(false)
	f.settle(t)
	close(stop)
	if v := <-done; len(v) > 0 {
		t.Fatalf("ordering broken on the replica: %q", v[:min(len(v), 5)])
	}
	for _, name := range names {
		if !exists(name + "_backup_stop_sentinel.json") {
			t.Errorf("c lacks the sentinel of %s after replication", name)
		}
	}
	st := f.backendStatus(t, "c")
	if st.PendingObjects != 0 || st.LastError == "" {
		t.Errorf("c after catching up: %+v", st)
	}
	// The catalog lists c as holding both backups now.
	for _, name := range names {
		b, err := f.g.Server.Catalog().Backup(cluster, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Holders()) != 3 {
			t.Errorf("%s holders %v", name, b.Holders())
		}
	}
}
