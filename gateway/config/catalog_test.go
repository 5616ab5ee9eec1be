package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCatalogConfig(t *testing.T) {
	bad := []struct{ yaml, want string }{
		{"data: /x\ncatalog: {type: mysql}\n", "use bbolt or postgres"},
		{"data: /x\ncatalog: {type: postgres}\n", "set one of dsn and dsn_file"},
		{"data: /x\ncatalog: {type: postgres, postgres: {dsn: 'host=a', dsn_file: /f}}\n", "set one of dsn and dsn_file"},
		{"data: /x\ncatalog: {postgres: {dsn: 'host=a'}}\n", "catalog.type is not postgres"},
		{"data: /x\ncatalog: {type: postgres, postgres: {dsn: 'mysql://u:pw@h/db'}}\n", "want a postgres:// URL"},
	}
	for _, c := range bad {
		cfg, err := Parse([]byte(c.yaml), "t")
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		cfg.Defaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error about %q", c.yaml, err, c.want)
		}
		if err := cfg.Validate(); err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("%q: the error shows the password: %v", c.yaml, err)
		}
	}
	if _, err := Parse([]byte("data: /x\ncatalog: {type: postgres, postgres: {url: x}}\n"), "t"); err == nil {
		t.Error("unknown key in catalog.postgres accepted")
	}

	const pw = "Sup3r-s3cret"
	for _, dsn := range []string{"postgres://walgate:" + pw + "@db.example:5432/walgate?sslmode=verify-full", "host=db.example user=walgate password=" + pw + " dbname=walgate"} {
		cfg, err := Parse([]byte(fmt.Sprintf("data: /x\ncatalog:\n  type: postgres\n  postgres:\n    dsn: %q\n", dsn)), "t")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", RedactDSN(dsn), err)
		}
		if !cfg.Catalog.IsPostgres() {
			t.Fatal("type postgres not seen")
		}
		for _, form := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg.Catalog), cfg.Catalog.Postgres.String()} {
			if strings.Contains(form, pw) {
				t.Errorf("a printed config shows the password: %s", form)
			}
			if !strings.Contains(form, "db.example") {
				t.Errorf("a printed config hides where the catalog is: %s", form)
			}
		}
		if got, err := cfg.Catalog.Postgres.ResolveDSN(); err != nil || got != dsn {
			t.Errorf("resolve: %v", err)
		}
	}

	file := filepath.Join(t.TempDir(), "catalog.dsn")
	if err := os.WriteFile(file, []byte("postgres://walgate:"+pw+"@db/walgate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := PostgresCatalog{DSNFile: file}
	if got, err := p.ResolveDSN(); err != nil || got != "postgres://walgate:"+pw+"@db/walgate" {
		t.Errorf("dsn_file: %q %v", RedactDSN(got), err)
	}
	if strings.Contains(p.String(), pw) {
		t.Error("String shows the file's password")
	}
	if _, err := (PostgresCatalog{DSNFile: file + ".missing"}).ResolveDSN(); err == nil || !strings.Contains(err.Error(), "dsn_file") {
		t.Errorf("missing dsn_file: %v", err)
	}
}
