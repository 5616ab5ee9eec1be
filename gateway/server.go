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
	"path/filepath"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/backends/gcs"
	"github.com/walgate/walgate/backends/s3"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
)

// Version is the gateway's version string, set by the build.
var Version = "dev"

// Locals keys for the request log line.
const (
	localToken = "walgate.token"
	localError = "walgate.error"
	localBytes = "walgate.bytes"
)

// Server is a running gateway: config, catalog, backend and HTTP app.
type Server struct {
	cfg     Config
	log     *slog.Logger
	catalog *index.Catalog
	stores  map[string]*store // by backend name
	order   []*store          // as configured
	groups  []*group
	repl    *replicator
	bad     badCopies
	lost    lostObjects // objects without a good copy anywhere
	app     *fiber.App
	locks   [256]sync.Mutex // per-WAL-name critical sections, striped

	sessions sessions // backup uploads in flight

	fleet     *fleet // every cluster's WAL summary, for health
	partsMu   sync.Mutex
	parts     map[string]*catalogPart // backup and drill summaries by cluster, per catalog generation
	metrics   *metrics                // Prometheus metrics
	metricsLn net.Listener            // where /metrics listens (nil: off)
	uiKey     uiKey                   // signs dashboard session cookies

	adminLn net.Listener

	lcMu       sync.Mutex          // one lifecycle run at a time
	lcBackends []lifecycle.Backend // the backends' class mappings

	shutdownOnce sync.Once
	shutdownErr  error
	adminStop    context.CancelFunc
	adminDone    chan error
}

// CatalogPath is where the catalog lives inside the data directory.
func CatalogPath(data string) string { return filepath.Join(data, "catalog.db") }

