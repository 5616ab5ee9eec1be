package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/walgate/walgate/cmd/internal/pgtest"
)

// The catalog section: a fleet's PostgreSQL catalog against the embedded
// bbolt one, on one PostgreSQL 15 server on loopback that this section
// starts (fsync on, as a catalog database runs).

// Targets of the catalog section.
const (
	targetCatalogPushRatio = 1.25             // PostgreSQL push median and p90 over bbolt's
	targetCatalogPlan      = 10 * time.Second // the lifecycle plan over 10 million WAL records from PostgreSQL
)

// catalogFigures are the catalog section's figures.
type catalogFigures struct {
	postgres string // the catalog server's version()

	// Push latency through one gateway, bbolt catalog against PostgreSQL.
	pushes           int
	pushBolt, pushPG samples

	// Pushes per second through 1, 2 and 3 gateways on one PostgreSQL
	// catalog and one fs store.
	pushers  int
	rateTime time.Duration
	rates    []catalogRate

	// The lifecycle plan over WAL records read from PostgreSQL.
	plan *catalogPlan

	// /metrics and the fleet page from PostgreSQL, and from bbolt in the
	// same run.
	fleet, fleetBolt *fleetFigures
}

// catalogRate is one throughput run.
type catalogRate struct {
	kind     string // segmentsReal or segmentsSwitched
	gateways int
	pushes   int
	wall     time.Duration
	latency  samples // each push's wall time
}

func (r catalogRate) perSecond() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.pushes) / r.wall.Seconds()
}

// Kinds of segment in the throughput runs.
const (
	segmentsReal     = "real"
	segmentsSwitched = "switched"
)

// switchedHead is how much real WAL a switched segment carries before
// its zeros.
const switchedHead = 64 << 10

// measureCatalog runs the catalog section.
func (b *bench) measureCatalog(ctx context.Context, cl *cleanups) error {
	cf := &catalogFigures{pushes: b.opts.catalogPushes, pushers: b.opts.catalogPushers, rateTime: b.opts.catalogRateTime}
	b.catalog = cf
	if len(b.segments) == 0 {
		if err := b.makeWAL(ctx, cl); err != nil {
			return fmt.Errorf("making the input WAL: %w", err)
		}
	}
	pg, err := startCatalogServer(ctx, cl)
	if err != nil {
		return err
	}
	if cf.postgres, err = pg.QueryString(ctx, "SELECT version()"); err != nil {
		return err
	}
	dir := filepath.Join(b.scratch, "catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := b.catalogPushLatency(ctx, cl, pg, dir, cf); err != nil {
		return fmt.Errorf("push latency: %w", err)
	}
	if err := b.catalogPushRates(ctx, pg, dir, cf); err != nil {
		return fmt.Errorf("pushes per second: %w", err)
	}
	if cf.plan, err = measureCatalogPlan(ctx, pg, filepath.Join(dir, "plan"), b.opts.catalogRecords); err != nil {
		return fmt.Errorf("lifecycle plan: %w", err)
	}
	dsn, err := catalogDatabase(ctx, pg, "walgate_fleet")
	if err != nil {
		return err
	}
	if cf.fleetBolt, err = measureFleetOn(ctx, cl, filepath.Join(dir, "fleet-bbolt"), b.opts.catalogFleetClusters, ""); err != nil {
		return fmt.Errorf("fleet health on bbolt: %w", err)
	}
	if cf.fleet, err = measureFleetOn(ctx, cl, filepath.Join(dir, "fleet"), b.opts.catalogFleetClusters, dsn); err != nil {
		return fmt.Errorf("fleet health: %w", err)
	}
	return nil
}

// startCatalogServer starts the PostgreSQL 15 server the catalogs live in,
// removed at cleanup.
func startCatalogServer(ctx context.Context, cl *cleanups) (*pgtest.Cluster, error) {
	logf("catalog: starting a PostgreSQL 15 server for the catalogs")
	pg, err := pgtest.Create(ctx, "", pgtest.Options{Major: 15, Fsync: true, Conf: []string{"max_connections = 200", "max_wal_size = '4GB'"}})
	if err != nil {
		return nil, err
	}
	cl.add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := pg.Stop(sctx); err != nil {
			logf("%v; killing it", err)
			pg.Kill(sctx)
		}
		if err := pg.Remove(); err != nil {
			logf("%v", err)
		}
	})
	return pg, nil
}

