package azure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/backendtest/emulators"
)

var server *emulators.AzuriteServer

func TestMain(m *testing.M) {
	var err error
	server, err = emulators.StartAzurite()
	if err != nil {
		fmt.Fprintln(os.Stderr, "azure tests need Azurite:", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

var containers atomic.Int64

func newContainer(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("walgate-test-%d-%d", time.Now().UnixNano()%1e6, containers.Add(1))
	if err := server.NewContainer(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

func config(ctr, prefix string) azure.Config {
	return azure.Config{Account: server.Account, AccountKey: server.Key, Endpoint: server.Endpoint, Container: ctr, Prefix: prefix,
		BlockSize: 1 << 20, Timeout: 10 * time.Second}
}

func open(t *testing.T, cfg azure.Config) *azure.Backend {
	t.Helper()
	b, err := azure.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the suite with 1 MiB blocks, so that objects
// above that are staged in blocks and committed as a list.
func TestConformance(t *testing.T) {
	ctr := newContainer(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend { return open(t, config(ctr, "")) })
}

// The same through a connection string and with the default 4 MiB
// blocks.
func TestConformanceConnectionString(t *testing.T) {
	if testing.Short() {
		t.Skip("TestConformance covers -short")
	}
	ctr := newContainer(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return open(t, azure.Config{ConnectionString: server.ConnectionString(), Container: ctr})
	})
}

func TestPrefix(t *testing.T) {
	ctx := context.Background()
	ctr := newContainer(t)
	b := open(t, config(ctr, "/under/a prefix/"))
	outside := open(t, config(ctr, ""))
	for _, k := range []string{"c1/wal_005/a", "c1/wal_005/b", "c2/x"} {
		if _, err := b.Put(ctx, k, strings.NewReader(k), int64(len(k)), backends.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := outside.Put(ctx, "c1/wal_005/outside", strings.NewReader("x"), 1, backends.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := b.List(ctx, "", func(o backends.ObjectInfo) error { got = append(got, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "c1/wal_005/a,c1/wal_005/b,c2/x" {
		t.Errorf("List under the prefix = %q", got)
	}
	if _, err := outside.Stat(ctx, "under/a prefix/c2/x"); err != nil {
		t.Errorf("the object is not under the prefix in the container: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  azure.Config
		want string
	}{
		{azure.Config{Account: "a", AccountKey: "k"}, "container is required"},
		{azure.Config{Account: "a", Container: "c"}, "no credentials"},
		{azure.Config{Account: "a", Container: "c", AccountKey: "k", SASToken: "s"}, "only one"},
		{azure.Config{Container: "c", AccountKey: "k"}, "account is required"},
		{azure.Config{Account: "a", Container: "c", AccountKey: "k", Endpoint: "blob.example.net"}, "want a URL"},
		{azure.Config{Account: "a", Container: "c", AccountKey: "k", BlockSize: 5000 << 20}, "block_size"},
	} {
		_, err := azure.New(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	cfg := config("c", "")
	cfg2 := azure.Config{ConnectionString: server.ConnectionString(), Container: "c"}
	for _, c := range []azure.Config{cfg, cfg2} {
		for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
			if strings.Contains(s, server.Key) {
				t.Errorf("config printed with the key: %s", s)
			}
		}
	}
	b := open(t, cfg)
	if b.Name() != "azure:"+server.Account+"/c" {
		t.Errorf("Name() = %q", b.Name())
	}
	// A wrong key: the service refuses, and the error does not show it.
	ctr := newContainer(t)
	bad := config(ctr, "")
	bad.AccountKey = "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXkgbWF0ZXJpYWwgZm9yIGF6dXJl"
	bad.MaxAttempts = 1
	_, err := open(t, bad).Put(context.Background(), "k", strings.NewReader("x"), 1, backends.PutOptions{})
	if err == nil {
		t.Fatal("Put with a wrong key succeeded")
	}
	if strings.Contains(err.Error(), bad.AccountKey) {
		t.Errorf("the error shows the key: %v", err)
	}
	t.Logf("wrong key: %.200s", err)
}

// Tiers at upload and by Set Blob Tier, as Azurite reports them; an
// archived blob is refused on read with ErrArchived, and readable again
// once moved back (Azurite rehydrates at once; Azure takes hours).
func TestTiers(t *testing.T) {
	ctx := context.Background()
	b := open(t, config(newContainer(t), ""))
	md := map[string]string{"cluster": "main", "content-id": "sha256:00"}
	info, err := b.Put(ctx, "cool", strings.NewReader("data"), 4, backends.PutOptions{Class: "Cool", Metadata: md})
	if err != nil || info.Class != "Cool" {
		t.Fatalf("Put in Cool: %+v %v", info, err)
	}
	if st, err := b.Stat(ctx, "cool"); err != nil || st.Class != "Cool" {
		t.Fatalf("Stat after a Cool put: %+v %v", st, err)
	}
	for _, tier := range []string{"Cold", "Hot", "Archive"} {
		if err := b.SetClass(ctx, "cool", tier); err != nil {
			t.Fatalf("SetClass %s: %v", tier, err)
		}
		st, err := b.Stat(ctx, "cool")
		if err != nil || st.Class != tier {
			t.Errorf("after SetClass(%s): %+v %v", tier, st, err)
		}
		if st.Metadata["content-id"] != "sha256:00" || st.Metadata["cluster"] != "main" {
			t.Errorf("metadata after SetClass(%s) = %v", tier, st.Metadata)
		}
	}
	if _, err := b.Get(ctx, "cool", 0, -1); !errors.Is(err, backends.ErrArchived) {
		t.Errorf("Get of an archived blob = %v, want ErrArchived", err)
	} else {
		t.Logf("archived: %v", err)
	}
	if err := b.SetClass(ctx, "cool", "Hot"); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Get(ctx, "cool", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "data" {
		t.Errorf("after rehydration: %q", got)
	}
	if err := b.SetClass(ctx, "cool", "GLACIER"); !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("SetClass(GLACIER) = %v, want ErrUnsupported", err)
	}
	var listed []backends.ObjectInfo
	if err := b.List(ctx, "", func(o backends.ObjectInfo) error { listed = append(listed, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Class != "Hot" || listed[0].Metadata["content-id"] != "sha256:00" {
		t.Errorf("List = %+v", listed)
	}
}

// The server dying part way through uploads (one Put Blob, a staged
// upload), a slow link and an outage: clear errors, nothing visible.
func TestServerDiesMidUpload(t *testing.T) {
	ctx := context.Background()
	ctr := newContainer(t)
	proxy, err := backendtest.NewProxy(strings.TrimPrefix(strings.TrimSuffix(server.Endpoint, "/"+server.Account), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cfg := config(ctr, "dies")
	cfg.Endpoint = "http://" + proxy.Addr() + "/" + server.Account
	cfg.MaxAttempts = 1
	b := open(t, cfg)
	direct := open(t, config(ctr, "dies"))
	data := bytes.Repeat([]byte("walgate "), 1<<20) // 8 MiB
	for _, tc := range []struct {
		name string
		n    int
	}{{"single", 900 << 10}, {"blocks", len(data)}} {
		proxy.CutAfter(600 << 10)
		_, err := b.Put(ctx, tc.name, bytes.NewReader(data[:tc.n]), int64(tc.n), backends.PutOptions{})
		proxy.CutAfter(0)
		if err == nil {
			t.Errorf("%s: Put through a connection cut after 600 KiB succeeded", tc.name)
			continue
		}
		t.Logf("%s: %.200s", tc.name, err)
		if _, err := direct.Stat(ctx, tc.name); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("%s: after the cut upload Stat = %v, want ErrNotFound", tc.name, err)
		}
	}
	if _, err := direct.Put(ctx, "present", strings.NewReader("here"), 4, backends.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	slow := cfg
	slow.Timeout = 300 * time.Millisecond
	proxy.SetDelay(time.Second)
	_, err = open(t, slow).Stat(ctx, "present")
	proxy.SetDelay(0)
	if err == nil {
		t.Error("Stat through a link slower than the timeout succeeded")
	}
	proxy.SetDown(true)
	if _, err := b.Stat(ctx, "present"); err == nil || errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat with the server down = %v, want a connection error", err)
	}
	proxy.SetDown(false)
	if _, err := b.Stat(ctx, "present"); err != nil {
		t.Errorf("Stat after the outage: %v", err)
	}
}

// TestCheck runs `walgate backend check`'s checks against Azurite.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	ctr := newContainer(t)
	results := backends.Check(ctx, open(t, config(ctr, "checked")), []string{"Cool", "Cold"})
	for _, r := range results {
		t.Logf("%-24s ok=%v %s", r.Name, r.OK, r.Detail)
		if !r.OK {
			t.Errorf("%s failed: %s", r.Name, r.Detail)
		}
	}
	var left []string
	if err := open(t, config(ctr, "")).List(ctx, "", func(o backends.ObjectInfo) error { left = append(left, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the check left %q", left)
	}
}
