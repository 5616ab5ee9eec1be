package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/client"
	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// lifecycleBackup commits a small backup; lsn is its start, deltaFrom its
// parent ("" for a full backup).
func lifecycleBackup(t *testing.T, e *env, name string, lsn uint64, deltaFrom string, permanent bool, finish time.Time) {
	t.Helper()
	files := map[string][]byte{}
	for i, file := range []string{"tar_partitions/part_001.tar.zst", "tar_partitions/pg_control.tar.zst", "metadata.json"} {
		files[file] = bytes.Repeat([]byte(fmt.Sprintf("%s %s ", name, file)), 500*(i+1))
	}
	s := map[string]any{"LSN": lsn, "FinishLSN": lsn + 0x1000000, "StartTime": finish.Add(-time.Minute), "FinishTime": finish, "IsPermanent": permanent}
	if deltaFrom != "" {
		s["DeltaFrom"], s["DeltaFullName"], s["DeltaCount"] = deltaFrom, deltaFrom, 1
	}
	sentinel, _ := json.Marshal(s)
	pushBackup(t, e.g.URL, e.pushFetch, name, files, sentinel)
}

func segLSN(seg int) uint64 { return uint64(seg)<<24 | 0x28 }

// The lifecycle on three fs backends: guard rails (a backup missing from
// a backend, copies pending), who may delete and the delete API's bad
// input, a deletion failing half way and finished by the next run,
// permanent backups and their WAL, the WAL summary after deletions.
func TestLifecycleRetentionGuardRails(t *testing.T) {
	t.Parallel()
	f := startFanoutConfig(t, "primary", "", 0, func(cfg *gateway.Config) {
		cfg.Groups[0].Lifecycle = lifecycle.Policy{RetainFull: 1}
	})
	u, _ := url.Parse(f.g.URL)
	c, err := client.New(client.Config{URL: u, Token: f.pushFetch, Cluster: cluster, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 1; i <= 12; i++ {
		if r := f.push(t, i); r.status != 201 {
			t.Fatalf("push %d: %d %s", i, r.status, r.msg)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	b2, b5, b8 := "base_"+walName(2), "base_"+walName(5), "base_"+walName(8)
	d10 := "base_" + walName(10) + "_D_" + walName(8)
	lifecycleBackup(t, f.env, b2, segLSN(2), "", true, t0)
	lifecycleBackup(t, f.env, b5, segLSN(5), "", false, t0.Add(time.Minute))
	lifecycleBackup(t, f.env, b8, segLSN(8), "", false, t0.Add(2*time.Minute))
	lifecycleBackup(t, f.env, d10, segLSN(10), b8, false, t0.Add(3*time.Minute))
	f.settle(t)
	cat := f.g.Server.Catalog()
	if b, err := cat.Backup(cluster, b2); err != nil || !b.Info.Permanent {
		t.Fatalf("the permanent backup is not cataloged as permanent: %+v %v", b.Info, err)
	}

	// Who may delete, and bad requests.
	admin := f.g.Token(cluster, "admin")
	otherAdmin := f.g.Token("other", "admin")
	del := func(token string, body string) reply {
		return f.send(t, "POST", protocol.DeletePath(cluster), token, map[string]string{"Content-Type": "application/json"}, []byte(body))
	}
	expect(t, "host token", del(f.pushFetch, `{"retain":1,"full":true,"confirm":true}`), 403, protocol.CodeForbidden)
	expect(t, "another cluster's admin token", del(otherAdmin, `{"retain":1,"full":true,"confirm":true}`), 403, protocol.CodeForbidden)
	expect(t, "no token", del("", `{"retain":1}`), 401, protocol.CodeUnauthorized)
	expect(t, "nothing to keep said", del(admin, `{"confirm":true}`), 400, protocol.CodeBadRequest)
	expect(t, "retain and before", del(admin, `{"retain":1,"before":"`+b8+`","confirm":true}`), 400, protocol.CodeBadRequest)
	expect(t, "negative retain", del(admin, `{"retain":-1,"confirm":true}`), 400, protocol.CodeBadRequest)
	expect(t, "not JSON", del(admin, `retain 1`), 400, protocol.CodeBadRequest)
	expect(t, "invalid backup name", del(admin, `{"before":"../base_1","confirm":true}`), 400, protocol.CodeInvalidName)
	expect(t, "unknown backup", del(admin, `{"before":"base_000000010000000000000099","confirm":true}`), 404, protocol.CodeNotFound)
	if _, err := cat.Backup(cluster, b5); err != nil {
		t.Fatalf("a refused request deleted %s: %v", b5, err)
	}

	// A dry run through the API says what would go.
	r := del(admin, `{"retain":1,"full":true}`)
	expect(t, "dry run", r, 200, "")
	var dry protocol.DeleteResult
	if err := json.Unmarshal(r.body, &dry); err != nil {
		t.Fatal(err)
	}
	if dry.Applied || !slices.Equal(dry.Backups, []string{b5}) || dry.WALFiles != 5 {
		t.Fatalf("dry run: %+v", dry)
	}

	plan := func() apply.Result {
		t.Helper()
		res, err := f.g.Server.Lifecycle(context.Background(), apply.Options{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	refusal := func(res apply.Result) string {
		if len(res.Plan.Refusals) == 0 {
			return ""
		}
		return res.Plan.Refusals[0].Reason
	}

	// Guard rail: a backend lacks a backup the catalog says it holds.
	b8rec, err := cat.Backup(cluster, b8)
	if err != nil {
		t.Fatal(err)
	}
	sentinelC := filepath.Join(f.dirs["c"], filepath.FromSlash(b8rec.SentinelKey))
	moved := sentinelC + ".away"
	if err := os.Rename(sentinelC, moved); err != nil {
		t.Fatal(err)
	}
	if why := refusal(plan()); !strings.Contains(why, "missing from backend c") {
		t.Fatalf("refusal with a sentinel missing: %q", why)
	}
	if err := os.Rename(moved, sentinelC); err != nil {
		t.Fatal(err)
	}

	// Guard rail: copies still to be replicated.
	f.faults["c"].SetDown(true)
	if r := f.push(t, 13); r.status != 201 {
		t.Fatalf("push 13: %d %s", r.status, r.msg)
	}
	res, err := f.g.Server.Lifecycle(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if why := refusal(res); !strings.Contains(why, "replicated") || res.Done.Deleted != 0 {
		t.Fatalf("applied with a copy pending: refusal %q, %d deleted", why, res.Done.Deleted)
	}
	expect(t, "confirmed delete with a copy pending", del(admin, `{"retain":1,"full":true,"confirm":true}`), 409, protocol.CodeConflict)
	if _, err := cat.Backup(cluster, b5); err != nil {
		t.Fatalf("a refused run deleted %s: %v", b5, err)
	}
	f.faults["c"].SetDown(false)
	f.settle(t)

	// A deletion failing half way: b5's part cannot be deleted from b.
	b5rec, err := cat.Backup(cluster, b5)
	if err != nil {
		t.Fatal(err)
	}
	part := b5rec.Files["tar_partitions/part_001.tar.zst"].Key
	f.faults["b"].FailKey(part, 1)
	res, err = f.g.Server.Lifecycle(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Done.Failures != 1 || len(res.Done.BackupsDeleted) != 0 {
		t.Fatalf("a failing deletion: %+v", res.Done)
	}
	if b, err := cat.Backup(cluster, b5); err != nil || b.State != index.BackupDeleting {
		t.Fatalf("%s after a failed deletion: %+v %v", b5, b.State, err)
	}
	list, err := c.ListBackups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		if b.Name == b5 {
			t.Fatalf("a backup being deleted is listed")
		}
	}
	exists := func(backend, key string) bool {
		_, err := os.Stat(filepath.Join(f.dirs[backend], filepath.FromSlash(key)))
		return err == nil
	}
	for _, n := range []string{"a", "b", "c"} {
		if exists(n, b5rec.SentinelKey) {
			t.Errorf("%s still shows %s's sentinel", n, b5)
		}
	}
	if !exists("b", part) {
		t.Fatal("the failed deletion's object is gone")
	}
	// WAL before b8's start is gone, except what the permanent b2 pins.
	for i := 1; i <= 13; i++ {
		_, err := cat.WAL(cluster, walName(i))
		gone := i == 1 || (i >= 4 && i <= 7)
		if gone != errors.Is(err, index.ErrNotFound) {
			t.Errorf("WAL %d: in the catalog: %v (want gone: %v)", i, err == nil, gone)
		}
		for _, n := range []string{"a", "b", "c"} {
			if exists(n, cluster+"/wal_005/"+walName(i)) == gone {
				t.Errorf("WAL %d on %s: want gone %v", i, n, gone)
			}
		}
	}
	// The next run finishes the deletion.
	res = plan()
	if len(res.Steps) != 0 {
		t.Fatalf("steps left besides the unfinished deletion: %+v", res.Steps)
	}
	res, err = f.g.Server.Lifecycle(context.Background(), apply.Options{Apply: true}, time.Now())
	if err != nil || !slices.Equal(res.Done.BackupsDeleted, []string{b5}) || res.Done.Failures != 0 {
		t.Fatalf("second run: %+v %v", res.Done, err)
	}
	if _, err := cat.Backup(cluster, b5); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("%s still cataloged: %v", b5, err)
	}
	if exists("b", part) {
		t.Fatal("the second run left the object")
	}
	for _, name := range []string{b2, b8, d10} {
		if _, err := cat.Backup(cluster, name); err != nil {
			t.Errorf("%s was deleted: %v", name, err)
		}
	}

	// Health after retention: the WAL gaps retention made are not lost
	// segments, and the summary counts what is left.
	st, err := f.g.Server.ClusterHealth(cluster, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.LostSegments != 0 || st.WALFiles != 8 {
		t.Fatalf("health after retention: lost %d, %d WAL files; gaps %+v", st.LostSegments, st.WALFiles, st.Gaps)
	}

	// A timeline history file tells its parent and switch point.
	hist := []byte("1\t0/C000000\tno recovery target specified\n")
	h := walHeaders(hist)
	h[protocol.HeaderTimelineParent], h[protocol.HeaderSwitchLSN] = "1", "0/C000000"
	expect(t, "history with its parent", f.send(t, "PUT", protocol.WALPath(cluster, "00000002.history"), f.pushFetch, h, hist), 201, "")
	rec, err := cat.WAL(cluster, "00000002.history")
	if err != nil || rec.TimelineParent != 1 || rec.SwitchLSN != 0xC000000 {
		t.Fatalf("history record: %+v %v", rec, err)
	}
	tls, err := cat.Timelines(cluster)
	if err != nil || len(tls) != 2 || tls[1].ID != 2 || tls[1].Parent != 1 || !tls[1].History {
		t.Fatalf("timelines: %+v %v", tls, err)
	}
	seg := []byte("a segment")
	h = walHeaders(seg)
	h[protocol.HeaderTimelineParent], h[protocol.HeaderSwitchLSN] = "1", "0/C000000"
	expect(t, "timeline headers on a segment", f.send(t, "PUT", protocol.WALPath(cluster, walName(20)), f.pushFetch, h, seg), 400, protocol.CodeBadRequest)
	h = walHeaders(hist)
	h[protocol.HeaderTimelineParent], h[protocol.HeaderSwitchLSN] = "3", "0/C000000"
	expect(t, "a parent above the timeline", f.send(t, "PUT", protocol.WALPath(cluster, "00000003.history"), f.pushFetch, h, hist), 400, protocol.CodeBadRequest)
	h[protocol.HeaderTimelineParent], h[protocol.HeaderSwitchLSN] = "2", "not-an-lsn"
	expect(t, "a bad switch LSN", f.send(t, "PUT", protocol.WALPath(cluster, "00000003.history"), f.pushFetch, h, hist), 400, protocol.CodeBadRequest)
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
}

// The client pushes a timeline history file with what it says.
func TestClientSendsTimelineHistory(t *testing.T) {
	t.Parallel()
	e := start(t, gatewaytest.Options{})
	u, _ := url.Parse(e.g.URL)
	c, err := client.New(client.Config{URL: u, Token: e.pushFetch, Cluster: cluster, Timeout: 10 * time.Second, Compression: codec.Zstd})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "00000003.history")
	if err := os.WriteFile(path, []byte("1\t0/3000158\tno recovery target specified\n\n2\t0/5000060\tat restore point \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushWAL(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	rec, err := e.g.Server.Catalog().WAL(cluster, "00000003.history")
	if err != nil || rec.TimelineParent != 2 || rec.SwitchLSN != 0x5000060 {
		t.Fatalf("history record: %+v %v", rec, err)
	}
	// A damaged history is refused on the host, nothing sent.
	bad := filepath.Join(dir, "00000004.history")
	if err := os.WriteFile(bad, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushWAL(context.Background(), bad); !errors.Is(err, client.ErrRejected) {
		t.Fatalf("a damaged history: %v", err)
	}
	if _, err := e.g.Server.Catalog().WAL(cluster, "00000004.history"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a damaged history was archived: %v", err)
	}
}
