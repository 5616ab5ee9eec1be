package azure

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/walgate/walgate/backends"
)

// Defaults of the Config fields left zero.
const (
	DefaultBlockSize = 4 << 20
	DefaultTimeout   = 2 * time.Minute
)

// Limits of the Config fields.
const (
	minBlockSize = 64 << 10
	// maxBlockSize is Azure's limit for one staged block (4000 MiB); far
	// more than anyone should hold in memory per Put.
	maxBlockSize = 4000 << 20
)

// redacted replaces every secret when a Config is printed.
const redacted = "REDACTED"

// Config says which container the backend writes to and how it
// authenticates. Exactly one of AccountKey, SASToken and ConnectionString
// must be given (Azure AD credentials are not supported).
type Config struct {
	// Account is the storage account name. Not needed with
	// ConnectionString, which names it.
	Account string `yaml:"account"`
	// Container holds the objects; it must exist.
	Container string `yaml:"container"`
	// Prefix is prepended to every key, with a slash ("" = none). It has
	// no leading or trailing slash.
	Prefix string `yaml:"prefix"`
	// Endpoint is the blob service URL, "" meaning
	// https://<account>.blob.core.windows.net. For Azurite:
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string `yaml:"endpoint"`

	// AccountKey is the account's shared key (base64). Secret.
	AccountKey string `yaml:"account_key"`
	// SASToken is a shared access signature for the container or account
	// (with or without the leading "?"). Secret.
	SASToken string `yaml:"sas_token"`
	// ConnectionString is a full Azure storage connection string
	// (AccountName, AccountKey or SharedAccessSignature, endpoints).
	// Secret.
	ConnectionString string `yaml:"connection_string"`

	// BlockSize is the size of the blocks a Put stages, and so the memory
	// one Put holds (default 4 MiB). An object of up to BlockSize bytes
	// is written with one request. Azure allows 50,000 blocks per blob,
	// so BlockSize x 50,000 is the largest object (195 GiB at 4 MiB).
	BlockSize int64 `yaml:"block_size"`
	// Timeout bounds each request attempt, including the reading of a
	// response body, not a whole stream (default 2 minutes). A Get whose
	// body read times out resumes where it stopped, from the same
	// version of the blob.
	Timeout time.Duration `yaml:"timeout"`
}

// Redacted returns a copy of c with every secret replaced by "REDACTED".
func (c Config) Redacted() Config {
	for _, s := range []*string{&c.AccountKey, &c.SASToken, &c.ConnectionString} {
		if *s != "" {
			*s = redacted
		}
	}
	return c
}

// String prints c with its secrets redacted.
func (c Config) String() string {
	r := c.Redacted()
	return fmt.Sprintf("azure.Config{Account:%q Container:%q Prefix:%q Endpoint:%q AccountKey:%q SASToken:%q ConnectionString:%q BlockSize:%d Timeout:%s}",
		r.Account, r.Container, r.Prefix, r.Endpoint, r.AccountKey, r.SASToken, r.ConnectionString, r.BlockSize, r.Timeout)
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return c.String() }

// LogValue logs c with its secrets redacted.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	return slog.GroupValue(
		slog.String("account", r.Account),
		slog.String("container", r.Container),
		slog.String("prefix", r.Prefix),
		slog.String("endpoint", r.Endpoint),
		slog.String("account_key", r.AccountKey),
		slog.String("sas_token", r.SASToken),
		slog.String("connection_string", r.ConnectionString),
		slog.Int64("block_size", r.BlockSize),
		slog.Duration("timeout", r.Timeout),
	)
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.SASToken = strings.TrimPrefix(c.SASToken, "?")
	return c
}

// errNoCredential lists the ways to authenticate.
var errNoCredential = errors.New("no credential: set one of account_key (shared key), sas_token or connection_string " +
	"(Azure AD / DefaultAzureCredential is not supported)")

// Validate checks c (zero fields take their defaults) without contacting
// Azure. Its errors never contain a secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	creds := 0
	for _, s := range []string{c.AccountKey, c.SASToken, c.ConnectionString} {
		if s != "" {
			creds++
		}
	}
	switch {
	case creds == 0:
		return errNoCredential
	case creds > 1:
		return errors.New("more than one credential: set only one of account_key, sas_token and connection_string")
	}
	if c.ConnectionString != "" {
		if c.Account != "" || c.Endpoint != "" {
			return errors.New("connection_string names the account and endpoint: leave account and endpoint empty")
		}
	} else if err := validateAccount(c.Account); err != nil {
		return err
	}
	if err := validateContainer(c.Container); err != nil {
		return err
	}
	if c.Prefix != "" {
		if err := backends.ValidateKey(c.Prefix); err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint %q is not an http or https URL", c.Endpoint)
		}
		if u.RawQuery != "" || u.User != nil {
			return errors.New("endpoint must not carry a query or user info: put a SAS in sas_token")
		}
	}
	if c.AccountKey != "" && !validBase64(c.AccountKey) {
		return errors.New("account_key is not base64 (copy the key from the portal or `az storage account keys list`)")
	}
	if c.BlockSize < minBlockSize || c.BlockSize > maxBlockSize {
		return fmt.Errorf("block_size %d is out of range [%d, %d]", c.BlockSize, minBlockSize, int64(maxBlockSize))
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout %s is negative", c.Timeout)
	}
	return nil
}

func validateAccount(a string) error {
	if a == "" {
		return errors.New("account is empty (or give connection_string)")
	}
	if len(a) < 3 || len(a) > 24 {
		return fmt.Errorf("account %q: Azure account names are 3 to 24 characters", a)
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return fmt.Errorf("account %q: Azure account names are lower-case letters and digits", a)
		}
	}
	return nil
}

func validateContainer(name string) error {
	if name == "" {
		return errors.New("container is empty")
	}
	bad := func(why string) error { return fmt.Errorf("container %q: %s", name, why) }
	if len(name) < 3 || len(name) > 63 {
		return bad("Azure container names are 3 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return bad("only lower-case letters, digits and '-' are allowed")
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return bad("'-' may not start or end the name or follow another '-'")
	}
	return nil
}

func validBase64(s string) bool {
	if len(s)%4 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}
