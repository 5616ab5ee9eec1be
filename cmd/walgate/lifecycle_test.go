package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// tree maps every file under dir to its bytes.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An offline 'walgate lifecycle plan' (no gateway running) opens the
// catalog and the stores and nothing else: a copy queued for the second
// store stays queued (no replicator ran), and not a byte changes in the
// data directory or the stores.
func TestOfflinePlanStartsNothingAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	data, storeA, storeB := filepath.Join(dir, "data"), filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cfgPath := filepath.Join(dir, "walgate.yaml")
	yaml := "data: " + data + "\nbackends:\n" +
		"  - {name: a, type: fs, path: " + storeA + "}\n" +
		"  - {name: b, type: fs, path: " + storeB + "}\n" +
		"groups:\n  - {name: all, clusters: ['*'], backends: [a, b], ack: primary, lifecycle: {retain_full: 1}}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{data, storeA, storeB} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}

	// One WAL file on a, its copy to b queued: what a push leaves before
	// the replicator has run.
	body := []byte("a WAL file, stored as is")
	sum := sha256.Sum256(body)
	name := "000000010000000000000001"
	obj := index.WALObject{Name: name, Key: layout.WALKey("db", name, layout.CompressionNone), Backend: "a", Backends: []string{"a"},
		Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ContentID: "sha256:" + hex.EncodeToString(sum[:]),
		PlainSize: int64(len(body)), Compression: layout.CompressionNone, Encryption: "none", StoredAt: time.Now().UTC()}
	a, err := all.Open(context.Background(), config.BackendConfig{Name: "a", Type: "fs", Path: storeA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(context.Background(), obj.Key, bytes.NewReader(body), obj.Size,
		backends.PutOptions{Metadata: stores.WALMetadata("db", obj)}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	cat, err := index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cp := stores.WALCopy("db", obj)
	cp.Backend = "b"
	if _, _, err := cat.AddWALCopies("db", obj, []index.Copy{cp}); err != nil {
		t.Fatal(err)
	}
	if err := cat.Close(); err != nil {
		t.Fatal(err)
	}

	before := tree(t, dir)
	var stdout, stderr bytes.Buffer
	if err := runLifecycle([]string{"plan", "--config", cfgPath}, &stdout, &stderr); err != nil {
		t.Fatalf("lifecycle plan: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "dry run") {
		t.Errorf("the plan does not say it is a dry run:\n%s", stdout.String())
	}
	if first, _, _ := strings.Cut(stdout.String(), "\n"); !strings.HasPrefix(first, "Policies from "+cfgPath+" (offline") {
		t.Errorf("the plan's first line does not name its configuration: %q", first)
	}
	// Long enough for a replicator's first pass, had one started.
	time.Sleep(200 * time.Millisecond)
	after := tree(t, dir)
	for p, b := range after {
		if old, ok := before[p]; !ok {
			t.Errorf("lifecycle plan created %s", p)
		} else if !bytes.Equal(old, b) {
			t.Errorf("lifecycle plan changed %s", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("lifecycle plan removed %s", p)
		}
	}
	cat, err = index.Open(config.CatalogPath(data), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if q, err := cat.QueueStats("b"); err != nil || q.Count != 1 {
		t.Errorf("the copy to b: queue %+v, %v; want it still queued", q, err)
	}
}

// 'lifecycle plan --config FILE' plans from FILE, never from the running
// gateway's configuration: with a gateway running on FILE's data
// directory it refuses and says why; without --config it asks the
// gateway and says so in its first line.
func TestPlanConfigIsNeverTheGatewaysSilently(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	cfgPath := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(cfgPath, []byte("data: "+g.Data+"\ngroups:\n  - {name: all, clusters: ['*'], backends: [local], lifecycle: {retain_full: 1}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runWalgate("lifecycle", "plan", "--config", cfgPath)
	if code != 1 || !strings.Contains(errOut, "a gateway runs on "+g.Data) || !strings.Contains(errOut, "drop --config") || out != "" {
		t.Fatalf("plan --config with a gateway running: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runWalgate("lifecycle", "plan", "--data", g.Data)
	if first, _, _ := strings.Cut(out, "\n"); code != 0 || !strings.HasPrefix(first, "Policies from the running gateway's configuration") {
		t.Fatalf("plan --data: exit %d, first line %q\n%s", code, first, errOut)
	}
}
