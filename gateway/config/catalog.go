package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Catalog types.
const (
	CatalogBbolt    = "bbolt"    // one file in the data directory (the default)
	CatalogPostgres = "postgres" // a PostgreSQL database shared by a fleet
)

// CatalogConfig says where the catalog lives.
type CatalogConfig struct {
	// Type is bbolt (default: DATA/catalog.db) or postgres.
	Type string `yaml:"type"`
	// Postgres is the database of a postgres catalog.
	Postgres PostgresCatalog `yaml:"postgres"`
}

// PostgresCatalog names the catalog's PostgreSQL database. Its password is
// never logged or printed: String redacts it.
type PostgresCatalog struct {
	// DSN is a libpq URL or key=value string, e.g.
	// postgres://walgate@catalog-db:5432/walgate?sslmode=verify-full.
	DSN string `yaml:"dsn"`
	// DSNFile holds the DSN instead (one line; a file only root and the
	// gateway's user read keeps the password out of the config).
	DSNFile string `yaml:"dsn_file"`
}

// String describes the database without its password.
func (p PostgresCatalog) String() string {
	if p.DSNFile != "" {
		return "postgres{dsn_file=" + p.DSNFile + "}"
	}
	return "postgres{dsn=" + RedactDSN(p.DSN) + "}"
}

// GoString is String, so that %#v redacts too.
func (p PostgresCatalog) GoString() string { return p.String() }

// ResolveDSN is the DSN, read from DSNFile when that is set.
func (p PostgresCatalog) ResolveDSN() (string, error) {
	if p.DSNFile == "" {
		return p.DSN, nil
	}
	data, err := os.ReadFile(p.DSNFile)
	if err != nil {
		return "", fmt.Errorf("catalog.postgres.dsn_file: %w", err)
	}
	dsn := strings.TrimSpace(string(data))
	if dsn == "" {
		return "", fmt.Errorf("catalog.postgres.dsn_file %s is empty", p.DSNFile)
	}
	return dsn, nil
}

// RedactDSN replaces the password of a URL or key=value DSN.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// IsPostgres reports whether the catalog is a PostgreSQL database.
func (c CatalogConfig) IsPostgres() bool { return c.Type == CatalogPostgres }

func (c *Config) validateCatalog() []error {
	if err := c.Catalog.Validate(); err != nil {
		return []error{err}
	}
	return nil
}

// Validate checks the catalog section on its own (admin verbs that need
// only the catalog).
func (c CatalogConfig) Validate() error {
	var errs []error
	p := c.Postgres
	switch c.Type {
	case "", CatalogBbolt:
		if p.DSN != "" || p.DSNFile != "" {
			errs = append(errs, errors.New("catalog.postgres is set but catalog.type is not postgres: set type: postgres, or remove the postgres section"))
		}
	case CatalogPostgres:
		if (p.DSN == "") == (p.DSNFile == "") {
			errs = append(errs, errors.New("catalog.postgres: set one of dsn and dsn_file"))
		}
		if p.DSN != "" {
			if u, err := url.Parse(p.DSN); err == nil && u.Scheme != "" && u.Scheme != "postgres" && u.Scheme != "postgresql" {
				errs = append(errs, fmt.Errorf("catalog.postgres.dsn %s: want a postgres:// URL or a key=value string", RedactDSN(p.DSN)))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("catalog.type %q: use bbolt or postgres", c.Type))
	}
	return errors.Join(errs...)
}
