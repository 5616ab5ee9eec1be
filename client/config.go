package client

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/walgate/walgate/client/codec"
	"github.com/walgate/walgate/gateway/protocol"
)

// Config is the client's configuration, read from the environment.
type Config struct {
	URL         *url.URL   // the first gateway of URLs
	URLs        []*url.URL // every gateway of WALGATE_URL, in the order given
	Token       string
	Cluster     string
	Compression codec.Compression
	// Level is zstd's compression level, for WAL files and backups alike
	// (WALGATE_COMPRESSION_LEVEL).
	Level      codec.Level
	Key        *codec.Key // nil: no encryption
	CAFile     string     // extra CA bundle to trust for the gateway
	ClientCert string     // PEM client certificate for mutual TLS
	ClientKey  string
	Timeout    time.Duration // how long a connection may make no progress (see idleConn)
	Retries    int           // extra attempts after a transient failure
	TempDir    string        // where pushes spool the encoded file (see spool)
	// AllowInsecureHTTP permits http:// to a non-loopback gateway.
	AllowInsecureHTTP bool
	// OldKeys are earlier encryption keys, read but never written
	// (WALGATE_ENCRYPTION_OLD_KEYS): objects sealed before a key rotation.
	OldKeys []*codec.Key
	// AllowPlaintextRead lets a client with a key restore objects that were
	// stored unencrypted (WALGATE_ALLOW_PLAINTEXT_READ).
	AllowPlaintextRead bool
}

// DefaultLevel is zstd's level when WALGATE_COMPRESSION_LEVEL is not set.
const DefaultLevel = codec.LevelDefault

// EnvVar documents one environment variable; EnvVars feeds --help and docs.
type EnvVar struct {
	Name, Also, Default, Help string
}

// EnvVars lists every variable the client reads, in --help order.
var EnvVars = []EnvVar{
	{"WALGATE_URL", "", "", "gateway base URL, e.g. https://walgate.example:7480 (http:// only to a loopback address); several gateways of one fleet as a comma-separated list, tried in turn"},
	{"WALGATE_TOKEN", "", "", "token printed by 'walgate token add' (or WALGATE_TOKEN_FILE: a file holding it)"},
	{"WALGATE_CLUSTER", "", "from the token", "cluster name; must match the token's"},
	{"WALGATE_COMPRESSION", "WALG_COMPRESSION_METHOD", "zstd", "zstd, lz4, brotli or none"},
	{"WALGATE_COMPRESSION_LEVEL", "", DefaultLevel.String(), "zstd's level for WAL and backups: fastest, default, better or best (faster stores more; every level reads back alike)"},
	{"WALGATE_ENCRYPTION_KEY", "WALG_LIBSODIUM_KEY", "(no encryption)", "encryption key; or WALGATE_ENCRYPTION_KEY_FILE / WALG_LIBSODIUM_KEY_PATH"},
	{"WALGATE_ENCRYPTION_KEY_TRANSFORM", "WALG_LIBSODIUM_KEY_TRANSFORM", "none", "how to read the key: hex, base64 or none (raw, at least 25 bytes)"},
	{"WALGATE_ENCRYPTION_OLD_KEYS", "", "", "earlier keys, comma-separated, same transform: read objects sealed before a key rotation; never written with"},
	{"WALGATE_ALLOW_PLAINTEXT_READ", "", "false", "with a key set: restore objects stored unencrypted too (by default they are refused as possibly forged)"},
	{"WALGATE_CA_FILE", "", "system roots", "PEM CA bundle to verify the gateway's certificate"},
	{"WALGATE_CLIENT_CERT", "", "", "PEM client certificate for mutual TLS (with WALGATE_CLIENT_KEY)"},
	{"WALGATE_TIMEOUT", "", "30s", "how long a connection to the gateway may make no progress (connecting, sending, awaiting the answer, receiving) before it fails; a transfer that keeps moving is never cut, however slow"},
	{"WALGATE_RETRIES", "", "2", "extra attempts after a transient failure (gateway down, 503)"},
	{"WALGATE_ALLOW_INSECURE_HTTP", "", "false", "allow http:// to a non-loopback gateway"},
	{"WALGATE_TMPDIR", "", "$TMPDIR", "where a push keeps the encoded file until the gateway has it (an unlinked temporary file; up to 4 MiB in memory if none can be made)"},
	{"WALGATE_LOOKAHEAD", "", "8", "wal-push: further .ready segments archived ahead of PostgreSQL's archiver, at once, by a background process (0: off; at most 64)"},
	{"WALGATE_PREFETCH", "", "8", "wal-fetch into pg_wal: next segments of the timeline restored ahead in the background into pg_wal/walgate/prefetch (0: off; at most 64)"},
	{"WALGATE_TAR_SIZE_THRESHOLD", "WALG_TAR_SIZE_THRESHOLD", "1073741823", "backup-push: bytes of data per tar partition"},
	{"WALGATE_DELTA_MAX_STEPS", "WALG_DELTA_MAX_STEPS", "0", "backup-push: deltas allowed after a full backup before the next full one (0: always full)"},
	{"WALGATE_DELTA_ORIGIN", "WALG_DELTA_ORIGIN", "LATEST", "backup-push: a delta's parent, LATEST or LATEST_FULL"},
	{"WALGATE_UPLOAD_CONCURRENCY", "WALG_UPLOAD_CONCURRENCY", "2", "backup-push: partitions read, encoded and uploaded at once"},
	{"WALGATE_DOWNLOAD_CONCURRENCY", "WALG_DOWNLOAD_CONCURRENCY", "4", "backup-fetch and drill: partitions fetched at once"},
	{"WALGATE_DRILL_DIR", "", "$TMPDIR", "drill: where the scratch restore goes (needs room for a whole backup)"},
	{"PGHOST, PGPORT, PGUSER, ...", "", "as for psql", "backup-push and drill: how to reach PostgreSQL (libpq conventions)"},
}