// catalogDatabase creates database name on pg and returns its DSN.
func catalogDatabase(ctx context.Context, pg *pgtest.Cluster, name string) (string, error) {
	if err := pg.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, name), nil
}

// writeCatalogConfig writes a gateway config for the PostgreSQL catalog
// dsn, with data as its data directory and, when store is set, one shared
// fs store there.
func writeCatalogConfig(path, data, dsn, store string) error {
	var w strings.Builder
	fmt.Fprintf(&w, "data: %q\ncatalog:\n  type: postgres\n  postgres:\n    dsn: %q\n", data, dsn)
	if store != "" {
		fmt.Fprintf(&w, "backends:\n  - name: shared\n    type: fs\n    path: %q\n", store)
	}
	return os.WriteFile(path, []byte(w.String()), 0o600)
}

// catalogPushLatency times exec'd wal-push of real segments through one
// gateway on a bbolt catalog and one on a PostgreSQL catalog, alternated.
func (b *bench) catalogPushLatency(ctx context.Context, cl *cleanups, pg *pgtest.Cluster, dir string, cf *catalogFigures) error {
	dsn, err := catalogDatabase(ctx, pg, "walgate_push")
	if err != nil {
		return err
	}
	boltGW, err := startGateway(ctx, b.gatewayBin, filepath.Join(dir, "bolt"), filepath.Join(dir, "bolt.log"))
	if err != nil {
		return err
	}
	cl.add(boltGW.stop)
	pgData := filepath.Join(dir, "pg")
	if err := os.MkdirAll(pgData, 0o700); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "pg.yaml")
	if err := writeCatalogConfig(cfgPath, pgData, dsn, ""); err != nil {
		return err
	}
	pgGW, err := startGateway(ctx, b.gatewayBin, pgData, filepath.Join(dir, "pg.log"), "--config", cfgPath)
	if err != nil {
		return err
	}
	pgGW.config = cfgPath
	cl.add(pgGW.stop)
	keyHex, _, err := newBenchKey()
	if err != nil {
		return err
	}
	var envs [2][]string
	for i, g := range []*gateway{boltGW, pgGW} {
		tok, err := g.addToken(ctx, "bench-catalog")
		if err != nil {
			return err
		}
		envs[i] = benchClientEnv(g.url, tok, keyHex)
	}
	names := filepath.Join(dir, "names")
	if err := os.Mkdir(names, 0o755); err != nil {
		return err
	}
	warm, err := linkSegment(names, &b.segments[0], syntheticName(warmBlock, 0))
	if err != nil {
		return err
	}
	for _, env := range envs {
		if _, err := b.execClient(ctx, env, "wal-push", warm); err != nil {
			return err
		}
	}
	logf("catalog: %d pushes each through a gateway on bbolt and one on PostgreSQL, alternated", cf.pushes)
	for j := range cf.pushes {
		seg := &b.segments[j%len(b.segments)]
		path, err := linkSegment(names, seg, syntheticName(0x20, j))
		if err != nil {
			return err
		}
		for k := range 2 {
			i := (j + k) % 2 // who goes first alternates
			r, err := b.execClient(ctx, envs[i], "wal-push", path)
			if err != nil {
				return err
			}
			if i == 0 {
				cf.pushBolt = append(cf.pushBolt, r.wall)
			} else {
				cf.pushPG = append(cf.pushPG, r.wall)
			}
		}
		if err := os.Remove(path); err != nil {
			return err
		}
	}
	logf("catalog: push median bbolt %s, PostgreSQL %s", fmtDur(cf.pushBolt.median()), fmtDur(cf.pushPG.median()))
	boltGW.stop()
	pgGW.stop()
	return nil
}

// benchClientEnv is the client's environment for pushes to url with
// token: zstd and encryption, the headline configuration.
func benchClientEnv(url, token, keyHex string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"WALGATE_URL=" + url,
		"WALGATE_TOKEN=" + token,
		"WALGATE_COMPRESSION=zstd",
		"WALGATE_ENCRYPTION_KEY=" + keyHex, "WALGATE_ENCRYPTION_KEY_TRANSFORM=hex",
	}
}

