package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	walgate "github.com/walgate/walgate/gateway"
	gwconfig "github.com/walgate/walgate/gateway/config"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// fleetFigures: /metrics and the dashboard's fleet page over a large
// catalog.
type fleetFigures struct {
	clusters, segments int
	seed               time.Duration
	start              time.Duration // gateway.New: the catalog scan that builds the WAL summaries
	metrics, page      samples
	metricsBytes       int
	pageBytes          int
}

const (
	fleetClusters       = 1000
	fleetSegments       = 200 // per cluster, with a gap in every tenth cluster
	fleetRuns           = 25
	targetFleetResponse = 100 * time.Millisecond
)

// measureFleet seeds a catalog with 1,000 clusters (WAL, a full backup and
// a delta, a drill each), starts a gateway in this process on it, and
// times GET /metrics and GET /ui/.
func (b *bench) measureFleet(ctx context.Context, cl *cleanups) error {
	ff, err := measureFleetOn(ctx, cl, filepath.Join(b.scratch, "fleet"), fleetClusters, "")
	b.fleet = ff
	return err
}

// measureFleetOn is measureFleet with clusters clusters, on the bbolt
// catalog in dir ("" dsn) or on the PostgreSQL catalog dsn names.
func measureFleetOn(ctx context.Context, cl *cleanups, dir string, clusters int, dsn string) (*fleetFigures, error) {
	ff := &fleetFigures{clusters: clusters, segments: fleetSegments}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf("fleet: seeding a catalog with %d clusters x %d segments", clusters, fleetSegments)
	t0 := time.Now()
	var cat index.Interface
	var err error
	if dsn == "" {
		cat, err = index.Open(filepath.Join(dir, "catalog.db"), 10*time.Second)
	} else {
		cat, err = pgcatalog.Open(ctx, dsn, pgcatalog.Options{})
	}
	if err != nil {
		return nil, err
	}
	admin, err := seedFleet(cat, clusters)
	if cerr := cat.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	ff.seed = time.Since(t0)

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := walgate.Config{Data: dir, Listen: fmt.Sprintf("127.0.0.1:%d", port), Metrics: gwconfig.MetricsConfig{Listen: fmt.Sprintf("127.0.0.1:%d", mport)}}
	if dsn != "" {
		cfg.Catalog = gwconfig.CatalogConfig{Type: gwconfig.CatalogPostgres, Postgres: gwconfig.PostgresCatalog{DSN: dsn}}
	}
	cfg.Defaults()
	t0 = time.Now()
	srv, err := walgate.Open(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		return nil, err
	}
	ff.start = time.Since(t0)
	ln, err := srv.Listen()
	if err != nil {
		return nil, err
	}
	go srv.Serve(ln)
	cl.add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	get := func(url, token string) (time.Duration, int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("GET %s: HTTP %d: %.200s", url, resp.StatusCode, body)
		}
		return d, len(body), err
	}
	murl := "http://" + srv.MetricsAddr().String() + "/metrics"
	purl := fmt.Sprintf("http://%s/ui/", ln.Addr())
	for i := 0; i < fleetRuns+1; i++ { // the first of each is a warm-up
		d, n, err := get(murl, "")
		if err != nil {
			return nil, err
		}
		if i > 0 {
			ff.metrics = append(ff.metrics, d)
		}
		ff.metricsBytes = n
		d, n, err = get(purl, admin)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			ff.page = append(ff.page, d)
		}
		ff.pageBytes = n
	}
	logf("fleet: /metrics median %s, /ui/ median %s", ff.metrics.median(), ff.page.median())
	return ff, nil
}