// ConfigError is a configuration problem; the message says what to set.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func cfgErr(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// LoadConfig reads the configuration through getenv (os.Getenv in the
// binary; a map in tests). WALGATE_* names win over their WAL-G twins.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(names ...string) (string, string) {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v, n
			}
		}
		return "", ""
	}
	var c Config
	raw, _ := get("WALGATE_URL")
	if raw == "" {
		return c, cfgErr("WALGATE_URL is not set: set it to the gateway's URL, e.g. https://walgate.example:7480")
	}
	var err error
	if c.AllowInsecureHTTP, err = envBool("WALGATE_ALLOW_INSECURE_HTTP", getenv("WALGATE_ALLOW_INSECURE_HTTP")); err != nil {
		return c, err
	}
	urls, err := parseGatewayURLs(raw, c.AllowInsecureHTTP)
	if err != nil {
		return c, err
	}
	c.URLs, c.URL = urls, urls[0]

	c.Token = getenv("WALGATE_TOKEN")
	if c.Token == "" {
		if f := getenv("WALGATE_TOKEN_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return c, cfgErr("WALGATE_TOKEN_FILE: %v", err)
			}
			c.Token = strings.TrimSpace(string(b))
		}
	}
	if c.Token == "" {
		return c, cfgErr("WALGATE_TOKEN is not set: create a token with 'walgate token add --cluster NAME --scope push,fetch' on the gateway")
	}
	tokCluster, err := protocol.TokenCluster(c.Token)
	if err != nil {
		return c, cfgErr("WALGATE_TOKEN: %v", err)
	}
	c.Cluster = getenv("WALGATE_CLUSTER")
	if c.Cluster == "" {
		c.Cluster = tokCluster
	}
	if err := protocol.ValidateCluster(c.Cluster); err != nil {
		return c, cfgErr("WALGATE_CLUSTER: %v", err)
	}
	if c.Cluster != tokCluster {
		return c, cfgErr("WALGATE_CLUSTER is %q but the token is for cluster %q; use a token made for %q", c.Cluster, tokCluster, c.Cluster)
	}

	c.Compression = codec.Zstd
	if v, name := get("WALGATE_COMPRESSION", "WALG_COMPRESSION_METHOD"); v != "" {
		comp, err := codec.ParseCompression(v)
		if err != nil {
			return c, cfgErr("%s: %v", name, err)
		}
		c.Compression = comp
	}
	c.Level = DefaultLevel
	if v, name := get("WALGATE_COMPRESSION_LEVEL"); v != "" {
		l, err := codec.ParseLevel(v)
		if err != nil {
			return c, cfgErr("%s: %v", name, err)
		}
		c.Level = l
	}

	keyVal, keyName := get("WALGATE_ENCRYPTION_KEY", "WALG_LIBSODIUM_KEY")
	if keyVal == "" {
		if f, fname := get("WALGATE_ENCRYPTION_KEY_FILE", "WALG_LIBSODIUM_KEY_PATH"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return c, cfgErr("%s: %v", fname, err)
			}
			keyVal, keyName = strings.TrimSpace(string(b)), fname
		}
	}
	if keyVal != "" {
		transform, _ := get("WALGATE_ENCRYPTION_KEY_TRANSFORM", "WALG_LIBSODIUM_KEY_TRANSFORM")
		k, err := codec.ParseKey(keyVal, transform)
		if err != nil {
			return c, cfgErr("%s: %v", keyName, err)
		}
		c.Key = k
	}
	if err := loadKeyPolicy(getenv, &c); err != nil {
		return c, err
	}

	c.CAFile = getenv("WALGATE_CA_FILE")
	c.ClientCert, c.ClientKey = getenv("WALGATE_CLIENT_CERT"), getenv("WALGATE_CLIENT_KEY")
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return c, cfgErr("WALGATE_CLIENT_CERT and WALGATE_CLIENT_KEY go together; set both or neither")
	}
	c.Timeout = 30 * time.Second
	if v := getenv("WALGATE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, cfgErr("WALGATE_TIMEOUT %q: want a duration such as 30s", v)
		}
		c.Timeout = d
	}
	c.Retries = 2
	if v := getenv("WALGATE_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 20 {
			return c, cfgErr("WALGATE_RETRIES %q: want a number from 0 to 20", v)
		}
		c.Retries = n
	}
	c.TempDir = getenv("WALGATE_TMPDIR")
	return c, nil
}

