package gcs_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/gcs"
)

func TestConfigValidate(t *testing.T) {
	good := gcs.Config{Bucket: "walgate-prod", Prefix: "pg/main"}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(%v): %v", good, err)
	}
	for _, tc := range []struct {
		name   string
		change func(*gcs.Config)
		want   string // in the error
	}{
		{"no bucket", func(c *gcs.Config) { c.Bucket = "" }, "bucket is required"},
		{"short bucket", func(c *gcs.Config) { c.Bucket = "ab" }, "3 to 63"},
		{"upper-case bucket", func(c *gcs.Config) { c.Bucket = "Walgate" }, "only a-z"},
		{"bucket with a slash", func(c *gcs.Config) { c.Bucket = "walgate/prod" }, "only a-z"},
		{"bucket ending in a dash", func(c *gcs.Config) { c.Bucket = "walgate-" }, "start and end"},
		{"prefix with a leading slash", func(c *gcs.Config) { c.Prefix = "/pg" }, "prefix"},
		{"prefix with a trailing slash", func(c *gcs.Config) { c.Prefix = "pg/" }, "prefix"},
		{"prefix with a dot segment", func(c *gcs.Config) { c.Prefix = "pg/../x" }, "prefix"},
		{"endpoint without a scheme", func(c *gcs.Config) { c.Endpoint = "127.0.0.1:4443" }, "endpoint"},
		{"endpoint ftp", func(c *gcs.Config) { c.Endpoint = "ftp://host/storage/v1/" }, "endpoint"},
		{"anonymous with credentials", func(c *gcs.Config) { c.Anonymous, c.CredentialsFile = true, "/etc/sa.json" }, "exclude each other"},
		{"negative chunk size", func(c *gcs.Config) { c.ChunkSize = -1 }, "chunk_size"},
		{"odd chunk size", func(c *gcs.Config) { c.ChunkSize = 1<<20 + 1 }, "256 KiB"},
		{"huge chunk size", func(c *gcs.Config) { c.ChunkSize = 1 << 30 }, "chunk_size"},
		{"negative timeout", func(c *gcs.Config) { c.Timeout = -time.Second }, "timeout"},
		{"negative attempts", func(c *gcs.Config) { c.MaxAttempts = -1 }, "max_attempts"},
	} {
		cfg := good
		tc.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error saying %q", tc.name, err, tc.want)
			continue
		}
		if _, nerr := gcs.New(ctx, cfg); nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("%s: New = %v, want the Validate error", tc.name, nerr)
		}
	}
	// All problems at once.
	err := gcs.Config{Prefix: "/x", ChunkSize: -1}.Validate()
	for _, want := range []string{"bucket", "prefix", "chunk_size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of a config with three problems = %v, want it to name %s", err, want)
		}
	}
}

// New does not contact the store: an endpoint where nothing listens is
// only noticed by the first request, with an error naming it.
func TestNewDoesNotContactTheStore(t *testing.T) {
	b, err := gcs.New(ctx, gcs.Config{Bucket: "nowhere", Endpoint: "http://127.0.0.1:1/storage/v1/", Anonymous: true, MaxAttempts: 1})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer b.Close()
	if _, err := b.Stat(ctx, "k"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Stat = %v, want a connection error", err)
	}
}

func TestMissingBucket(t *testing.T) {
	b := newBackend(t, emulatorConfig("no-such-bucket", ""))
	defer b.Close()
	_, err := b.Put(ctx, "k", strings.NewReader("x"), 1, backends.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Errorf("Put into a missing bucket = %v, want an error naming the bucket", err)
	}
	if errors.Is(err, backends.ErrNotFound) {
		t.Errorf("Put into a missing bucket = %v: not ErrNotFound, which means a missing object", err)
	}
	t.Logf("Put: %v", err)
}

func TestConfigYAML(t *testing.T) {
	const doc = `
bucket: walgate-prod
prefix: pg/main
endpoint: http://127.0.0.1:4443/storage/v1/
credentials_file: /etc/walgate/gcs.json
anonymous: false
chunk_size: 8388608
timeout: 30s
max_attempts: 3
`
	var cfg gcs.Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	want := gcs.Config{Bucket: "walgate-prod", Prefix: "pg/main", Endpoint: "http://127.0.0.1:4443/storage/v1/",
		CredentialsFile: "/etc/walgate/gcs.json", ChunkSize: 8 << 20, Timeout: 30 * time.Second, MaxAttempts: 3}
	if cfg != want {
		t.Errorf("decoded %v, want %v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// Secrets a config may carry (a password or token in the endpoint URL, the
// credentials file's contents) show nowhere: not in String, %v, %+v, %#v,
// slog output, Name() or errors.
func TestConfigRedacted(t *testing.T) {
	const secret = "hunter2-s3cret"
	credFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(credFile, []byte(`{"type":"service_account","private_key":"`+secret+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := gcs.Config{
		Bucket:          "walgate-prod",
		Prefix:          "pg",
		Endpoint:        "https://user:" + secret + "@proxy.example/storage/v1/?token=" + secret,
		CredentialsFile: credFile,
		MaxAttempts:     1,
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("opening", "config", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("opening", "config", cfg)
	shown := map[string]string{
		"Redacted": cfg.Redacted(),
		"String":   cfg.String(),
		"%v":       fmt.Sprintf("%v", cfg),
		"%+v":      fmt.Sprintf("%+v", cfg),
		"%#v":      fmt.Sprintf("%#v", cfg),
		"%s of &":  fmt.Sprintf("%s", &cfg),
		"slog":     logs.String(),
	}
	bad := cfg
	bad.ChunkSize = -1
	bad.Endpoint = "ftp://user:" + secret + "@proxy.example/?token=" + secret
	shown["Validate"] = bad.Validate().Error()
	bad.Endpoint = "http://user:" + secret + "@proxy.example/%zz"
	shown["Validate of an unparsable URL"] = bad.Validate().Error()

	b, err := gcs.New(ctx, cfg) // the key is not parsed until the first request
	if err != nil {
		shown["New"] = err.Error()
	} else {
		shown["Name"] = b.Name()
		_, err := b.Stat(ctx, "k")
		shown["Stat"] = err.Error()
		b.Close()
	}
	for what, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the secret: %s", what, s)
		}
	}
	for _, want := range []string{"walgate-prod", "proxy.example", credFile} {
		if !strings.Contains(cfg.Redacted(), want) {
			t.Errorf("Redacted() = %s, want it to show %s", cfg.Redacted(), want)
		}
	}
	t.Logf("Redacted: %s", cfg.Redacted())
}

// The credentials file is read by New, and only a service-account key is
// accepted: other credential types can name programs to run.
func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing.json"), "no such file"},
		{"not json", write("garbage.json", "secret-bytes, not JSON"), "credentials_file"},
		{"external account", write("external.json", `{"type":"external_account","credential_source":{"executable":{"command":"/bin/true"}}}`), `expected type "service_account"`},
		{"user login", write("user.json", `{"type":"authorized_user","client_secret":"secret-bytes"}`), `expected type "service_account"`},
	} {
		_, err := gcs.New(ctx, gcs.Config{Bucket: "walgate-prod", CredentialsFile: tc.path})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error saying %q", tc.name, err, tc.want)
		} else if strings.Contains(err.Error(), "secret-bytes") {
			t.Errorf("%s: the error shows the file's contents: %v", tc.name, err)
		}
	}
}
