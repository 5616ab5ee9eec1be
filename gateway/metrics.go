package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/health"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/lifecycle"
)

// metrics are the gateway's Prometheus metrics. Labels are bounded: per
// cluster and backend, never per object.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // op, code
	duration *prometheus.HistogramVec // op
	bytesIn  *prometheus.CounterVec   // op
	bytesOut *prometheus.CounterVec   // op
	// lifecycle counts applied lifecycle actions by kind and result.
	lifecycle *prometheus.CounterVec // kind, result
	// lost counts objects found without a good copy on any backend.
	lost *prometheus.CounterVec // cluster, backend
	// trends counts each cluster's activity per hour for the dashboard.
	trends *trendRecorder
	// refused counts connections closed at accept, by the limit they hit.
	refused *prometheus.CounterVec // reason
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), trends: newTrendRecorder(s.catalog, s.log)}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walgate_requests_total",
		Help: "Requests by operation and result code (ok, or the protocol error code)."}, []string{"op", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "walgate_request_duration_seconds",
		Help:    "Request latency by operation, from headers read to response written.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"op"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walgate_received_bytes_total",
		Help: "Object bytes received and stored, by operation."}, []string{"op"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walgate_sent_bytes_total",
		Help: "Object bytes sent, by operation."}, []string{"op"})
	m.lifecycle = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walgate_lifecycle_actions_total",
		Help: "Lifecycle actions carried out (set-class, delete) by result (done, failed)."}, []string{"kind", "result"})
	m.lost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walgate_unrepairable_objects_total",
		Help: "Objects whose repair found no good copy on any backend (each counted once per gateway run)."}, []string{"cluster", "backend"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walgate_connections_refused_total",
		Help: "Client connections closed as soon as accepted, by the limit they exceeded (max_connections, max_connections_per_address)."}, []string{"reason"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "walgate_build_info",
		Help:        "Always 1; the labels say which walgate build runs.",
		ConstLabels: prometheus.Labels{"version": Version, "revision": buildRevision(), "go_version": runtime.Version()}})
	buildInfo.Set(1)
	m.reg.MustRegister(m.refused, m.lost, m.lifecycle, m.requests, m.duration, m.bytesIn, m.bytesOut, buildInfo, fleetCollector{s}, tokenCollector{s}, gatewayCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.zero()
	return m
}

// requestOps are the values of the op label; requestCodes the values of
// code: ok and every protocol error code.
var (
	requestOps   = []string{"wal_push", "wal_fetch", "backup_upload", "backup_fetch", "backup_meta", "drill", "health", "other"}
	requestCodes = []protocol.Code{"ok", protocol.CodeBadRequest, protocol.CodeInvalidName, protocol.CodeLengthRequired,
		protocol.CodeLengthMismatch, protocol.CodeHashMismatch, protocol.CodeTooLarge, protocol.CodeUnauthorized,
		protocol.CodeForbidden, protocol.CodeNotFound, protocol.CodeConflict, protocol.CodeTimeout, protocol.CodeUnavailable,
		protocol.CodeInternal, protocol.CodeRouteNotFound, protocol.CodeDamaged}
)

// zero makes every counter whose label values are known at start exist
// at 0, so that rate() and increase() see the first event and a
// dashboard shows 0 rather than "no data".
func (m *metrics) zero() {
	for _, op := range requestOps {
		for _, code := range requestCodes {
			m.requests.WithLabelValues(op, string(code))
		}
		m.duration.WithLabelValues(op)
	}
	for _, op := range []string{"wal_push", "backup_upload"} {
		m.bytesIn.WithLabelValues(op)
	}
	for _, op := range []string{"wal_fetch", "backup_fetch"} {
		m.bytesOut.WithLabelValues(op)
	}
	for _, kind := range []lifecycle.ActionKind{lifecycle.SetClass, lifecycle.Delete} {
		for _, result := range []string{"done", "failed"} {
			m.lifecycle.WithLabelValues(string(kind), result)
		}
	}
}

