package gcs

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/walgate/walgate/backends"
)

// Defaults for the zero values in Config.
const (
	DefaultChunkSize   = 4 << 20
	DefaultTimeout     = 60 * time.Second
	DefaultMaxAttempts = 5

	// chunkQuantum is what the store requires chunk sizes to be a
	// multiple of.
	chunkQuantum = 256 << 10
	// maxChunkSize bounds the memory one Put may hold.
	maxChunkSize = 256 << 20
)

// Config selects a bucket and how to reach it. The zero values of the
// optional fields mean the defaults above.
type Config struct {
	// Bucket is the bucket's name (required).
	Bucket string `yaml:"bucket"`
	// Prefix is prepended, with a slash, to every key: "walgate/prod"
	// stores key "a/b" as object "walgate/prod/a/b". No leading or
	// trailing slash; "" stores keys as they are.
	Prefix string `yaml:"prefix"`
	// Endpoint is the JSON API base URL; "" means Google's
	// (https://storage.googleapis.com/storage/v1/). Set it for an emulator,
	// e.g. "http://127.0.0.1:4443/storage/v1/".
	Endpoint string `yaml:"endpoint"`
	// CredentialsFile is the path of a service-account JSON key file; ""
	// means Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
	// gcloud's login, the metadata server).
	CredentialsFile string `yaml:"credentials_file"`
	// Anonymous sends requests without credentials (emulators, public
	// buckets). It excludes CredentialsFile.
	Anonymous bool `yaml:"anonymous"`
	// ChunkSize is the resumable upload's chunk: each Put holds one chunk
	// in memory, and an object no larger than it goes in one request. A
	// multiple of 256 KiB; default 4 MiB.
	ChunkSize int `yaml:"chunk_size"`
	// Timeout bounds one request attempt: connecting, waiting for the
	// response headers, sending one upload chunk. It does not bound a whole
	// stream. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how often a request is tried in all when it fails
	// with a retryable error (1 = no retries). The SDK bounds upload chunk
	// retries by time instead: MaxAttempts × Timeout per chunk. Default 5.
	MaxAttempts int `yaml:"max_attempts"`
}

// withDefaults returns c with the zero values of optional fields filled in.
func (c Config) withDefaults() Config {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	return c
}

// Validate checks the config without contacting the store. All problems
// are reported at once, each naming its yaml key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("gcs: "+format, args...)) }
	if c.Bucket == "" {
		bad("bucket is required")
	} else if why := checkBucketName(c.Bucket); why != "" {
		bad("bucket %q: %s", c.Bucket, why)
	}
	if c.Prefix != "" {
		if err := backends.ValidateKey(c.Prefix); err != nil {
			bad("prefix: %v (no leading or trailing slash, no empty, \".\" or \"..\" segments)", err)
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil:
			bad("endpoint is not a URL") // the parse error would repeat the URL, userinfo and all
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad("endpoint %q: want http:// or https://host[:port]/storage/v1/", redactURL(c.Endpoint))
		}
	}
	if c.Anonymous && c.CredentialsFile != "" {
		bad("anonymous and credentials_file exclude each other")
	}
	switch {
	case c.ChunkSize < 0:
		bad("chunk_size %d is negative", c.ChunkSize)
	case c.ChunkSize%chunkQuantum != 0:
		bad("chunk_size %d is not a multiple of 256 KiB (262144)", c.ChunkSize)
	case c.ChunkSize > maxChunkSize:
		bad("chunk_size %d is more than 256 MiB; each Put holds one chunk in memory", c.ChunkSize)
	}
	if c.Timeout < 0 {
		bad("timeout %v is negative", c.Timeout)
	}
	if c.MaxAttempts < 0 {
		bad("max_attempts %d is negative", c.MaxAttempts)
	}
	return errors.Join(errs...)
}

// checkBucketName applies the store's naming rules (3-63 characters, or up
// to 222 with dots; a-z, 0-9, '-', '_' and '.'; starting and ending with a
// letter or digit) and says what is wrong, or "".
func checkBucketName(name string) string {
	maxLen := 63
	if strings.Contains(name, ".") {
		maxLen = 222
	}
	if len(name) < 3 || len(name) > maxLen {
		return fmt.Sprintf("must be 3 to %d characters long", maxLen)
	}
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return "only a-z, 0-9, '-', '_' and '.' are allowed"
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return "must start and end with a letter or digit"
	}
	return ""
}

// String is Redacted: a Config printed with %v or %s shows no secrets.
func (c Config) String() string { return c.Redacted() }

// LogValue keeps log/slog handlers (JSON too) from printing the fields raw.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.Redacted()) }

// GoString keeps %#v from printing the fields raw.
func (c Config) GoString() string { return "gcs.Config" + c.Redacted() }

// Redacted describes the config for logs: a password or query string in the
// endpoint is masked. The credentials file's path is shown (it is not a
// secret, and says which identity is used); its contents never are.
func (c Config) Redacted() string {
	c = c.withDefaults()
	creds := "application-default"
	switch {
	case c.Anonymous:
		creds = "anonymous"
	case c.CredentialsFile != "":
		creds = "file " + c.CredentialsFile
	}
	endpoint := "google"
	if c.Endpoint != "" {
		endpoint = redactURL(c.Endpoint)
	}
	return fmt.Sprintf("{bucket: %q, prefix: %q, endpoint: %s, credentials: %s, chunk_size: %d, timeout: %s, max_attempts: %d}",
		c.Bucket, c.Prefix, endpoint, creds, c.ChunkSize, c.Timeout, c.MaxAttempts)
}

// redactURL masks the parts of a URL that may carry a secret: the userinfo
// and the query string. What does not parse is masked whole.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL, redacted)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
