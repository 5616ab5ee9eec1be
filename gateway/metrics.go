package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walgate/walgate/gateway/health"
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
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
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
	m.reg.MustRegister(m.lost, m.lifecycle, m.requests, m.duration, m.bytesIn, m.bytesOut, fleetCollector{s}, prometheus.NewGoCollector())
	return m
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
	if bytes > 0 && code == "ok" {
		switch op {
		case "wal_push", "backup_upload":
			m.bytesIn.WithLabelValues(op).Add(float64(bytes))
		case "wal_fetch", "backup_fetch":
			m.bytesOut.WithLabelValues(op).Add(float64(bytes))
		}
	}
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
	descCatalog    = prometheus.NewDesc("walgate_catalog_size_bytes", "Size of the catalog: its bbolt file, or its tables in PostgreSQL.", nil, nil)
	descClusters   = prometheus.NewDesc("walgate_clusters", "Clusters in the catalog.", nil, nil)
	descScrapeErr  = prometheus.NewDesc("walgate_health_error", "1 when the fleet's health could not be computed at this scrape.", nil, nil)
)

func (fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStatus, descLastPush, descStalled, descMissing, descLastBackup, descLastFull, descChain,
		descWinStart, descWinEnd, descToNow, descStored, descPending, descDrill, descDrillAt, descCatalog, descClusters, descScrapeErr} {
		ch <- d
	}
}

func (f fleetCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ts := func(d *prometheus.Desc, t time.Time, cluster string) {
		if !t.IsZero() {
			gauge(d, float64(t.UnixMilli())/1000, cluster)
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
	fleet, err := f.s.FleetStatus(time.Now())
	gauge(descScrapeErr, b01(err != nil))
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
		}
		if st.LastDrill != nil {
			gauge(descDrill, b01(st.LastDrill.Passed), c)
		}
		ts(descDrillAt, st.LastPassedDrill, c)
	}
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

// MetricsHandler serves /metrics.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: nil})
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