// zeroCluster makes a cluster's per-backend counters exist at 0; the
// scrape calls it for every cluster in the catalog.
func (m *metrics) zeroCluster(cluster string, backends []string) {
	for _, b := range backends {
		m.lost.WithLabelValues(cluster, b)
	}
}

// buildRevision is the VCS revision the binary was built from, when the
// build recorded it.
func buildRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				return kv.Value
			}
		}
	}
	return "unknown"
}

// opOf names a request's operation for the metrics' op label.
func opOf(c *fiber.Ctx) string {
	path, method := c.Route().Path, c.Method()
	switch {
	case strings.HasSuffix(path, "/wal/:name"):
		if method == fiber.MethodPut {
			return "wal_push"
		}
		return "wal_fetch"
	case strings.HasSuffix(path, "/files/*"):
		if method == fiber.MethodPut {
			return "backup_upload"
		}
		return "backup_fetch"
	case strings.Contains(path, "/backups"):
		return "backup_meta"
	case strings.HasSuffix(path, "/drills"):
		return "drill"
	case strings.HasSuffix(path, "/health"):
		return "health"
	}
	return "other"
}

// observe records one finished request.
func (m *metrics) observe(c *fiber.Ctx, took time.Duration, code string, bytes int64) {
	op := opOf(c)
	m.requests.WithLabelValues(op, code).Inc()
	m.duration.WithLabelValues(op).Observe(took.Seconds())
	if cluster := clusterOfPath(c.Path()); cluster != "" {
		m.trends.add(cluster, time.Now(), trendOf(c, op, code, bytes))
	}
	if bytes > 0 && code == "ok" {
		switch op {
		case "wal_push", "backup_upload":
			m.bytesIn.WithLabelValues(op).Add(float64(bytes))
		case "wal_fetch", "backup_fetch":
			m.bytesOut.WithLabelValues(op).Add(float64(bytes))
		}
	}
}

// clusterOfPath is the cluster an API request path names ("" for other
// paths), copied: fiber's path string lives in a buffer the next request
// reuses. The trend recorder keeps only clusters the catalog has.
func clusterOfPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/"+protocol.Version+"/clusters/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	if u, err := url.PathUnescape(name); err == nil && u != name {
		return u
	}
	return strings.Clone(name)
}

// trendOf is what one finished request adds to its cluster's trends.
// not_found is not an error there: every recovery ends with one.
func trendOf(c *fiber.Ctx, op, code string, bytes int64) index.TrendCounts {
	tc := index.TrendCounts{Requests: 1}
	if code != "ok" && code != string(protocol.CodeNotFound) {
		tc.Errors = 1
	}
	created := code == "ok" && c.Response().StatusCode() == fiber.StatusCreated
	switch {
	case op == "wal_push" && created:
		tc.WALFiles, tc.WALBytes = 1, bytes
	case code == "ok" && c.Method() == fiber.MethodPost && c.Route().Path == protocol.RouteBackupCommit:
		tc.Backups = 1
	}
	return tc
}

// fleetCollector reports every cluster's health at scrape time.
type fleetCollector struct{ s *Server }

