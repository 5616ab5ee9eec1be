package stores_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
)

// TestReplicatorSentinelsInOrder: a backup's sentinel reaches a replica
// only after the sentinels queued before it. Were a later backup's
// sentinel there while an earlier one is missing, a catalog rebuilt from
// that replica would list a delta whose parent it does not know.
func TestReplicatorSentinelsInOrder(t *testing.T) {
	set, cat, faults := openFaultySet(t, "primary", "a", "b")
	ctx := context.Background()
	g, err := set.GroupFor(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	var sentinels []string
	for i, name := range []string{"base_000000010000000000000002", "base_000000010000000000000004"} {
		prefix := testCluster + "/basebackups_005/" + name
		b := index.Backup{Name: name, State: index.BackupCommitted, Backend: "a", Files: map[string]index.BackupFile{}}
		f := "tar_partitions/part_001.tar.zst"
		body := bytes.Repeat([]byte(name), 100)
		putRaw(t, set, "a", prefix+"/"+f, body, nil)
		b.Files[f] = index.BackupFile{Key: prefix + "/" + f, Size: int64(len(body)), SHA256: hexSHA(body), Compression: "zstd", Encryption: "none"}
		sentinel := []byte(`{"LSN":33554472,"FinishLSN":33558528,"FinishTime":"2026-01-0` + string(rune('1'+i)) + `T00:00:00Z"}`)
		b.SentinelKey, b.SentinelSize = prefix+"_backup_stop_sentinel.json", int64(len(sentinel))
		putRaw(t, set, "a", b.SentinelKey, sentinel, nil)
		if err := cat.BeginBackup(testCluster, b); err != nil {
			t.Fatal(err)
		}
		if err := cat.Enqueue(stores.BackupCopies(g, b, stores.SentinelCopy(testCluster, b))); err != nil {
			t.Fatal(err)
		}
		sentinels = append(sentinels, b.SentinelKey)
	}
	faults["b"].FailKey(sentinels[0], 3)
	be := faults["b"].Unwrap() // polling must not use up the failures
	exists := func(key string) bool {
		_, err := be.Stat(ctx, key)
		return err == nil
	}
	set.Start()
	deadline := time.Now().Add(20 * time.Second)
	for !exists(sentinels[0]) || !exists(sentinels[1]) {
		if exists(sentinels[1]) && !exists(sentinels[0]) {
			t.Fatal("the replica shows the later backup's sentinel while the earlier one's is missing")
		}
		if time.Now().After(deadline) {
			t.Fatal("the backups were not replicated")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestReplicaCopyKeepsTheMetadata: a replica's copy carries the metadata
// the push stored (cluster, kind, name, hash, content identity): a catalog
// is rebuilt from it when the primary is lost.
func TestReplicaCopyKeepsTheMetadata(t *testing.T) {
	set, cat, _ := openFaultySet(t, "primary", "a", "b")
	obj := pushWAL(t, set, cat, "000000010000000000000001", []byte("segment one"))
	set.Start()
	gatewaytest.WaitReplicated(t, set, 30*time.Second)
	want := stores.WALMetadata(testCluster, obj)
	be, _ := set.Backend("b")
	info, err := be.Stat(context.Background(), obj.Key)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if info.Metadata[k] != v {
			t.Errorf("replica's metadata %s = %q, want %q", k, info.Metadata[k], v)
		}
	}
}
