package azure

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config describes one container (and a key prefix in it). Exactly one way
// to authenticate: AccountKey (shared key), SASToken, or ConnectionString
// (which carries the account, key and endpoint itself).
type Config struct {
	// Account is the storage account name (not needed with a
	// ConnectionString).
	Account string `yaml:"account"`
	// Container is required.
	Container string `yaml:"container"`
	// Prefix is prepended (with a slash) to every key; "" for none.
	Prefix string `yaml:"prefix"`
	// Endpoint is the account's blob endpoint; empty:
	// https://<account>.blob.core.windows.net.
	Endpoint string `yaml:"endpoint"`
	// AccountKey is the account's shared key (base64).
	AccountKey string `yaml:"account_key"`
	// SASToken is a shared access signature for the container, without
	// the leading '?'.
	SASToken string `yaml:"sas_token"`
	// ConnectionString is a full connection string.
	ConnectionString string `yaml:"connection_string"`
	// BlockSize is the block an upload stages at a time (at most 4000 MiB;
	// default 4 MiB). Block sizes double every 10,000 blocks, so 50,000
	// blocks hold 31 x BlockSize x 10,000.
	BlockSize int64 `yaml:"block_size"`
	// Timeout bounds each request attempt (one block at most). Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how often a failing request is tried. Default 3.
	MaxAttempts int `yaml:"max_attempts"`
}

const (
	defaultBlockSize   = 4 << 20
	maxBlockSize       = 4000 << 20
	defaultTimeout     = 60 * time.Second
	defaultMaxAttempts = 3
	maxBlocks          = 50000
)

func (c Config) withDefaults() Config {
	if c.BlockSize == 0 {
		c.BlockSize = defaultBlockSize
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	return c
}

// Validate reports what is wrong with the config, all at once.
func (c Config) Validate() error {
	var errs []error
	if c.Container == "" {
		errs = append(errs, errors.New("container is required"))
	}
	ways := 0
	for _, s := range []string{c.AccountKey, c.SASToken, c.ConnectionString} {
		if s != "" {
			ways++
		}
	}
	switch {
	case ways == 0:
		errs = append(errs, errors.New("no credentials: set account_key (shared key), sas_token, or connection_string"))
	case ways > 1:
		errs = append(errs, errors.New("set only one of account_key, sas_token and connection_string"))
	}
	if c.ConnectionString == "" && c.Account == "" {
		errs = append(errs, errors.New("account is required (or a connection_string)"))
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint %q: want a URL like https://<account>.blob.core.windows.net", c.Endpoint))
		}
	}
	if c.BlockSize < 0 || c.BlockSize > maxBlockSize {
		errs = append(errs, fmt.Errorf("block_size %d: want 0 (default 4 MiB) up to 4000 MiB", c.BlockSize))
	}
	if c.Timeout < 0 || c.MaxAttempts < 0 {
		errs = append(errs, errors.New("timeout and max_attempts must not be negative"))
	}
	if strings.Contains(c.Prefix, "//") || strings.Contains(c.Prefix, "\\") {
		errs = append(errs, fmt.Errorf("prefix %q: no double slashes or backslashes", c.Prefix))
	}
	return errors.Join(errs...)
}

// String describes the config with its secrets masked.
func (c Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return fmt.Sprintf("azure{account=%s container=%s prefix=%s endpoint=%s account_key=%s sas_token=%s connection_string=%s}",
		c.Account, c.Container, c.Prefix, c.Endpoint, mask(c.AccountKey), mask(c.SASToken), mask(c.ConnectionString))
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }
