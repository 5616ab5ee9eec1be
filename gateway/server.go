package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/audit"
	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// Version is the gateway's version string, set by the build.
var Version = "dev"

// Locals keys for the request log line.
const (
	localToken = "walgate.token"
	localError = "walgate.error"
	localBytes = "walgate.bytes"
)

// Server is a running gateway: config, catalog, stores and HTTP app.
type Server struct {
	cfg     Config
	log     *slog.Logger
	catalog index.Interface
	stores  *stores.Set
	app     *fiber.App
	locks   [256]sync.Mutex // per-WAL-name critical sections, striped
	// instance names this process in the catalog's claims and leases.
	instance string
	started  time.Time

	beatMu sync.Mutex
	beat   *heartbeat // the heartbeat loop while serving (heartbeat.go)

	sessions sessions      // backup uploads in flight
	early    earlyRefusals // requests refused on their headers

	fleet     *fleet.Fleet    // every cluster's WAL summary, for health
	lc        *apply.Executor // lifecycle runs
	metrics   *metrics        // Prometheus metrics
	metricsLn net.Listener    // where /metrics listens (nil: off)
	uiKey     uiKey           // signs dashboard session cookies
	uiPlan    uiPlanCache     // the lifecycle page's last dry run

	adminLn net.Listener
	audit   *audit.Log // administrative acts (auditlog.go)

	shutdownOnce sync.Once
	shutdownErr  error
	adminStop    context.CancelFunc
	adminDone    chan error
}

// Open opens what the daemon runs on, the configured catalog (OpenCatalog)
// and every configured store, and builds the server over them (New). wrap, when set,
// wraps each store (fault-injection tests).
func Open(cfg Config, log *slog.Logger, wrap stores.Wrap) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// Gateways sharing a PostgreSQL catalog share its stores too: a WAL
	// object the catalog does not list may be another gateway's push.
	if cfg.Catalog.IsPostgres() {
		cfg.SharedStores = true
	}
	cat, err := OpenCatalog(context.Background(), cfg, 2*time.Second)
	if err != nil {
		return nil, err
	}
	st, err := stores.Open(context.Background(), cfg, cat, stores.Options{Log: log, Wrap: wrap, Recover: true})
	if err != nil {
		cat.Close()
		return nil, err
	}
	s, err := New(cfg, cat, st, log)
	if err != nil {
		st.Close()
		cat.Close()
		return nil, err
	}
	return s, nil
}

// New builds the gateway over an opened catalog and the stores opened
// from the same config (defaults applied, valid), and starts the
// replicator. Once New succeeds the server owns them (Shutdown closes
// them); when it fails they stay the caller's.
func New(cfg Config, cat index.Interface, st *stores.Set, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, catalog: cat, stores: st, instance: newInstanceID(), started: time.Now()}
	var err error
	if s.audit, err = s.openAudit(); err != nil {
		return nil, err
	}
	if s.fleet, err = fleet.Load(cat, cfg); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	lcBackends, err := st.LifecycleBackends()
	if err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s)
	s.lc = apply.New(apply.Config{Catalog: cat, Stores: st, Backends: lcBackends, Prices: cfg.Lifecycle.Prices,
		SegmentSize: s.fleet.SegmentSize, WALDeleted: s.fleet.Rescan, Log: log,
		Observe: func(kind lifecycle.ActionKind, result string) {
			s.metrics.lifecycle.WithLabelValues(string(kind), result).Inc()
		}})
	st.OnLost = func(cp index.Copy) { s.metrics.lost.WithLabelValues(cp.Cluster, cp.Backend).Inc() }
	st.Owner = s.instance
	st.Start()
	s.uiKey = newUIKey()
	s.app = fiber.New(fiber.Config{
		StreamRequestBody:     true,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		// Headers and the first 8 KiB of a body are read under ReadTimeout;
		// the rest of a body under the per-read idle deadline.
		ReadTimeout:    s.readTimeout(),
		WriteTimeout:   cfg.Limits.WriteTimeout,
		IdleTimeout:    2 * cfg.Limits.HeaderTimeout,
		ReadBufferSize: 16 << 10,
		ServerHeader:   "",
		AppName:        "walgate",
	})
	s.app.Server().HeaderReceived = s.headerReceived
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.app.Use(s.logRequest, s.refuseEarly)
	s.app.Get(protocol.RouteWhoAmI, s.whoAmI)
	s.app.Put(protocol.RouteWAL, s.putWAL)
	s.app.Get(protocol.RouteWAL, s.getWAL)
	s.app.Head(protocol.RouteWAL, s.getWAL)
	s.app.Get(protocol.RouteBackups, s.listBackups)
	s.app.Post(protocol.RouteBackupCommit, s.commitBackup)
	s.app.Put(protocol.RouteBackupFile, s.putBackupFile)
	s.app.Get(protocol.RouteBackupFile, s.getBackupFile)
	s.app.Head(protocol.RouteBackupFile, s.getBackupFile)
	s.app.Post(protocol.RouteBackup, s.beginBackup)
	s.app.Get(protocol.RouteBackup, s.getBackup)
	s.app.Delete(protocol.RouteBackup, s.abortBackup)
	s.app.Post(protocol.RouteDrills, s.postDrill)
	s.app.Get(protocol.RouteDrills, s.listDrills)
	s.app.Get(protocol.RouteHealth, s.getHealth)
	s.app.Get(protocol.RouteKeys, s.getKeyUsage)
	s.app.Post(protocol.RouteDelete, s.postDelete)
	s.uiRoutes()
	s.app.Get("/healthz", s.getHealthz)
	s.app.Get("/readyz", s.getReadyz)
}

// logRequest writes one structured line per request.
func (s *Server) logRequest(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		// Let the error handler write the response before logging.
		if herr := s.errorHandler(c, err); herr != nil {
			s.log.Error("writing error response", "err", herr)
		}
	}
	attrs := []any{
		"method", c.Method(), "path", c.Path(), "status", c.Response().StatusCode(),
		"ms", time.Since(start).Milliseconds(), "remote", c.IP(),
	}
	if v, ok := c.Locals(localToken).(string); ok {
		attrs = append(attrs, "token", v)
	}
	if v, ok := c.Locals(localBytes).(int64); ok {
		attrs = append(attrs, "bytes", v)
	}
	code := "ok"
	if ae, ok := c.Locals(localError).(*apiError); ok {
		code = string(ae.Code)
	}
	var nbytes int64
	if v, ok := c.Locals(localBytes).(int64); ok {
		nbytes = v
	}
	s.metrics.observe(c, time.Since(start), code, nbytes)
	level := slog.LevelInfo
	if ae, ok := c.Locals(localError).(*apiError); ok {
		attrs = append(attrs, "code", string(ae.Code), "msg", ae.Message)
		if ae.Err != nil {
			attrs = append(attrs, "err", ae.Err.Error())
		}
		level = slog.LevelWarn
		if ae.Code == protocol.CodeNotFound {
			level = slog.LevelInfo // normal at the end of every recovery
		}
		if ae.Code == protocol.CodeInternal || ae.Code == protocol.CodeUnavailable {
			level = slog.LevelError
		}
	}
	s.log.Log(context.Background(), level, "request", attrs...)
	return nil
}

func (s *Server) whoAmI(c *fiber.Ctx) error {
	t, err := s.authenticate(c)
	if err != nil {
		return err
	}
	scopes := make([]string, len(t.Scopes))
	for i, sc := range t.Scopes {
		scopes[i] = string(sc)
	}
	return c.JSON(protocol.WhoAmI{TokenID: t.ID, Cluster: t.Cluster, Scopes: scopes, Gateway: Version})
}

// readTimeout bounds reading a request's headers and the first 8 KiB of
// its body (the HTTP server's ReadTimeout).
func (s *Server) readTimeout() time.Duration {
	return min(s.cfg.Limits.HeaderTimeout, s.cfg.Limits.IdleTimeout)
}

// lockName serialises pushes of one WAL name of one cluster.
func (s *Server) lockName(cluster, name string) func() {
	h := fnv.New32a()
	h.Write([]byte(cluster))
	h.Write([]byte{0})
	h.Write([]byte(name))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Listen opens the configured listener: TLS when configured, plain TCP
// otherwise (Validate has already refused plain HTTP off loopback).
func (s *Server) Listen() (net.Listener, error) {
	nofile := raiseOpenFiles(s.log)
	tcp, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, err
	}
	limit := connectionCap(s.cfg.Limits.MaxConnections, nofile)
	if limit < s.cfg.Limits.MaxConnections {
		s.log.Warn("limits.max_connections lowered to fit the open files limit (raise LimitNOFILE or ulimit -n for more)",
			"max_connections", s.cfg.Limits.MaxConnections, "open_files", nofile, "effective", limit)
	}
	var ln net.Listener = newConnListener(tcp, limit, s.cfg.Limits.MaxConnectionsPerAddress, s.log,
		func(reason string) { s.metrics.refused.WithLabelValues(reason).Inc() })
	if s.adminLn == nil {
		if s.adminLn, err = admin.Listen(s.cfg.Data); err != nil {
			ln.Close()
			return nil, err
		}
	}
	if s.cfg.Metrics.Listen != "" && s.metricsLn == nil {
		if s.metricsLn, err = net.Listen("tcp", s.cfg.Metrics.Listen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("metrics.listen %s: %w", s.cfg.Metrics.Listen, err)
		}
	}
	if !s.cfg.TLS.Enabled() {
		s.registerGateway(tcp.Addr())
		return ln, nil
	}
	tc, err := ServerTLSConfig(s.cfg.TLS)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.registerGateway(tcp.Addr())
	return tls.NewListener(ln, tc), nil
}

// ServerTLSConfig builds the TLS settings of a TLSConfig.
func ServerTLSConfig(t TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s and %s: %w", t.Cert, t.Key, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca %s: no PEM certificate found", t.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Serve serves requests on ln, and admin verbs on the admin socket, until
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.adminStop = cancel
	s.adminDone = make(chan error, 1)
	if s.adminLn == nil {
		var err error
		if s.adminLn, err = admin.Listen(s.cfg.Data); err != nil {
			cancel()
			return err
		}
	}
	adm := &admin.Server{Data: s.cfg.Data, Catalog: s.catalog, Fleet: s.fleet, Stores: s.stores, Lifecycle: s.lc, Log: s.log, Audit: s.audit}
	go func() { s.adminDone <- adm.Serve(ctx, s.adminLn) }()
	go s.janitor(ctx)
	go s.lifecycleLoop(ctx)
	s.followPeers(ctx)
	s.startHeartbeat(ln)
	if s.metricsLn != nil {
		s.serveMetrics(ctx, s.metricsLn)
		s.log.Info("serving Prometheus metrics", "url", "http://"+s.metricsLn.Addr().String()+"/metrics")
	}
	err := s.app.Listener(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, waits up to ctx for running ones, and
// closes the backend and the catalog.
// A second call does nothing and returns the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	if s.adminStop == nil && s.adminLn != nil {
		s.adminLn.Close()
	}
	if s.adminStop == nil && s.metricsLn != nil {
		s.metricsLn.Close()
	}
	if s.adminStop != nil {
		s.adminStop()
		if aerr := <-s.adminDone; aerr != nil {
			s.log.Warn("admin socket", "err", aerr)
		}
	}
	s.stopHeartbeat()
	if terr := s.metrics.trends.flush(time.Now()); terr != nil {
		s.log.Warn("trends: writing the hourly counts", "err", terr)
	}
	if serr := s.stores.Close(); serr != nil && err == nil {
		err = serr
	}
	if cerr := s.catalog.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// MetricsAddr is where /metrics listens (nil before Listen or when off).
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Catalog is the gateway's catalog, for tests and admin verbs in-process.
func (s *Server) Catalog() index.Interface { return s.catalog }

// Instance is this gateway process's name in the catalog's claims and
// leases.
func (s *Server) Instance() string { return s.instance }

// Stores are the gateway's stores, for tests in-process.
func (s *Server) Stores() *stores.Set { return s.stores }

// Lifecycle plans (and with opts.Apply carries out) a lifecycle run.
func (s *Server) Lifecycle(ctx context.Context, opts apply.Options, now time.Time) (apply.Result, error) {
	return s.lc.Run(ctx, opts, now)
}

// LostObjects lists the objects found without a good copy on any backend
// since the gateway started.
func (s *Server) LostObjects() []index.Copy { return s.stores.LostObjects() }

// FleetStatus evaluates every cluster from the running gateway's WAL
// summaries.
func (s *Server) FleetStatus(now time.Time) ([]ClusterStatus, error) { return s.fleet.Status(now) }

// ClusterHealth evaluates one cluster (wal-verify).
func (s *Server) ClusterHealth(cluster string, now time.Time) (ClusterStatus, error) {
	return s.fleet.ClusterHealth(cluster, now)
}

// BackendsStatus describes the running gateway's backends.
func (s *Server) BackendsStatus() ([]stores.BackendStatus, error) { return s.stores.BackendsStatus() }