var (
	descStatus     = prometheus.NewDesc("walgate_cluster_status", "Cluster health: 0 ok, 1 warning, 2 critical.", []string{"cluster"}, nil)
	descLastPush   = prometheus.NewDesc("walgate_cluster_last_wal_timestamp_seconds", "When the cluster's newest WAL file was archived (Unix time).", []string{"cluster"}, nil)
	descStalled    = prometheus.NewDesc("walgate_cluster_archiving_stalled", "1 when nothing was archived for longer than stall_factor x archive_timeout.", []string{"cluster"}, nil)
	descMissing    = prometheus.NewDesc("walgate_cluster_wal_missing_segments", "Missing WAL segments between the oldest backup's start and the newest segment, by class (delayed: may still arrive; lost).", []string{"cluster", "class"}, nil)
	descLastBackup = prometheus.NewDesc("walgate_cluster_last_backup_timestamp_seconds", "Finish time of the newest committed backup (Unix time).", []string{"cluster"}, nil)
	descLastFull   = prometheus.NewDesc("walgate_cluster_last_full_backup_timestamp_seconds", "Finish time of the newest full backup (Unix time).", []string{"cluster"}, nil)
	descChain      = prometheus.NewDesc("walgate_cluster_delta_chain_length", "Deltas between the newest backup and its full backup.", []string{"cluster"}, nil)
	descWinStart   = prometheus.NewDesc("walgate_cluster_recoverable_window_start_timestamp_seconds", "Earliest point that can be restored (Unix time).", []string{"cluster"}, nil)
	descWinEnd     = prometheus.NewDesc("walgate_cluster_recoverable_window_end_timestamp_seconds", "Latest point that can be restored, at most (Unix time).", []string{"cluster"}, nil)
	descToNow      = prometheus.NewDesc("walgate_cluster_restorable_to_latest", "1 when the newest backup recovers to the newest archived WAL.", []string{"cluster"}, nil)
	descStored     = prometheus.NewDesc("walgate_cluster_stored_bytes", "Bytes stored, by backend and storage class.", []string{"cluster", "backend", "class"}, nil)
	descPending    = prometheus.NewDesc("walgate_cluster_replication_pending_objects", "Objects not yet copied to a backend.", []string{"cluster", "backend"}, nil)
	descDrill      = prometheus.NewDesc("walgate_cluster_last_drill_passed", "1 when the last restore drill passed, 0 when it failed (absent without drills).", []string{"cluster"}, nil)
	descDrillAt    = prometheus.NewDesc("walgate_cluster_last_passed_drill_timestamp_seconds", "When the last passing restore drill was received (Unix time).", []string{"cluster"}, nil)
	descPendingAt  = prometheus.NewDesc("walgate_cluster_replication_oldest_pending_timestamp_seconds", "When the oldest copy still waiting for a backend was queued (Unix time; absent when none waits).", []string{"cluster", "backend"}, nil)
	descBPending   = prometheus.NewDesc("walgate_backend_replication_pending_objects", "Objects waiting to be copied to the backend, all clusters.", []string{"backend"}, nil)
	descBPendingAt = prometheus.NewDesc("walgate_backend_replication_oldest_pending_timestamp_seconds", "When the backend's oldest waiting copy was queued (Unix time; absent when none waits).", []string{"backend"}, nil)
	descBErrorAt   = prometheus.NewDesc("walgate_backend_last_error_timestamp_seconds", "When an operation on the backend last failed (Unix time; absent when none has).", []string{"backend"}, nil)
	descCatalog    = prometheus.NewDesc("walgate_catalog_size_bytes", "Size of the catalog: its bbolt file, or its tables in PostgreSQL.", nil, nil)
	descClusters   = prometheus.NewDesc("walgate_clusters", "Clusters in the catalog.", nil, nil)
	descScrapeErr  = prometheus.NewDesc("walgate_health_error", "1 when the fleet's health could not be computed at this scrape.", nil, nil)
)

func (fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStatus, descLastPush, descStalled, descMissing, descLastBackup, descLastFull, descChain,
		descWinStart, descWinEnd, descToNow, descStored, descPending, descPendingAt, descBPending, descBPendingAt, descBErrorAt,
		descDrill, descDrillAt, descCatalog, descClusters, descScrapeErr} {
		ch <- d
	}
}

