package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/walgate/walgate/backends/all"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/lifecycle"
)

// CatalogPath is where the catalog lives inside the data directory.
func CatalogPath(data string) string { return filepath.Join(data, "catalog.db") }

// Config is the gateway's configuration. The zero value plus Defaults is
// the embedded default: one fs backend under Data, plain HTTP on loopback.
type Config struct {
	// Listen is the address to serve on, host:port.
	Listen string `yaml:"listen"`
	// Data is the gateway's own directory: the catalog (catalog.db) and,
	// unless backends are listed, the fs store (store/).
	Data string `yaml:"data"`
	// AllowInsecureHTTP permits plain HTTP on a non-loopback address.
	// Tokens and metadata then cross the network in clear text.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// TLS turns on HTTPS (and optionally client certificates).
	TLS TLSConfig `yaml:"tls"`
	// Limits bound what one request may cost.
	Limits Limits `yaml:"limits"`
	// Backends lists the object stores. Empty: one fs backend at
	// <data>/store.
	Backends []BackendConfig `yaml:"backends"`
	// Groups route clusters to backends with an ack policy. Empty: one
	// group of every backend, in the order listed, ack primary.
	Groups []GroupConfig `yaml:"groups"`
	// Replication tunes the background copies.
	Replication ReplicationConfig `yaml:"replication"`
	// Log sets the log format and level.
	Log LogConfig `yaml:"log"`
	// Health sets when a cluster is reported as warning or critical.
	Health HealthConfig `yaml:"health"`
	// Metrics serves Prometheus metrics on a separate listener.
	Metrics MetricsConfig `yaml:"metrics"`
	// Lifecycle schedules tiering and retention (each group's lifecycle:
	// says what they do).
	Lifecycle LifecycleConfig `yaml:"lifecycle"`
	// Audit sizes the audit log (DATA/audit.log).
	Audit AuditConfig `yaml:"audit"`
	// SharedStores says that other gateways write the same stores through
	// a shared catalog, so that a WAL object the catalog does not list may
	// be another gateway's push in flight. Not read from YAML: it follows
	// from the catalog; tests set it to exercise those rules alone.
	SharedStores bool `yaml:"-"`
	// Catalog places the catalog: bbolt in Data (the default), or a
	// PostgreSQL database shared by several gateways.
	Catalog CatalogConfig `yaml:"catalog"`
}

// AuditConfig sizes the audit log of administrative acts.
type AuditConfig struct {
	// MaxBytes is the size past which audit.log is rotated (default 10 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// Keep is how many rotated files are kept (default 5).
	Keep int `yaml:"keep"`
}

// LifecycleConfig schedules the lifecycle runs of the daemon. The policies
// are per group (GroupConfig.Lifecycle).
type LifecycleConfig struct {
	// Interval is how often the daemon plans (e.g. 24h); 0 never: then
	// only 'walgate lifecycle' plans and applies.
	Interval time.Duration `yaml:"interval"`
	// Apply makes the scheduled runs carry out their plans. Off (the
	// default) they only log what they would do.
	Apply bool `yaml:"apply"`
	// Prices are monthly prices per GiB for each class (hot, warm, cold,
	// archive), for the cost estimates of groups that set none.
	Prices map[lifecycle.Class]float64 `yaml:"prices"`
}

// HealthConfig holds the health thresholds (gateway/health.Policy); unset
// fields take the defaults documented in docs/operations.md.
type HealthConfig struct {
	// ArchiveTimeout is the hosts' archive_timeout: the longest a cluster
	// may go without archiving a segment. Archiving counts as stalled
	// after StallFactor times it.
	ArchiveTimeout time.Duration `yaml:"archive_timeout"`
	StallFactor    float64       `yaml:"stall_factor"`
	// DelayedFor: how long a missing segment with newer ones archived
	// counts as delayed before it counts as lost.
	DelayedFor        time.Duration `yaml:"delayed_for"`
	BackupMaxAge      time.Duration `yaml:"backup_max_age"`
	FullMaxAge        time.Duration `yaml:"full_max_age"`
	DrillMaxAge       time.Duration `yaml:"drill_max_age"`
	ReplicationLagMax time.Duration `yaml:"replication_lag_max"`
}