// parseGatewayURLs parses WALGATE_URL: one gateway URL or a
// comma-separated list of them. Every entry must be valid; an error names
// the one that is not.
func parseGatewayURLs(raw string, allowInsecure bool) ([]*url.URL, error) {
	entries := strings.Split(raw, ",")
	urls := make([]*url.URL, 0, len(entries))
	seen := map[string]bool{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		where := "WALGATE_URL"
		if len(entries) > 1 {
			where = fmt.Sprintf("WALGATE_URL entry %d", i+1)
		}
		if e == "" {
			return nil, cfgErr("%s is empty: list gateway URLs separated by single commas", where)
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			shown := e
			if err == nil {
				shown = u.Redacted() // never a password in a message
			}
			return nil, cfgErr("%s %q is not an http(s) URL", where, shown)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, cfgErr("%s must not carry credentials, a query or a fragment; pass the token in WALGATE_TOKEN", where)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		if u.Scheme == "http" && !allowInsecure && !protocol.IsLoopback(u.Host) {
			return nil, cfgErr("%s: refusing plain http:// to %s, which is not a loopback address: the token would cross the network in clear text; use https:// (set WALGATE_CA_FILE for a private CA) or WALGATE_ALLOW_INSECURE_HTTP=true", where, u.Host)
		}
		if seen[u.String()] {
			return nil, cfgErr("%s %q is listed twice", where, e)
		}
		seen[u.String()] = true
		urls = append(urls, u)
	}
	return urls, nil
}

// gatewayKey names the gateways of the configuration in the client's state
// records: any gateway of one list serves the same archive.
func (c Config) gatewayKey() string {
	parts := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// IsConfigError reports whether err is a configuration problem.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// envBool reads a boolean variable: true, 1, yes, on or false, 0, no, off
// (any case); unset or empty is false. Anything else is a configuration
// error naming the variable, never a silent false.
func envBool(name, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on", "t", "y":
		return true, nil
	case "false", "0", "no", "off", "f", "n", "":
		return false, nil
	}
	return false, cfgErr("%s=%q is not a boolean: use true or false (also accepted: 1/0, yes/no, on/off)", name, v)
}
