package s3_test

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
	"github.com/walgate/walgate/backends/backendtest"
	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/backends/s3"
)

var server *emulators.SeaweedFS

func TestMain(m *testing.M) {
	var err error
	server, err = emulators.StartSeaweedFS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3 tests need SeaweedFS:", err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

var buckets atomic.Int64

// newBucket creates a fresh bucket for one test.
func newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("walgate-test-%d-%d", time.Now().UnixNano()%1e6, buckets.Add(1))
	if err := server.NewBucket(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

func config(bucket, prefix string) s3.Config {
	return s3.Config{
		Bucket: bucket, Prefix: prefix, Endpoint: server.Endpoint, PathStyle: true,
		Region: server.Region, AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey,
		PartSize: 5 << 20, MultipartThreshold: 6 << 20, Timeout: 10 * time.Second,
	}
}

// newProxy starts a fault proxy in front of SeaweedFS, closed with the test.
func newProxy(t *testing.T) *backendtest.Proxy {
	t.Helper()
	proxy, err := backendtest.NewProxy(strings.TrimPrefix(server.Endpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return proxy
}

func open(t *testing.T, cfg s3.Config) *s3.Backend {
	t.Helper()
	b, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the suite with small multipart thresholds, so that
// objects over 6 MiB go in parts. It runs without a prefix: the suite
// writes keys of the full 1024 bytes S3 allows (TestPrefix covers one).
func TestConformance(t *testing.T) {
	bucket := newBucket(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend { return open(t, config(bucket, "")) })
}

func TestPrefix(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	b := open(t, config(bucket, "/under/a prefix/"))
	outside := open(t, config(bucket, ""))
	if b.Name() != "s3:"+bucket+"/under/a prefix" {
		t.Errorf("Name() = %q", b.Name())
	}
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
		t.Errorf("the object is not under the prefix in the bucket: %v", err)
	}
	long := strings.Repeat("k", backends.MaxKeyLen-5)
	if _, err := b.Put(ctx, long, strings.NewReader("x"), 1, backends.PutOptions{}); !errors.Is(err, backends.ErrInvalidKey) {
		t.Errorf("Put of a key too long with the prefix = %v, want ErrInvalidKey", err)
	}
}

// TestConformanceSinglePut runs the suite with every known-size object in
// one streamed PutObject (the 64 MiB object included), the path WAL takes.
func TestConformanceSinglePut(t *testing.T) {
	if testing.Short() {
		t.Skip("the multipart variant above covers -short")
	}
	bucket := newBucket(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		cfg := config(bucket, "")
		cfg.MultipartThreshold = 0 // default, 256 MiB
		return open(t, cfg)
	})
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  s3.Config
		want string
	}{
		{s3.Config{}, "bucket is required"},
		{s3.Config{Bucket: "b", Endpoint: "s3.example.net"}, "starting with https://"},
		{s3.Config{Bucket: "b", AccessKeyID: "AKIA"}, "go together"},
		{s3.Config{Bucket: "b", PartSize: 1 << 20}, "at least 5 MiB"},
		{s3.Config{Bucket: "b", MultipartThreshold: 6 << 30}, "up to 5 GiB"},
		{s3.Config{Bucket: "b", Prefix: "a//b"}, "double slashes"},
		{s3.Config{Bucket: "b", Endpoint: "http://x", CAFile: "/nonexistent/ca.pem"}, "ca_file"},
	} {
		_, err := s3.New(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	cfg := config("b", "")
	cfg.SessionToken = "the-session-token"
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, server.SecretKey) || strings.Contains(s, "the-session-token") {
			t.Errorf("config printed with a secret: %s", s)
		}
	}
	b := open(t, cfg)
	if strings.Contains(b.Name(), server.SecretKey) || b.Name() != "s3:b" {
		t.Errorf("Name() = %q", b.Name())
	}
	// A wrong secret: the error names the problem, not the secret.
	bucket := newBucket(t)
	bad := config(bucket, "")
	bad.SecretAccessKey = "wrong-secret-value"
	_, err := open(t, bad).Put(context.Background(), "k", strings.NewReader("x"), 1, backends.PutOptions{})
	if err == nil {
		t.Fatal("Put with a wrong secret key succeeded: SeaweedFS should check signatures")
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("error shows the secret: %v", err)
	}
	t.Logf("wrong secret: %v", err)
}

func TestClasses(t *testing.T) {
	ctx := context.Background()
	b := open(t, config(newBucket(t), "classes"))
	md := map[string]string{"cluster": "main", "kind": "wal"}
	info, err := b.Put(ctx, "ia", strings.NewReader("data"), 4, backends.PutOptions{Class: "STANDARD_IA", Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	if info.Class != "STANDARD_IA" {
		t.Errorf("Put returned class %q", info.Class)
	}
	st, err := b.Stat(ctx, "ia")
	if err != nil || st.Class != "STANDARD_IA" {
		t.Fatalf("Stat after a STANDARD_IA put: %+v, %v", st, err)
	}
	for _, class := range []string{"GLACIER_IR", "STANDARD", "ONEZONE_IA"} {
		if err := b.SetClass(ctx, "ia", class); err != nil {
			t.Fatalf("SetClass %s: %v", class, err)
		}
		st, err := b.Stat(ctx, "ia")
		if err != nil {
			t.Fatal(err)
		}
		if st.Class != class {
			t.Errorf("after SetClass(%s) Stat says %q", class, st.Class)
		}
		if st.Metadata["cluster"] != "main" || st.Metadata["kind"] != "wal" {
			t.Errorf("after SetClass(%s) metadata = %v", class, st.Metadata)
		}
	}
	if err := b.SetClass(ctx, "ia", "COLD"); !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("SetClass(COLD) = %v, want ErrUnsupported", err)
	}
	if _, err := b.Put(ctx, "x", strings.NewReader("d"), 1, backends.PutOptions{Class: "Hot"}); !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("Put with class Hot = %v, want ErrUnsupported", err)
	}
	if err := b.SetClass(ctx, "absent", "STANDARD_IA"); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("SetClass of an absent key = %v, want ErrNotFound", err)
	}
}

// TestServerDiesMidUpload cuts the connection part way through uploads
// (a single PUT, a multipart upload, a part of unknown size) and stops the
// server under a download: clear errors, and nothing visible afterwards.
func TestServerDiesMidUpload(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	proxy := newProxy(t)
	cfg := config(bucket, "dies")
	cfg.Endpoint = "http://" + proxy.Addr()
	cfg.MaxAttempts = 1
	b := open(t, cfg)
	direct := open(t, config(bucket, "dies"))
	data := bytes.Repeat([]byte("walgate "), 2<<20) // 16 MiB
	for _, tc := range []struct {
		name string
		size int64
	}{{"single", 4 << 20}, {"multipart", int64(len(data))}, {"unknown-size", -1}} {
		proxy.CutAfter(3 << 20)
		n := tc.size
		if n < 0 {
			n = int64(len(data))
		}
		_, err := b.Put(ctx, tc.name, bytes.NewReader(data[:n]), tc.size, backends.PutOptions{})
		if err == nil {
			t.Errorf("%s: Put through a connection cut after 3 MiB succeeded", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		proxy.CutAfter(0)
		if _, err := direct.Stat(ctx, tc.name); !errors.Is(err, backends.ErrNotFound) {
			t.Errorf("%s: after the cut upload Stat = %v, want ErrNotFound", tc.name, err)
		}
	}

	// Slow responses past the timeout: a clear timeout error.
	proxy.CutAfter(0)
	if _, err := direct.Put(ctx, "present", strings.NewReader("here"), 4, backends.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	slow := cfg
	slow.Timeout = 300 * time.Millisecond
	sb := open(t, slow)
	proxy.SetDelay(time.Second)
	_, err := sb.Stat(ctx, "present")
	proxy.SetDelay(0)
	if err == nil {
		t.Error("Stat through a link slower than the timeout succeeded")
	} else {
		t.Logf("slow link: %v", err)
	}

	// Down: a clear connection error, then fine again once back.
	proxy.SetDown(true)
	if _, err := b.Stat(ctx, "present"); err == nil || errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Stat with the server down = %v, want a connection error", err)
	}
	proxy.SetDown(false)
	rc, err := b.Get(ctx, "present", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "here" {
		t.Errorf("Get after the outage = %q", got)
	}
}

// TestCheck runs `walgate backend check`'s checks against SeaweedFS, and
// with a wrong secret key (the first, required, step fails and says why).
func TestCheck(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	results := backends.Check(ctx, open(t, config(bucket, "checked")), []string{"STANDARD_IA", "GLACIER_IR"})
	for _, r := range results {
		t.Logf("%-28s ok=%v %s", r.Name, r.OK, r.Detail)
		if !r.OK {
			t.Errorf("%s failed: %s", r.Name, r.Detail)
		}
	}
	if len(results) < 12 {
		t.Errorf("only %d capabilities checked", len(results))
	}
	var left []string
	if err := open(t, config(bucket, "")).List(ctx, "", func(o backends.ObjectInfo) error { left = append(left, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the check left objects behind: %q", left)
	}

	bad := config(bucket, "")
	bad.SecretAccessKey = "not-the-secret"
	results = backends.Check(ctx, open(t, bad), nil)
	if len(results) != 1 || results[0].OK || !strings.Contains(results[0].Detail, "SignatureDoesNotMatch") {
		t.Errorf("check with a wrong secret: %+v", results)
	}
}

// TestBufferedRetried cuts the first connection of an upload part way
// through: a body the driver holds in memory (an upload of unknown size,
// as one PUT or in parts) is sent again on a new connection and stored
// whole; a streamed body of known size is tried once and leaves nothing.
func TestBufferedRetried(t *testing.T) {
	ctx := context.Background()
	bucket := newBucket(t)
	proxy := newProxy(t)
	direct := open(t, config(bucket, "retried"))
	data := bytes.Repeat([]byte("walgate!"), 12<<17) // 12 MiB
	for _, tc := range []struct {
		name string
		n    int
		size int64 // -1: unknown
		ok   bool
	}{
		{"unknown-single", 4 << 20, -1, true},
		{"unknown-parts", len(data), -1, true},
		{"known-streamed", 4 << 20, 4 << 20, false},
	} {
		cfg := config(bucket, "retried")
		cfg.Endpoint = "http://" + proxy.Addr()
		b := open(t, cfg) // a fresh client: its first connection is the one cut
		proxy.CutNext(3<<20, 1)
		_, err := b.Put(ctx, tc.name, bytes.NewReader(data[:tc.n]), tc.size, backends.PutOptions{})
		proxy.CutNext(0, 0)
		if !tc.ok {
			if err == nil {
				t.Errorf("%s: Put of a streamed body through a cut connection succeeded", tc.name)
			}
			if _, err := direct.Stat(ctx, tc.name); !errors.Is(err, backends.ErrNotFound) {
				t.Errorf("%s: after the failed upload Stat = %v, want ErrNotFound", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Put through one cut connection: %v", tc.name, err)
			continue
		}
		rc, err := direct.Get(ctx, tc.name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[:tc.n]) {
			t.Errorf("%s: stored %d bytes (err %v), want the %d bytes sent", tc.name, len(got), err, tc.n)
		}
	}
}