func (h HealthConfig) policy() health.Policy {
	p := health.DefaultPolicy()
	set := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	set(&p.ArchiveTimeout, h.ArchiveTimeout)
	set(&p.DelayedFor, h.DelayedFor)
	set(&p.BackupMaxAge, h.BackupMaxAge)
	set(&p.FullMaxAge, h.FullMaxAge)
	set(&p.DrillMaxAge, h.DrillMaxAge)
	set(&p.ReplicationLagMax, h.ReplicationLagMax)
	if h.StallFactor != 0 {
		p.StallFactor = h.StallFactor
	}
	return p
}

// Policy is the health policy this configuration sets.
func (c *Config) Policy() health.Policy { return c.Health.policy() }

// MetricsConfig places /metrics.
type MetricsConfig struct {
	// Listen is where Prometheus scrapes /metrics, host:port; "" turns it
	// off. It is plain HTTP without authentication (it names clusters,
	// never data): a loopback address unless AllowRemote.
	Listen      string `yaml:"listen"`
	AllowRemote bool   `yaml:"allow_remote"`
}

// TLSConfig holds certificate paths.
type TLSConfig struct {
	Cert     string `yaml:"cert"`      // PEM server certificate (chain)
	Key      string `yaml:"key"`       // PEM private key
	ClientCA string `yaml:"client_ca"` // PEM CA bundle; when set, clients must present a certificate it signed
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.Cert != "" || t.Key != "" }

// Limits bound request sizes and stalls.
type Limits struct {
	// MaxWALBytes is the largest WAL object body accepted (compressed and
	// encrypted bytes). PostgreSQL segments are at most 1 GiB.
	MaxWALBytes int64 `yaml:"max_wal_bytes"`
	// MaxBackupObjectBytes is the largest object of a base backup (a tar
	// partition, compressed and encrypted).
	MaxBackupObjectBytes int64 `yaml:"max_backup_object_bytes"`
	// BackupSessionTimeout is how long an open backup may go without an
	// upload before the gateway removes it and its objects.
	BackupSessionTimeout time.Duration `yaml:"backup_session_timeout"`
	// IdleTimeout is how long a request body may stall between two reads
	// before the request fails (408) and nothing is stored.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// HeaderTimeout bounds reading request headers and idle keep-alive.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// WriteSlotWait is how long a push waits for a write slot of a store
	// (backends[].max_writes) before it is refused with 503 and nothing
	// stored; keep it below the clients' WALGATE_TIMEOUT, which is how
	// long a client waits on a gateway that reads nothing of its body.
	WriteSlotWait time.Duration `yaml:"write_slot_wait"`
	// WriteTimeout bounds a whole response write; 0 means none (needed
	// for large restores on slow links).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxConnections bounds the client connections held open at once;
	// more are closed as soon as they are accepted. The gateway lowers it
	// at start when the open files limit could not hold that many (each
	// connection may also hold a store's file).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress bounds the open connections of one client
	// address (hosts behind one NAT or proxy share it).
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// MaxDrillReportBytes is the largest drill report accepted.
	MaxDrillReportBytes int64 `yaml:"max_drill_report_bytes"`
	// DrillReportsKept is how many drill reports the catalog keeps per
	// cluster; older ones are dropped as new ones arrive.
	DrillReportsKept int `yaml:"drill_reports_kept"`
}

// Default limits (docs/operations.md lists them all).
const (
	// DefaultWriteSlotWait is below the client's default WALGATE_TIMEOUT
	// (30s), so that a client waiting for a slot gets the gateway's
	// answer rather than its own timeout.
	DefaultWriteSlotWait            = 20 * time.Second
	DefaultMaxConnections           = 4096
	DefaultMaxConnectionsPerAddress = 512
	DefaultMaxDrillReportBytes      = 256 << 10
	DefaultDrillReportsKept         = 100
)

// BackendConfig describes one object store (backends/all opens it).
type BackendConfig = all.Config

// GroupConfig routes clusters to backends.
type GroupConfig struct {
	Name string `yaml:"name"`
	// Clusters are patterns (path.Match: *, ?, [a-z]) of cluster names; a
	// cluster belongs to the first group that matches it.
	Clusters []string `yaml:"clusters"`
	// Backends lists backend names; the first is the group's primary.
	Backends []string `yaml:"backends"`
	// Ack is when a push is acknowledged: "primary" (default: stored on
	// the primary), "all" (on every backend of the group), or a number N
	// (on N of them, the primary first and the next ones in order standing
	// in for any that fail). The rest is copied by the replicator.
	Ack string `yaml:"ack"`
	// RequireEncryption refuses unencrypted WAL and backup partitions for
	// the group's clusters (422 encryption_required); backup metadata
	// (JSON) stays plain, as ever.
	RequireEncryption bool `yaml:"require_encryption"`
	// Lifecycle is the group's tiering and retention policy (see
	// docs/lifecycle.md). The zero policy moves and deletes nothing.
	Lifecycle lifecycle.Policy `yaml:"lifecycle"`
}

// Matches reports whether cluster matches one of the group's patterns.
func (g GroupConfig) Matches(cluster string) bool {
	for _, p := range g.Clusters {
		if ok, _ := path.Match(p, cluster); ok {
			return true
		}
	}
	return false
}

// GroupOf is the group a cluster belongs to: the first that matches it
// (nil when none does).
func (c *Config) GroupOf(cluster string) *GroupConfig {
	for i := range c.Groups {
		if c.Groups[i].Matches(cluster) {
			return &c.Groups[i]
		}
	}
	return nil
}

// ReplicationConfig tunes the background copies to backends outside a
// push's ack set.
type ReplicationConfig struct {
	// Concurrency is how many copies run at once per backend (default 4).
	Concurrency int `yaml:"concurrency"`
	// RetryMin and RetryMax bound the exponential backoff of a failing
	// copy (defaults 1s and 5m).
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// ClaimLease is how long a gateway's claim on a queued copy lasts
	// (default 1m); it is renewed every third of it while the copy runs,
	// and a dead gateway's copies are taken over when it ends.
	ClaimLease time.Duration `yaml:"claim_lease"`
}

// LogConfig sets logging.
type LogConfig struct {
	Format string `yaml:"format"` // text (default) or json
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// Defaults fills every unset field with the embedded default.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7480"
	}
	if c.Limits.MaxWALBytes == 0 {
		c.Limits.MaxWALBytes = 1<<30 + 64<<20
	}
	if c.Limits.MaxBackupObjectBytes == 0 {
		c.Limits.MaxBackupObjectBytes = 64 << 30
	}
	if c.Limits.BackupSessionTimeout == 0 {
		c.Limits.BackupSessionTimeout = time.Hour
	}
	if c.Limits.IdleTimeout == 0 {
		c.Limits.IdleTimeout = 60 * time.Second
	}
	if c.Limits.HeaderTimeout == 0 {
		c.Limits.HeaderTimeout = 30 * time.Second
	}
	if c.Limits.WriteSlotWait == 0 {
		c.Limits.WriteSlotWait = DefaultWriteSlotWait
	}
	if c.Limits.MaxConnections == 0 {
		c.Limits.MaxConnections = DefaultMaxConnections
	}
	if c.Limits.MaxConnectionsPerAddress == 0 {
		c.Limits.MaxConnectionsPerAddress = DefaultMaxConnectionsPerAddress
	}
	if c.Limits.MaxDrillReportBytes == 0 {
		c.Limits.MaxDrillReportBytes = DefaultMaxDrillReportBytes
	}
	if c.Limits.DrillReportsKept == 0 {
		c.Limits.DrillReportsKept = DefaultDrillReportsKept
	}
	if len(c.Backends) == 0 && c.Data != "" {
		c.Backends = []BackendConfig{{Name: "local", Type: "fs", Path: filepath.Join(c.Data, "store")}}
	}
	for i := range c.Backends {
		if c.Backends[i].MaxWrites == 0 {
			c.Backends[i].MaxWrites = c.Backends[i].DefaultMaxWrites()
		}
	}
	if len(c.Groups) == 0 && len(c.Backends) > 0 {
		g := GroupConfig{Name: "default", Clusters: []string{"*"}, Ack: AckPrimary}
		for _, b := range c.Backends {
			g.Backends = append(g.Backends, b.Name)
		}
		c.Groups = []GroupConfig{g}
	}
	for i := range c.Groups {
		if c.Groups[i].Ack == "" {
			c.Groups[i].Ack = AckPrimary
		}
	}
	if c.Replication.Concurrency == 0 {
		c.Replication.Concurrency = 4
	}
	if c.Replication.RetryMin == 0 {
		c.Replication.RetryMin = time.Second
	}
	if c.Replication.RetryMax == 0 {
		c.Replication.RetryMax = 5 * time.Minute
	}
	if c.Replication.ClaimLease == 0 {
		c.Replication.ClaimLease = time.Minute
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Audit.MaxBytes == 0 {
		c.Audit.MaxBytes = 10 << 20
	}
	if c.Audit.Keep == 0 {
		c.Audit.Keep = 5
	}
}

// Validate checks the configuration as a whole and says what to change.
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: the gateway's data directory is required (--data DIR or data: in the config)"))
	}
	errs = append(errs, c.validateListeners()...)
	errs = append(errs, c.validateLimits()...)
	names, berrs := c.validateBackends()
	errs = append(errs, berrs...)
	errs = append(errs, c.validateGroups(names)...)
	errs = append(errs, c.validateBackground()...)
	errs = append(errs, c.validateMetrics()...)
	errs = append(errs, c.validateLog()...)
	if c.Audit.MaxBytes < 4096 || c.Audit.Keep < 1 {
		errs = append(errs, fmt.Errorf("audit: max_bytes must be at least 4096 (got %d) and keep at least 1 (got %d)", c.Audit.MaxBytes, c.Audit.Keep))
	}
	errs = append(errs, c.validateCatalog()...)
	return errors.Join(errs...)
}

// validateListeners checks where the API listens and its TLS settings.
func (c *Config) validateListeners() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: want host:port, e.g. 127.0.0.1:7480", c.Listen))
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, errors.New("tls: cert and key go together; set both or neither"))
	}
	if c.TLS.ClientCA != "" && !c.TLS.Enabled() {
		errs = append(errs, errors.New("tls.client_ca needs tls.cert and tls.key: client certificates only work over TLS"))
	}
	if !c.TLS.Enabled() && !c.AllowInsecureHTTP && !protocol.IsLoopback(c.Listen) {
		errs = append(errs, fmt.Errorf("refusing plain HTTP on %s, which is not a loopback address: tokens would cross the network in clear text; set tls.cert and tls.key ('walgate cert init DIR' makes a trial CA), or set allow_insecure_http: true if something else encrypts the link", c.Listen))
	}
	return errs
}

// validateLimits checks the request limits.
func (c *Config) validateLimits() []error {
	var errs []error
	if c.Limits.MaxWALBytes < 1<<20 {
		errs = append(errs, errors.New("limits.max_wal_bytes must be at least 1 MiB"))
	}
	if c.Limits.IdleTimeout < time.Second {
		errs = append(errs, errors.New("limits.idle_timeout must be at least 1s"))
	}
	if c.Limits.WriteSlotWait < 0 {
		errs = append(errs, errors.New("limits.write_slot_wait must not be negative"))
	}
	if c.Limits.MaxConnections < 1 || c.Limits.MaxConnectionsPerAddress < 1 {
		errs = append(errs, errors.New("limits.max_connections and limits.max_connections_per_address must be at least 1"))
	}
	if c.Limits.MaxDrillReportBytes < 4<<10 {
		errs = append(errs, errors.New("limits.max_drill_report_bytes must be at least 4096"))
	}
	if c.Limits.DrillReportsKept < 1 {
		errs = append(errs, errors.New("limits.drill_reports_kept must be at least 1"))
	}
	return errs
}

// validateBackends checks every backend (its section through its driver)
// and returns the backend names.
func (c *Config) validateBackends() (map[string]bool, []error) {
	var errs []error
	names := map[string]bool{}
	for i, b := range c.Backends {
		if b.Name == "" {
			errs = append(errs, fmt.Errorf("backends[%d]: name is required", i))
		}
		if names[b.Name] {
			errs = append(errs, fmt.Errorf("backends[%d]: name %q is used twice", i, b.Name))
		}
		names[b.Name] = true
		for _, err := range b.Validate() {
			errs = append(errs, fmt.Errorf("backends[%d] (%s): %w", i, b.Name, err))
		}
	}
	return names, errs
}

// validateGroups checks the cluster groups against the backend names.
func (c *Config) validateGroups(names map[string]bool) []error {
	var errs []error
	groupNames := map[string]bool{}
	for i, g := range c.Groups {
		where := fmt.Sprintf("groups[%d] (%s)", i, g.Name)
		if g.Name == "" {
			errs = append(errs, fmt.Errorf("groups[%d]: name is required", i))
		}
		if groupNames[g.Name] {
			errs = append(errs, fmt.Errorf("%s: name used twice", where))
		}
		groupNames[g.Name] = true
		if len(g.Clusters) == 0 {
			errs = append(errs, fmt.Errorf("%s: clusters: list at least one pattern (\"*\" for all)", where))
		}
		for _, p := range g.Clusters {
			if _, err := path.Match(p, "x"); err != nil {
				errs = append(errs, fmt.Errorf("%s: cluster pattern %q: %v", where, p, err))
			}
		}
		if len(g.Backends) == 0 {
			errs = append(errs, fmt.Errorf("%s: backends: list at least one (the first is the primary)", where))
		}
		seen := map[string]bool{}
		for _, b := range g.Backends {
			if !names[b] {
				errs = append(errs, fmt.Errorf("%s: backend %q is not in backends:", where, b))
			}
			if seen[b] {
				errs = append(errs, fmt.Errorf("%s: backend %q listed twice", where, b))
			}
			seen[b] = true
		}
		if _, err := ParseAck(g.Ack, len(g.Backends)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if err := g.Lifecycle.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errs
}

// validateBackground checks the settings of the background work: the
// lifecycle schedule and prices, replication, health thresholds.
func (c *Config) validateBackground() []error {
	var errs []error
	if l := c.Lifecycle; l.Interval < 0 || l.Interval > 0 && l.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("lifecycle.interval %s: want 0 (no scheduled runs) or at least 1m, e.g. 24h", l.Interval))
	}
	if err := (lifecycle.Policy{Prices: c.Lifecycle.Prices}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("lifecycle.prices: %w", err))
	}
	if r := c.Replication; r.Concurrency < 0 || r.RetryMin < 0 || r.RetryMax < r.RetryMin || r.ClaimLease < 0 {
		errs = append(errs, errors.New("replication: concurrency and claim_lease must not be negative and retry_max must be at least retry_min"))
	}
	if h := c.Health; h.ArchiveTimeout < 0 || h.StallFactor < 0 || h.DelayedFor < 0 || h.BackupMaxAge < 0 || h.FullMaxAge < 0 || h.DrillMaxAge < 0 || h.ReplicationLagMax < 0 {
		errs = append(errs, errors.New("health: durations and stall_factor must not be negative"))
	}
	return errs
}

// validateMetrics checks where /metrics listens.
func (c *Config) validateMetrics() []error {
	var errs []error
	if m := c.Metrics; m.Listen != "" {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			errs = append(errs, fmt.Errorf("metrics.listen %q: want host:port, e.g. 127.0.0.1:9480", m.Listen))
		} else if !m.AllowRemote && !protocol.IsLoopback(m.Listen) {
			errs = append(errs, fmt.Errorf("metrics.listen %s is not a loopback address: /metrics has no authentication; set metrics.allow_remote: true if the network is trusted", m.Listen))
		}
	}
	return errs
}

// validateLog checks the log settings.
func (c *Config) validateLog() []error {
	var errs []error
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: use text or json", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level))
	}
	return errs
}

// Ack policies.
const (
	AckPrimary = "primary"
	AckAll     = "all"
)

// ParseAck returns how many backends of a group of n a push must reach
// (the primary policy counts as 1).
func ParseAck(ack string, n int) (int, error) {
	switch ack {
	case AckPrimary, "":
		return 1, nil
	case AckAll:
		return n, nil
	}
	k, err := strconv.Atoi(ack)
	if err != nil || k < 1 || k > n {
		return 0, fmt.Errorf("ack %q: use primary, all, or a number from 1 to %d (the group's backends)", ack, n)
	}
	return k, nil
}

// Load reads a YAML config strictly: unknown keys are errors.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses YAML config bytes strictly; name is used in errors. Every
// problem (unknown key, value of the wrong kind, bad duration) comes back
// at once in a *ParseError, each with its line and key path. Durations
// everywhere take d and w as well as Go's units (ParseDuration).
func Parse(data []byte, name string) (Config, error) {
	var c Config
	if err := parseStrict(data, name, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}
