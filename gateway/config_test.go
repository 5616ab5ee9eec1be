package gateway

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/walgate/walgate/gateway/health"
)

// Every shipped example config parses strictly and validates.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	for _, f := range files {
		cfg, err := LoadConfig(f)
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
	_, err := ParseConfig([]byte("data: /x\nlisten: 127.0.0.1:1\nlisten_adress: 1\n"), "t")
	if err == nil || !strings.Contains(err.Error(), "listen_adress") {
		t.Fatalf("unknown key accepted: %v", err)
	}
	_, err = ParseConfig([]byte("data: /x\ntls:\n  certfile: a\n"), "t")
	if err == nil {
		t.Fatal("unknown nested key accepted")
	}
	cfg, err := ParseConfig([]byte("data: /x\nlimits:\n  idle_timeout: 90s\n"), "t")
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
		{"data: /x\nbackends:\n  - {name: a, type: s3}\n", "not available"},
		{"data: /x\nbackends:\n  - {name: a, type: ftp}\n", "unknown type"},
		{"data: /x\nbackends:\n  - {name: a, type: fs}\n", "needs path"},
		{"data: /x\nlog:\n  level: loud\n", "log.level"},
		{"data: /x\nlisten: nonsense\n", "host:port"},
		{"data: /x\nmetrics:\n  listen: 0.0.0.0:9480\n", "no authentication"},
		{"data: /x\nmetrics:\n  listen: nine\n", "metrics.listen"},
		{"data: /x\nhealth:\n  delayed_for: -1m\n", "must not be negative"},
	}
	for _, c := range cases {
		cfg, err := ParseConfig([]byte(c.yaml), "t")
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		cfg.Defaults()
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error about %q", c.yaml, err, c.want)
		}
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
	cfg, err := LoadConfig(filepath.Join("..", "configs", "walgate.yaml"))
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
