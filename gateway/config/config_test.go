package config

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/gateway/health"
)

// Every shipped example config parses strictly and validates.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	for _, f := range files {
		cfg, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigStrict(t *testing.T) {
	_, err := Parse([]byte("data: /x\nlisten: 127.0.0.1:1\nlisten_adress: 1\n"), "t")
	if err == nil || !strings.Contains(err.Error(), "listen_adress") {
		t.Fatalf("unknown key accepted: %v", err)
	}
	_, err = Parse([]byte("data: /x\ntls:\n  certfile: a\n"), "t")
	if err == nil {
		t.Fatal("unknown nested key accepted")
	}
	cfg, err := Parse([]byte("data: /x\nlimits:\n  idle_timeout: 90s\n"), "t")
	if err != nil || cfg.Limits.IdleTimeout.Seconds() != 90 {
		t.Fatalf("duration: %v %v", cfg.Limits.IdleTimeout, err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		yaml, want string
	}{
		{"listen: 127.0.0.1:1\n", "data"},
		{"data: /x\nlisten: 0.0.0.0:7480\n", "refusing plain HTTP"},
		{"data: /x\nlisten: '[::]:7480'\n", "refusing plain HTTP"},
		{"data: /x\ntls:\n  cert: a\n", "go together"},
		{"data: /x\ntls:\n  client_ca: a\n", "client certificates only work over TLS"},
		{"data: /x\nbackends:\n  - {name: a, type: s3}\n", "needs an s3: section"},
		{"data: /x\nbackends:\n  - {name: a, type: s3, s3: {region: x}}\n", "bucket is required"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a, s3: {bucket: b}}\n", "an s3: section on a fs backend"},
		{"data: /x\nbackends:\n  - {name: a, type: gcs}\n", "needs a gcs: section"},
		{"data: /x\nbackends:\n  - {name: a, type: azure, azure: {container: c}}\n", "no credential: set one of account_key"},
		{"data: /x\nbackends:\n  - {name: a, type: s3, s3: {bucket: b, region: r}, azure: {container: c}}\n", "an azure: section on a s3 backend"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a, classes: {tepid: x}}\n", "not one of hot"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a}\ngroups:\n  - {name: g, clusters: ['*'], backends: [a, b]}\n", `backend "b" is not in backends`},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a}\ngroups:\n  - {name: g, clusters: ['*'], backends: [a], ack: 2}\n", "a number from 1 to 1"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a}\ngroups:\n  - {name: g, clusters: ['*'], backends: [a], ack: most}\n", "use primary, all"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a}\ngroups:\n  - {name: g, clusters: ['[a'], backends: [a]}\n", "cluster pattern"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a}\ngroups:\n  - {name: g, backends: [a]}\n", "list at least one pattern"},
		{"data: /x\nbackends:\n  - {name: a, type: fs, path: /a}\ngroups:\n  - {name: g, clusters: ['*'], backends: [a, a]}\n", "listed twice"},
		{"data: /x\nreplication:\n  retry_min: 1m\n  retry_max: 1s\n", "retry_max"},
		{"data: /x\nbackends:\n  - {name: a, type: ftp}\n", "unknown type"},
		{"data: /x\nbackends:\n  - {name: a, type: fs}\n", "needs path"},
		{"data: /x\nlog:\n  level: loud\n", "log.level"},
		{"data: /x\nlisten: nonsense\n", "host:port"},
		{"data: /x\nmetrics:\n  listen: 0.0.0.0:9480\n", "no authentication"},
		{"data: /x\nmetrics:\n  listen: nine\n", "metrics.listen"},
		{"data: /x\nhealth:\n  delayed_for: -1m\n", "must not be negative"},
	}
	for _, c := range cases {
		cfg, err := Parse([]byte(c.yaml), "t")
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		cfg.Defaults()
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error about %q", c.yaml, err, c.want)
		}
	}
	// Secrets never show when a config is printed.
	cfg, err := Parse([]byte("data: /x\nbackends:\n  - {name: a, type: s3, s3: {bucket: b, region: r, access_key_id: AKIAEXAMPLE, secret_access_key: s3cr3t-value, session_token: t0ken-value}}\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg.Backends)} {
		if strings.Contains(form, "s3cr3t-value") || strings.Contains(form, "t0ken-value") {
			t.Errorf("a printed config shows a secret: %s", form)
		}
	}
	if len(cfg.Groups) != 1 || cfg.Groups[0].Ack != AckPrimary || cfg.Groups[0].Backends[0] != "a" {
		t.Errorf("default group = %+v", cfg.Groups)
	}
	ok := Config{Data: "/x", Listen: "0.0.0.0:7480", AllowInsecureHTTP: true}
	ok.Defaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("allow_insecure_http: %v", err)
	}
}

// The example configuration parses strictly and validates, and its health
// and metrics sections are the defaults they document.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "configs", "walgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("configs/walgate.yaml: %v", err)
	}
	if cfg.Policy() != health.DefaultPolicy() {
		t.Fatalf("the example's health section %+v differs from the defaults %+v", cfg.Policy(), health.DefaultPolicy())
	}
	if cfg.Metrics.Listen != "127.0.0.1:9480" {
		t.Fatalf("metrics.listen %q", cfg.Metrics.Listen)
	}
}

// Each store's section validates as written in a config, with its unset
// fields taking their defaults (what `walgate serve` sees).
func TestStoreSectionsWithDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`data: /x
backends:
  - {name: s3, type: s3, s3: {bucket: pg-archive, region: r}}
  - {name: gcs, type: gcs, gcs: {bucket: pg-archive, anonymous: true}}
  - {name: az, type: azure, azure: {account: acct, container: wal, account_key: "aGVsbG8="}}
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bc := range cfg.Backends {
		b, err := all.Open(context.Background(), bc)
		if err != nil {
			t.Fatalf("all.Open(%s): %v", bc.Name, err)
		}
		b.Close()
	}
}