func (f fleetCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ts := func(d *prometheus.Desc, t time.Time, labels ...string) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixMilli())/1000, labels...)
		}
	}
	b01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if n := f.s.catalog.SizeBytes(); n > 0 {
		gauge(descCatalog, float64(n))
	}
	backends, berr := f.s.BackendsStatus()
	for _, b := range backends {
		gauge(descBPending, float64(b.PendingObjects), b.Name)
		ts(descBPendingAt, b.OldestPending, b.Name)
		ts(descBErrorAt, b.LastErrorAt, b.Name)
	}
	if berr != nil {
		f.s.log.Error("metrics: backends", "err", berr)
	}
	fleet, err := f.s.FleetStatus(time.Now())
	gauge(descScrapeErr, b01(err != nil || berr != nil))
	if err != nil {
		f.s.log.Error("metrics: fleet health", "err", err)
		return
	}
	gauge(descClusters, float64(len(fleet)))
	for _, st := range fleet {
		c := st.Cluster
		gauge(descStatus, float64(statusValue(st.Status)), c)
		ts(descLastPush, st.LastPush, c)
		gauge(descStalled, b01(st.Stalled), c)
		gauge(descMissing, float64(st.Delayed), c, "delayed")
		gauge(descMissing, float64(st.LostSegments), c, "lost")
		ts(descLastBackup, st.LastBackupAt, c)
		ts(descLastFull, st.LastFullAt, c)
		gauge(descChain, float64(st.ChainLength), c)
		ts(descWinStart, st.WindowStart, c)
		ts(descWinEnd, st.WindowEnd, c)
		gauge(descToNow, b01(st.RestorableToNow), c)
		for _, b := range st.Backends {
			for class, n := range b.StoredBytes {
				if class == "" {
					class = "default"
				}
				gauge(descStored, float64(n), c, b.Name, class)
			}
			gauge(descPending, float64(b.PendingCount), c, b.Name)
			ts(descPendingAt, b.OldestPending, c, b.Name)
		}
		if st.LastDrill != nil {
			gauge(descDrill, b01(st.LastDrill.Passed), c)
		}
		ts(descDrillAt, st.LastPassedDrill, c)
	}
}

// gatewayCollector reports the fleet's gateways at scrape time, from their
// heartbeat rows in the catalog: every gateway of a fleet reports all of
// them, itself included.
type gatewayCollector struct{ s *Server }

var (
	descGatewayUp       = prometheus.NewDesc("walgate_gateway_up", "1 when the gateway's last heartbeat is recent (alive), 0 when it is not (down or stopped).", []string{"gateway", "host"}, nil)
	descGatewayStopped  = prometheus.NewDesc("walgate_gateway_stopped", "1 when the gateway's last heartbeat was its clean shutdown.", []string{"gateway", "host"}, nil)
	descGatewayLastSeen = prometheus.NewDesc("walgate_gateway_last_seen_timestamp_seconds", "The gateway's last heartbeat, by the catalog's clock (Unix time).", []string{"gateway", "host"}, nil)
	descGateways        = prometheus.NewDesc("walgate_gateways", "Gateways alive (a recent heartbeat in the catalog).", nil, nil)
)

func (gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGatewayUp, descGatewayStopped, descGatewayLastSeen, descGateways} {
		ch <- d
	}
}

func (g gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	list, err := g.s.Gateways()
	if err != nil {
		g.s.log.Error("metrics: gateways", "err", err)
		return
	}
	alive := 0
	for _, gw := range list {
		up, stopped := 0.0, 0.0
		if gw.Alive {
			up, alive = 1, alive+1
		}
		if gw.State == fleet.GatewayStopped {
			stopped = 1
		}
		ch <- prometheus.MustNewConstMetric(descGatewayUp, prometheus.GaugeValue, up, gw.ID, gw.Host)
		ch <- prometheus.MustNewConstMetric(descGatewayStopped, prometheus.GaugeValue, stopped, gw.ID, gw.Host)
		ch <- prometheus.MustNewConstMetric(descGatewayLastSeen, prometheus.GaugeValue, float64(gw.LastSeen.UnixMilli())/1000, gw.ID, gw.Host)
	}
	ch <- prometheus.MustNewConstMetric(descGateways, prometheus.GaugeValue, float64(alive))
}

func statusValue(s health.Status) int {
	switch s {
	case health.Warning:
		return 1
	case health.Critical:
		return 2
	}
	return 0
}

// MetricsHandler serves /metrics. Before each scrape it makes the
// per-cluster counters of every cataloged cluster exist.
func (s *Server) MetricsHandler() http.Handler {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if clusters, err := s.catalog.Clusters(); err == nil {
			for _, c := range clusters {
				if grp, err := s.stores.GroupFor(c.Name); err == nil {
					s.metrics.zeroCluster(c.Name, grp.Names())
				}
			}
		}
		return s.metrics.reg.Gather()
	})
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: nil})
}

// serveMetrics serves /metrics on ln until ctx ends.
func (s *Server) serveMetrics(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener", "err", err)
		}
	}()
}