// catalogPushRates measures pushes per second through 1, 2 and 3 gateways
// sharing one PostgreSQL catalog and one fs store, cf.pushers concurrent
// pushers spread over the gateways round-robin.
func (b *bench) catalogPushRates(ctx context.Context, pg *pgtest.Cluster, dir string, cf *catalogFigures) error {
	dsn, err := catalogDatabase(ctx, pg, "walgate_rate")
	if err != nil {
		return err
	}
	store := filepath.Join(dir, "rate-store")
	switched, err := makeSwitchedSegment(&b.segments[0], filepath.Join(dir, "switched"))
	if err != nil {
		return err
	}
	keyHex, _, err := newBenchKey()
	if err != nil {
		return err
	}
	for n := 1; n <= 3; n++ {
		var gws []*gateway
		stopAll := func() {
			for _, g := range gws {
				g.stop()
			}
		}
		for i := range n {
			data := filepath.Join(dir, fmt.Sprintf("rate-%d-%d", n, i))
			if err := os.MkdirAll(data, 0o700); err != nil {
				stopAll()
				return err
			}
			cfgPath := filepath.Join(data, "walgate.yaml")
			if err := writeCatalogConfig(cfgPath, data, dsn, store); err != nil {
				stopAll()
				return err
			}
			g, err := startGateway(ctx, b.gatewayBin, data, data+".log", "--config", cfgPath)
			if err != nil {
				stopAll()
				return err
			}
			g.config = cfgPath
			gws = append(gws, g)
		}
		for _, kind := range []string{segmentsSwitched, segmentsReal} {
			segs := b.segments
			if kind == segmentsSwitched {
				segs = []segment{switched}
			}
			r, err := b.pushRate(ctx, gws, fmt.Sprintf("rate-%s-%d", kind, n), keyHex, segs, filepath.Join(dir, fmt.Sprintf("names-%s-%d", kind, n)), cf)
			if err != nil {
				stopAll()
				return err
			}
			r.kind = kind
			cf.rates = append(cf.rates, r)
			logf("catalog: %d gateway(s), %s segments: %d pushes in %s, %.1f/s", n, kind, r.pushes, r.wall.Round(time.Millisecond), r.perSecond())
		}
		stopAll()
	}
	return nil
}

// pushRate runs cf.pushers concurrent pushers of segs to cluster for
// cf.rateTime, pusher p through gws[p%len(gws)], each exec'ing wal-push
// of a new name after the last returned. A failed push fails the run.
func (b *bench) pushRate(ctx context.Context, gws []*gateway, cluster, keyHex string, segs []segment, names string, cf *catalogFigures) (catalogRate, error) {
	r := catalogRate{gateways: len(gws)}
	tok, err := gws[0].addToken(ctx, cluster)
	if err != nil {
		return r, err
	}
	if err := os.Mkdir(names, 0o755); err != nil {
		return r, err
	}
	defer os.RemoveAll(names)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	t0 := time.Now()
	deadline := t0.Add(cf.rateTime)
	for p := range cf.pushers {
		env := benchClientEnv(gws[p%len(gws)].url, tok, keyHex)
		wg.Go(func() {
			for j := 0; time.Now().Before(deadline); j++ {
				// 16 log files of names per pusher: 4,096 pushes.
				path, err := linkSegment(names, &segs[(p+j)%len(segs)], syntheticName(0x100+16*p, j))
				if err == nil {
					start := time.Now()
					var out []byte
					cmd := exec.CommandContext(ctx, b.clientBin, "wal-push", path)
					cmd.Env = env
					if out, err = cmd.CombinedOutput(); err != nil {
						err = fmt.Errorf("wal-push %s through %s: %v: %s", filepath.Base(path), gws[p%len(gws)].url, err, strings.TrimSpace(string(out)))
					}
					d := time.Since(start)
					os.Remove(path)
					mu.Lock()
					if err == nil {
						r.pushes++
						r.latency = append(r.latency, d)
					}
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	r.wall = time.Since(t0)
	return r, firstErr
}

// makeSwitchedSegment writes a segment as PostgreSQL archives one that a
// WAL switch (pg_switch_wal, archive_timeout) ended early: seg's first
// switchedHead bytes, then zeros to the full size.
func makeSwitchedSegment(seg *segment, dir string) (segment, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return segment{}, err
	}
	in, err := os.Open(seg.Path)
	if err != nil {
		return segment{}, err
	}
	defer in.Close()
	path := filepath.Join(dir, seg.Name)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return segment{}, err
	}
	_, err = io.CopyN(out, in, switchedHead)
	if err == nil {
		err = out.Truncate(seg.Size) // the zeros
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return segment{}, err
	}
	return segment{Name: seg.Name, Path: path, Size: seg.Size, Phase: segmentsSwitched}, nil
}