// seedFleet fills cat with clusters clusters, each with fleetSegments
// archived WAL segments (every tenth cluster missing one), a full backup,
// a delta and a drill report, and returns a fleet-wide admin token.
func seedFleet(cat index.Interface, clusters int) (string, error) {
	admin, err := protocol.NewFleetToken()
	if err != nil {
		return "", err
	}
	if err := cat.AddToken(protocol.TokenHash(admin), index.Token{ID: protocol.TokenID(admin), AllClusters: true, Scopes: []index.Scope{index.ScopeAdmin}, Created: time.Now()}); err != nil {
		return "", err
	}
	now := time.Now().UTC()
	for i := 0; i < clusters; i++ {
		name := fmt.Sprintf("db-%04d", i)
		var objs []index.WALObject
		for s := 1; s <= fleetSegments; s++ {
			if i%10 == 0 && s == fleetSegments/2 {
				continue // a lost segment
			}
			seg := fmt.Sprintf("%08X%08X%08X", 1, s/256, s%256)
			objs = append(objs, index.WALObject{Name: seg, Key: name + "/wal_005/" + seg + ".zst", Backend: "local", Size: 4 << 20,
				PlainSize: 16 << 20, StoredAt: now.Add(-time.Duration(fleetSegments-s) * time.Minute), SHA256: "x", ContentID: "x"})
		}
		if err := cat.AddWALBatch(name, objs); err != nil {
			return "", err
		}
		for k, bk := range []struct {
			name, kind, parent string
			seg                uint64
		}{{"base_000000010000000000000002", "full", "", 2}, {"base_000000010000000000000064_D_000000010000000000000002", "delta", "base_000000010000000000000002", 100}} {
			at := now.Add(-time.Duration(fleetSegments-int(bk.seg)) * time.Minute)
			if err := cat.BeginBackup(name, index.Backup{Name: bk.name, State: index.BackupOpen, Session: "s", Begun: at, LastActivity: at}); err != nil {
				return "", err
			}
			err := cat.UpdateBackup(name, bk.name, func(b *index.Backup) error {
				b.State, b.Committed = index.BackupCommitted, at
				b.Files = map[string]index.BackupFile{"tar_partitions/part_001.tar.zst": {Size: 1 << 30}}
				b.Info = index.BackupInfo{Kind: bk.kind, DeltaFrom: bk.parent, DeltaCount: k, DeltaFullName: "base_000000010000000000000002",
					StartLSN: bk.seg * 16 << 20, FinishLSN: bk.seg*16<<20 + 100, Timeline: 1, StartTime: at.Add(-time.Minute), FinishTime: at}
				return nil
			})
			if err != nil {
				return "", err
			}
		}
		rep, _ := json.Marshal(protocol.DrillReport{Cluster: name, Backup: "base_000000010000000000000002", Passed: true})
		if err := cat.AddDrill(name, index.DrillRecord{Received: now.Add(-24 * time.Hour), Passed: true, Report: rep}); err != nil {
			return "", err
		}
	}
	return admin, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (ff *fleetFigures) markdown() string {
	var w strings.Builder
	w.WriteString(fleetBegin + "\n## Fleet health: /metrics and the dashboard\n\n")
	fmt.Fprintf(&w, "A catalog of %d clusters, each with %d archived WAL segments (every tenth cluster missing one), a full backup, a delta and a drill report (seeded through the catalog API in %s), served by a gateway in the benchmark's process. %d timed requests each over loopback after one warm-up, with the response read to its end. Measured with `go run ./cmd/walgate-bench -sections fleet -out docs/benchmarks.md`.\n\n",
		ff.clusters, ff.segments, ff.seed.Round(time.Second), fleetRuns)
	verdict := func(s samples) string {
		if s.median() <= targetFleetResponse {
			return "pass"
		}
		return "**FAIL**"
	}
	mdTable(&w, [][]string{
		{"Request", "Median", "p90", "Response size", "Target < 100 ms"},
		{"GET /metrics (Prometheus text)", ms(ff.metrics.median()), ms(ff.metrics.pct(90)), fmt.Sprintf("%.0f KiB", float64(ff.metricsBytes)/1024), verdict(ff.metrics)},
		{"GET /ui/ (fleet page, admin token)", ms(ff.page.median()), ms(ff.page.pct(90)), fmt.Sprintf("%.0f KiB", float64(ff.pageBytes)/1024), verdict(ff.page)},
	})
	fmt.Fprintf(&w, "Gateway start-up on this catalog (the one scan that builds every cluster's WAL summary; pushes keep them current afterwards): %s. Each request evaluates every cluster's health from those summaries plus its backups and recent drills read from the catalog.\n%s\n", ff.start.Round(time.Millisecond), fleetEnd)
	return w.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

const (
	fleetBegin = "<!-- fleet-health: begin -->"
	fleetEnd   = "<!-- fleet-health: end -->"
)

// spliceSection replaces the text between begin and end in doc, or adds
// section before "## Method".
func spliceSection(doc, section, begin, end string) string {
	if i := strings.Index(doc, begin); i >= 0 {
		if j := strings.Index(doc, end); j > i {
			return doc[:i] + strings.TrimSuffix(section, "\n") + doc[j+len(end):]
		}
	}
	if i := strings.Index(doc, "## Method"); i >= 0 {
		return doc[:i] + section + "\n" + doc[i:]
	}
	return doc + "\n" + section
}