// OpenBackend opens the backend a config entry describes. It does not
// contact remote stores (`walgate backend check` does).
func OpenBackend(bc BackendConfig) (backends.Backend, error) {
	var (
		b   backends.Backend
		err error
	)
	switch bc.Type {
	case "fs":
		if err := os.MkdirAll(bc.Path, 0o750); err != nil {
			return nil, fmt.Errorf("backend %s: %w", bc.Name, err)
		}
		b, err = fs.New(bc.Path, fs.Options{})
	case "s3":
		if bc.S3 == nil {
			return nil, fmt.Errorf("backend %s: type s3 needs an s3: section", bc.Name)
		}
		b, err = s3.New(context.Background(), *bc.S3)
	case "gcs":
		if bc.GCS == nil {
			return nil, fmt.Errorf("backend %s: type gcs needs a gcs: section", bc.Name)
		}
		b, err = gcs.New(context.Background(), *bc.GCS)
	case "azure":
		if bc.Azure == nil {
			return nil, fmt.Errorf("backend %s: type azure needs an azure: section", bc.Name)
		}
		b, err = azure.New(context.Background(), *bc.Azure)
	default:
		return nil, fmt.Errorf("backend %s: type %q is not available", bc.Name, bc.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", bc.Name, err)
	}
	return b, nil
}

// WrapBackend, when set, wraps each opened backend (fault-injection tests:
// see NewWrapped).
type WrapBackend func(name string, b backends.Backend) backends.Backend

// openStores opens every configured backend.
func openStores(cfg Config, log *slog.Logger, wrap WrapBackend) (map[string]*store, []*store, error) {
	byName := map[string]*store{}
	var order []*store
	for _, bc := range cfg.Backends {
		be, err := OpenBackend(bc)
		if err != nil {
			for _, st := range order {
				st.b.Close()
			}
			return nil, nil, err
		}
		if fsb, ok := be.(*fs.Backend); ok {
			// Writers killed mid-stream leave temp files; none is ever visible.
			if n, err := fsb.CleanTemp(0); err != nil {
				log.Warn("cleaning temp files", "backend", bc.Name, "err", err)
			} else if n > 0 {
				log.Info("removed temp files of interrupted writes", "backend", bc.Name, "count", n)
			}
		}
		if wrap != nil {
			be = wrap(bc.Name, be)
		}
		st := &store{name: bc.Name, b: be, writeClass: bc.Classes["hot"]}
		if bc.MaxWrites > 0 {
			st.slots = make(chan struct{}, bc.MaxWrites)
		}
		byName[bc.Name] = st
		order = append(order, st)
	}
	return byName, order, nil
}

// New opens the catalog and the backend and builds the HTTP app. The
// caller serves it with Serve and stops it with Shutdown.
func New(cfg Config, log *slog.Logger) (*Server, error) { return NewWrapped(cfg, log, nil) }

// NewWrapped is New with every backend passed through wrap first: tests put
// fault injectors between the gateway and real backends this way.
func NewWrapped(cfg Config, log *slog.Logger, wrap WrapBackend) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	cat, err := index.Open(CatalogPath(cfg.Data), 2*time.Second)
	if err != nil {
		return nil, err
	}
	stores, order, err := openStores(cfg, log, wrap)
	if err != nil {
		cat.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, catalog: cat, stores: stores, order: order}
	closeAll := func() {
		for _, st := range order {
			st.b.Close()
		}
		cat.Close()
	}
	if s.groups, err = buildGroups(cfg.Groups, stores); err != nil {
		closeAll()
		return nil, err
	}
	if s.fleet, err = loadFleet(cat); err != nil {
		closeAll()
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if s.lcBackends, err = lifecycleBackends(cfg); err != nil {
		closeAll()
		return nil, err
	}
	s.repl = newReplicator(s)
	s.repl.start()
	s.metrics = newMetrics(s)
	s.uiKey = newUIKey()
	s.app = fiber.New(fiber.Config{
		StreamRequestBody:     true,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		// Headers and the first 8 KiB of a body are read under ReadTimeout;
		// the rest of a body under the per-read idle deadline.
		ReadTimeout:    min(cfg.Limits.HeaderTimeout, cfg.Limits.IdleTimeout),
		WriteTimeout:   cfg.Limits.WriteTimeout,
		IdleTimeout:    2 * cfg.Limits.HeaderTimeout,
		ReadBufferSize: 16 << 10,
		ServerHeader:   "",
		AppName:        "walgate",
	})
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.app.Use(s.logRequest)
	v1 := s.app.Group("/" + protocol.Version)
	v1.Get("/whoami", s.whoAmI)
	v1.Put("/clusters/:cluster/wal/:name", s.putWAL)
	v1.Get("/clusters/:cluster/wal/:name", s.getWAL)
	v1.Head("/clusters/:cluster/wal/:name", s.getWAL)
	v1.Get("/clusters/:cluster/backups", s.listBackups)
	v1.Post("/clusters/:cluster/backups/:name/commit", s.commitBackup)
	v1.Put("/clusters/:cluster/backups/:name/files/*", s.putBackupFile)
	v1.Get("/clusters/:cluster/backups/:name/files/*", s.getBackupFile)
	v1.Head("/clusters/:cluster/backups/:name/files/*", s.getBackupFile)
	v1.Post("/clusters/:cluster/backups/:name", s.beginBackup)
	v1.Get("/clusters/:cluster/backups/:name", s.getBackup)
	v1.Delete("/clusters/:cluster/backups/:name", s.abortBackup)
	v1.Post("/clusters/:cluster/drills", s.postDrill)
	v1.Get("/clusters/:cluster/drills", s.listDrills)
	v1.Get("/clusters/:cluster/health", s.getHealth)
	v1.Post("/clusters/:cluster/delete", s.postDelete)
	s.uiRoutes()
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok\n") })
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
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, err
	}
	if s.adminLn == nil {
		if s.adminLn, err = s.listenAdmin(); err != nil {
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
		return ln, nil
	}
	tc, err := ServerTLSConfig(s.cfg.TLS)
	if err != nil {
		ln.Close()
		return nil, err
	}
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
		if s.adminLn, err = s.listenAdmin(); err != nil {
			cancel()
			return err
		}
	}
	go func() { s.adminDone <- s.serveAdmin(ctx, s.adminLn) }()
	go s.janitor(ctx)
	go s.lifecycleLoop(ctx)
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
	s.repl.close()
	for _, st := range s.order {
		if berr := st.b.Close(); berr != nil && err == nil {
			err = berr
		}
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
func (s *Server) Catalog() *index.Catalog { return s.catalog }
