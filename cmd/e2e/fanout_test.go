package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/backends/gcs"
	"github.com/walgate/walgate/backends/s3"
	"github.com/walgate/walgate/cmd/internal/pgtest"
	"github.com/walgate/walgate/gateway"
	"github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/gatewaytest"
	"github.com/walgate/walgate/index"
)

// stores are the three emulators, running.
type stores struct {
	s3    *emulators.SeaweedFS
	gcs   *emulators.GCSServer
	azure *emulators.AzuriteServer
}

// startStores starts SeaweedFS, fake-gcs-server and Azurite at once and
// makes a bucket (container) in each.
func startStores(t *testing.T, bucket string) *stores {
	t.Helper()
	var st stores
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() { st.s3, errs[0] = emulators.StartSeaweedFS() })
	wg.Go(func() { st.gcs, errs[1] = emulators.StartFakeGCS() })
	wg.Go(func() { st.azure, errs[2] = emulators.StartAzurite() })
	wg.Wait()
	t.Cleanup(func() {
		for _, p := range []interface{ Stop() error }{st.s3, st.gcs, st.azure} {
			if p != nil && !isNilStopper(p) {
				p.Stop()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := st.s3.NewBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if err := st.gcs.NewBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if err := st.azure.NewContainer(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	return &st
}

func isNilStopper(p interface{ Stop() error }) bool {
	switch v := p.(type) {
	case *emulators.SeaweedFS:
		return v == nil
	case *emulators.GCSServer:
		return v == nil
	case *emulators.AzuriteServer:
		return v == nil
	}
	return false
}

// backendConfigs: S3 first (the primary), then GCS and Azure.
func (st *stores) backendConfigs(bucket string) []config.BackendConfig {
	return []config.BackendConfig{
		{Name: "s3", Type: "s3", S3: &s3.Config{Bucket: bucket, Prefix: "archive", Endpoint: st.s3.Endpoint, PathStyle: true,
			Region: st.s3.Region, AccessKeyID: st.s3.AccessKey, SecretAccessKey: st.s3.SecretKey, Timeout: 5 * time.Second, MaxAttempts: 1},
			Classes: map[string]string{"hot": "STANDARD", "warm": "STANDARD_IA", "cold": "GLACIER_IR"}},
		{Name: "gcs", Type: "gcs", GCS: &gcs.Config{Bucket: bucket, Prefix: "archive", Endpoint: st.gcs.Endpoint, Anonymous: true},
			Classes: map[string]string{"hot": "STANDARD", "warm": "NEARLINE"}},
		{Name: "azure", Type: "azure", Azure: &azure.Config{Account: st.azure.Account, AccountKey: st.azure.AccountKey, Endpoint: st.azure.Endpoint,
			Container: bucket, Prefix: "archive", Timeout: 5 * time.Second},
			Classes: map[string]string{"hot": "Hot", "warm": "Cool", "cold": "Cold"}},
	}
}

// TestFanoutRestoreFromReplicas archives and backs up a real cluster
// through a gateway whose primary is S3 (SeaweedFS) with GCS and Azure
// replicas, restores it, then stops the primary and restores again from
// the replicas alone; both restores match the source byte for byte. It
// also runs `walgate backend check` against each store.
func TestFanoutRestoreFromReplicas(t *testing.T) {
	requirePostgres(t)
	const bucket = "walgate-e2e"
	st := startStores(t, bucket)
	cfg := gateway.Config{
		Backends:    st.backendConfigs(bucket),
		Groups:      []config.GroupConfig{{Name: "all", Clusters: []string{"*"}, Backends: []string{"s3", "gcs", "azure"}, Ack: "primary"}},
		Replication: config.ReplicationConfig{RetryMin: 100 * time.Millisecond, RetryMax: time.Second},
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Config: cfg})

	// The storage team's check of each store, through the binary.
	conf := filepath.Join(t.TempDir(), "walgate.yaml")
	if err := os.WriteFile(conf, []byte(backendsYAML(g.Data, cfg.Backends)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s3", "gcs", "azure"} {
		out, err := exec.Command(walgateBin(t), "backend", "check", name, "--config", conf).CombinedOutput()
		if err != nil {
			t.Fatalf("walgate backend check %s: %v\n%s", name, err, out)
		}
		if !strings.Contains(string(out), "works for walgate") {
			t.Errorf("backend check %s:\n%s", name, out)
		}
		t.Logf("walgate backend check %s:\n%s", name, out)
	}

	e := newBackupEnv(t, g, true)
	ctx := e.ctx
	if _, err := e.src.Pgbench(ctx, "-i", "-s", "4", "-q"); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Exec(ctx, `CREATE TABLE probe AS SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 50000) g`); err != nil {
		t.Fatal(err)
	}
	e.mustClient(t, "backup-push", e.src.DataDir)
	if _, err := e.src.Pgbench(ctx, "-c", "2", "-j", "2", "-T", "3", "-n"); err != nil {
		t.Fatal(err)
	}
	e.archiveAll(t)
	want := checksums(t, ctx, e.src)
	e.archiveAll(t)

	waitReplicated(t, g)
	checkReplicas(t, g)
	out, err := exec.Command(walgateBin(t), "status", "--data", g.Data, "--backends").CombinedOutput()
	if err != nil {
		t.Fatalf("walgate status --backends: %v\n%s", err, out)
	}
	for _, want := range []string{"BACKEND", "s3 ", "gcs ", "azure "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walgate status --backends lacks %q:\n%s", want, out)
		}
	}
	t.Logf("walgate status --backends:\n%s", out)

	c := e.restore(t, "LATEST", pgtest.Recovery{})
	sameTables(t, "restore with every store up", want, checksums(t, ctx, c))
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(c.DataDir)

	// The primary goes away: reads fail over to GCS and Azure.
	if err := st.s3.Stop(); err != nil {
		t.Fatal(err)
	}
	c = e.restore(t, "LATEST", pgtest.Recovery{})
	sameTables(t, "restore with the S3 primary stopped", want, checksums(t, ctx, c))
	bs, err := g.Server.BackendsStatus()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Name == "s3" && b.LastError == "" {
			t.Errorf("the stopped primary shows no error: %+v", b)
		}
	}
}

// waitReplicated waits until no copy is queued (the emulators are slower
// than local directories).
func waitReplicated(t *testing.T, g *gatewaytest.Gateway) {
	t.Helper()
	gatewaytest.WaitReplicated(t, g.Server.Stores(), 3*time.Minute)
}

// checkReplicas reads every cataloged object (WAL, backup objects,
// sentinels) from every backend and compares its SHA-256 with the
// catalog's, and checks the catalog names all three as holders.
func checkReplicas(t *testing.T, g *gatewaytest.Gateway) {
	t.Helper()
	cfg := g.Server.Config()
	cat := g.Server.Catalog()
	type obj struct{ key, sha string }
	var objs []obj
	if err := cat.ListWAL("db", "", func(o index.WALObject) error {
		objs = append(objs, obj{o.Key, o.SHA256})
		if len(o.Holders()) != 3 {
			t.Errorf("WAL %s: holders %v", o.Name, o.Holders())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	backups, err := cat.Backups("db", index.BackupCommitted)
	if err != nil || len(backups) == 0 {
		t.Fatalf("backups: %v %v", backups, err)
	}
	for _, b := range backups {
		if len(b.Holders()) != 3 {
			t.Errorf("backup %s: holders %v", b.Name, b.Holders())
		}
		for _, f := range b.Files {
			objs = append(objs, obj{f.Key, f.SHA256})
		}
		objs = append(objs, obj{b.SentinelKey, ""})
	}
	for _, bc := range cfg.Backends {
		be, err := all.Open(context.Background(), bc)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			rc, err := be.Get(context.Background(), o.key, 0, -1)
			if err != nil {
				t.Errorf("%s: %s: %v", bc.Name, o.key, err)
				continue
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil || (o.sha != "" && hex.EncodeToString(h.Sum(nil)) != o.sha) {
				t.Errorf("%s: %s damaged (%v)", bc.Name, o.key, err)
			}
		}
		be.Close()
		t.Logf("%s holds all %d objects, intact", bc.Name, len(objs))
	}
}

// backendsYAML writes a gateway config with the given backends, for the
// walgate binary.
func backendsYAML(data string, bcs []config.BackendConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data: %s\nbackends:\n", data)
	for _, bc := range bcs {
		fmt.Fprintf(&b, "  - name: %s\n    type: %s\n", bc.Name, bc.Type)
		switch bc.Type {
		case "fs":
			fmt.Fprintf(&b, "    path: %s\n", bc.Path)
		case "s3":
			c := bc.S3
			fmt.Fprintf(&b, "    s3: {bucket: %s, prefix: %s, endpoint: %q, path_style: true, region: %s, access_key_id: %s, secret_access_key: %s}\n",
				c.Bucket, c.Prefix, c.Endpoint, c.Region, c.AccessKeyID, c.SecretAccessKey)
		case "gcs":
			c := bc.GCS
			fmt.Fprintf(&b, "    gcs: {bucket: %s, prefix: %s, endpoint: %q, anonymous: true}\n", c.Bucket, c.Prefix, c.Endpoint)
		case "azure":
			c := bc.Azure
			fmt.Fprintf(&b, "    azure: {account: %s, account_key: %q, endpoint: %q, container: %s, prefix: %s}\n",
				c.Account, c.AccountKey, c.Endpoint, c.Container, c.Prefix)
		}
		if len(bc.Classes) > 0 {
			b.WriteString("    classes: {")
			first := true
			for k, v := range bc.Classes {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "%s: %s", k, v)
			}
			b.WriteString("}\n")
		}
	}
	return b.String()
}
