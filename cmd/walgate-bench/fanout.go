package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walgate/walgate/backends/backendtest/emulators"
	"github.com/walgate/walgate/gateway/admin"
	"github.com/walgate/walgate/gateway/protocol"
)

// fanoutRun is one configuration under concurrent WAL pushes.
type fanoutRun struct {
	name     string
	streams  int
	objects  int
	bytes    int64
	elapsed  time.Duration
	failed   int
	rssKiB   int64         // the gateway's VmHWM
	maxLag   time.Duration // the oldest pending copy's age, at worst, during the load
	drain    time.Duration // after the load, until nothing is pending
	replicas bool
	baseline bool // in process, without a gateway (fanout_sdk.go)
	// CPU time (user + system) during the load: the gateway's, SeaweedFS's
	// (0: not measured) and this process's, which makes the pushes.
	gatewayCPU, storeCPU, pusherCPU time.Duration
}

type fanoutFigures struct {
	objSize int
	perConn int
	runs    []fanoutRun
}

const (
	fanoutObject   = 2 << 20 // a zstd-compressed, encrypted 16 MiB segment is 1-3 MiB
	fanoutPerConn  = 4       // pushes per stream
	targetFanoutKB = 256 << 10
	fanoutSlotsRun = "s3, max_writes 100 (as many write slots as streams)"
	fanoutBegin    = "<!-- fanout: begin -->"
	fanoutEnd      = "<!-- fanout: end -->"
)

// measureFanout starts SeaweedFS, fake-gcs-server and Azurite, and for
// each configuration a gateway (the binary) over them, and times
// concurrent WAL pushes made as the client makes them (PUT with size,
// SHA-256 and identity headers) of incompressible 2 MiB bodies.
func (b *bench) measureFanout(ctx context.Context, cl *cleanups) error {
	ff := &fanoutFigures{objSize: fanoutObject, perConn: fanoutPerConn}
	b.fanout = ff
	logf("fan-out: starting SeaweedFS, fake-gcs-server and Azurite")
	s3srv, err := emulators.StartSeaweedFS()
	if err != nil {
		return err
	}
	cl.add(func() { s3srv.Stop() })
	gcsSrv, err := emulators.StartFakeGCS()
	if err != nil {
		return err
	}
	cl.add(func() { gcsSrv.Stop() })
	azSrv, err := emulators.StartAzurite()
	if err != nil {
		return err
	}
	cl.add(func() { azSrv.Stop() })
	const bucket = "walgate-bench"
	if err := s3srv.NewBucket(ctx, bucket); err != nil {
		return err
	}
	if err := gcsSrv.NewBucket(ctx, bucket); err != nil {
		return err
	}
	if err := azSrv.NewContainer(ctx, bucket); err != nil {
		return err
	}
	stores := func(prefix string) map[string]string {
		return map[string]string{
			"fs":    fmt.Sprintf("  - {name: fs, type: fs, path: %q}\n", filepath.Join(b.scratch, "fanout", prefix, "fs")),
			"s3":    fmt.Sprintf("  - {name: s3, type: s3, s3: {bucket: %s, prefix: %s, endpoint: %q, path_style: true, region: %s, access_key_id: %s, secret_access_key: %s}}\n", bucket, prefix, s3srv.Endpoint, s3srv.Region, s3srv.AccessKey, s3srv.SecretKey),
			"gcs":   fmt.Sprintf("  - {name: gcs, type: gcs, gcs: {bucket: %s, prefix: %s, endpoint: %q, anonymous: true}}\n", bucket, prefix, gcsSrv.Endpoint),
			"azure": fmt.Sprintf("  - {name: azure, type: azure, azure: {account: %s, account_key: %q, endpoint: %q, container: %s, prefix: %s}}\n", azSrv.Account, azSrv.AccountKey, azSrv.Endpoint, bucket, prefix),
		}
	}
	three := []string{"s3", "gcs", "azure"}
	for i, sc := range []struct {
		name      string
		backends  []string
		ack       string
		streams   int
		maxWrites int // 0: the default
	}{
		{"fs (baseline)", []string{"fs"}, "primary", 100, 0},
		{"s3", []string{"s3"}, "primary", 100, 0},
		// The same with as many write slots as streams: whether the
		// default 32 slots are what limits the rate.
		{fanoutSlotsRun, []string{"s3"}, "primary", 100, 100},
		{"s3 + gcs + azure, ack primary", three, "primary", 100, 0},
		{"s3 + gcs + azure, ack all", three, "all", 100, 0},
		{"s3 + gcs + azure, ack primary", three, "primary", 200, 0},
	} {
		prefix := fmt.Sprintf("run%d", i)
		data := filepath.Join(b.scratch, "fanout", prefix)
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		var conf strings.Builder
		fmt.Fprintf(&conf, "data: %s\nbackends:\n", data)
		for _, be := range sc.backends {
			line := stores(prefix)[be]
			if sc.maxWrites > 0 {
				line = strings.Replace(line, "type: "+be+",", fmt.Sprintf("type: %s, max_writes: %d,", be, sc.maxWrites), 1)
			}
			conf.WriteString(line)
		}
		fmt.Fprintf(&conf, "groups:\n  - {name: bench, clusters: ['*'], backends: [%s], ack: %s}\n", strings.Join(sc.backends, ", "), sc.ack)
		confPath := filepath.Join(data, "walgate.yaml")
		if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
			return err
		}
		storePid := 0 // SeaweedFS's CPU only where it is written to
		if slices.Contains(sc.backends, "s3") {
			storePid = s3srv.Pid()
		}
		run, err := b.fanoutRun(ctx, confPath, data, sc.name, sc.streams, len(sc.backends) > 1, storePid)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		logf("fan-out: %s, %d streams: %.0f MB/s, %d failed, gateway peak RSS %d MiB, drain %s",
			run.name, run.streams, mbps(run.bytes, run.elapsed), run.failed, run.rssKiB>>10, run.drain.Round(time.Millisecond))
		ff.runs = append(ff.runs, run)
		if sc.name == "s3" {
			logf("fan-out: the same load straight into SeaweedFS through the AWS SDK and through walgate's s3 driver, in this process")
			base, err := sdkBaselines(ctx, s3srv, bucket, sc.streams)
			if err != nil {
				return fmt.Errorf("S3 baselines: %w", err)
			}
			for _, r := range base {
				logf("fan-out: %s: %.0f MB/s, %d failed", r.name, mbps(r.bytes, r.elapsed), r.failed)
			}
			ff.runs = append(ff.runs, base...)
		}
	}
	return nil
}

func (b *bench) fanoutRun(ctx context.Context, confPath, data, name string, streams int, replicas bool, storePid int) (fanoutRun, error) {
	run := fanoutRun{name: name, streams: streams, replicas: replicas}
	g, err := startGateway(ctx, b.gatewayBin, data, filepath.Join(data, "gateway.log"), "--config", confPath)
	if err != nil {
		return run, err
	}
	defer g.stop()
	token, err := g.addToken(ctx, "bench")
	if err != nil {
		return run, err
	}
	body := make([]byte, fanoutObject)
	if _, err := rand.Read(body); err != nil {
		return run, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}, Timeout: 5 * time.Minute}

	// The replication lag seen during the load, from the admin socket.
	stopLag := make(chan struct{})
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		for {
			select {
			case <-stopLag:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if lag, _ := oldestPending(data); lag > run.maxLag {
				run.maxLag = lag
			}
		}
	}()

	var next atomic.Int64
	var failed atomic.Int64
	var stored atomic.Int64
	total := streams * fanoutPerConn
	cpu0 := sampleFanoutCPU(g.cmd.Process.Pid, storePid)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			buf := make([]byte, fanoutObject)
			copy(buf, body)
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				// A distinct object per push: its number in the first bytes.
				copy(buf, fmt.Sprintf("%016x", i))
				seg := fmt.Sprintf("00000001%016X", i)
				sum := sha256.Sum256(buf)
				hexsum := hex.EncodeToString(sum[:])
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, g.url+protocol.WALPath("bench", seg), bytes.NewReader(buf))
				req.ContentLength = int64(len(buf))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set(protocol.HeaderContentSHA256, hexsum)
				req.Header.Set(protocol.HeaderCompression, "zstd")
				req.Header.Set(protocol.HeaderEncryption, protocol.EncryptionLibsodium)
				req.Header.Set(protocol.HeaderContentID, "hmac-sha256:"+hexsum)
				req.Header.Set(protocol.HeaderPlainSize, "16777216")
				resp, err := hc.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
					continue
				}
				stored.Add(int64(len(buf)))
			}
		})
	}
	wg.Wait()
	run.elapsed = time.Since(t0)
	run.gatewayCPU, run.storeCPU, run.pusherCPU = sampleFanoutCPU(g.cmd.Process.Pid, storePid).since(cpu0)
	close(stopLag)
	<-lagDone
	run.objects, run.bytes, run.failed = total-int(failed.Load()), stored.Load(), int(failed.Load())
	// Then until every copy is made.
	t1 := time.Now()
	for replicas {
		lag, err := oldestPending(data)
		if err != nil {
			return run, err
		}
		if lag == 0 {
			break
		}
		if time.Since(t1) > 10*time.Minute {
			return run, fmt.Errorf("replication did not drain in 10 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.drain = time.Since(t1)
	st, err := procStatus(g.cmd.Process.Pid, "VmHWM")
	if err != nil {
		return run, err
	}
	run.rssKiB = st["VmHWM"]
	return run, nil
}

// fanoutCPU is the CPU time used so far by the gateway (pid 0: none),
// SeaweedFS (pid 0: not measured) and this process.
type fanoutCPU struct{ gateway, store, self time.Duration }

func sampleFanoutCPU(gatewayPid, storePid int) fanoutCPU {
	var c fanoutCPU
	if gatewayPid > 0 {
		c.gateway, _ = procCPU(gatewayPid)
	}
	if storePid > 0 {
		c.store, _ = procCPU(storePid)
	}
	c.self = selfCPU()
	return c
}

// since returns the CPU time each used after c0.
func (c fanoutCPU) since(c0 fanoutCPU) (gateway, store, self time.Duration) {
	return c.gateway - c0.gateway, c.store - c0.store, c.self - c0.self
}

// oldestPending asks the gateway for its backends' queues and returns the
// age of the oldest pending copy (0: none).
func oldestPending(data string) (time.Duration, error) {
	a, err := admin.Dial(data)
	if err != nil {
		return 0, err
	}
	bs, err := a.Backends()
	if err != nil {
		return 0, err
	}
	var lag time.Duration
	for _, b := range bs {
		if b.PendingObjects > 0 {
			lag = max(lag, time.Since(b.OldestPending), time.Nanosecond)
		}
	}
	return lag, nil
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

// cpuTotal is the CPU time of gateway, SeaweedFS and pushers during the
// load (0 when SeaweedFS was not measured).
func (r fanoutRun) cpuTotal() time.Duration {
	if r.storeCPU <= 0 {
		return 0
	}
	return r.gatewayCPU + r.storeCPU + r.pusherCPU
}

// cpuPerObject prints the gateway's, SeaweedFS's and the pushers' CPU time
// per acknowledged object ("-" where not measured).
func (r fanoutRun) cpuPerObject() string {
	if r.objects == 0 {
		return "-"
	}
	part := func(d time.Duration, measured bool) string {
		if !measured {
			return "-"
		}
		return perObject(d, r.objects)
	}
	return part(r.gatewayCPU, !r.baseline) + " / " + part(r.storeCPU, r.storeCPU > 0) + " / " + part(r.pusherCPU, true)
}

// perObject prints d over n objects in milliseconds.
func perObject(d time.Duration, n int) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000/float64(n))
}

func (ff *fanoutFigures) markdown() string {
	var w strings.Builder
	w.WriteString(fanoutBegin + "\n## Fan-out: concurrent WAL pushes into S3 and into three stores\n\n")
	fmt.Fprintf(&w, "Command: `go run ./cmd/walgate-bench -sections fanout -out docs/benchmarks.md` (part of `make bench`). Each configuration gets its own gateway (`bin/walgate serve --config`) over the emulators the tests use, all on this machine's 2 cores with the pushers: SeaweedFS (`weed mini`) for S3, fake-gcs-server, Azurite. Every stream pushes %d WAL objects of %d MiB of random bytes (what the client sends for a zstd-compressed, encrypted segment) with the client's headers, one after another, all streams at once; every push stores a new object. MB/s counts acknowledged bytes over the wall time of the whole load. The fs run is the same-run baseline: the same gateway over a local directory. *CPU per object* is user + system time during the load over the objects acknowledged: the gateway's (/proc/PID/stat), SeaweedFS's (its one process, which also takes the replicator's reads in the three-store runs) and this program's, which makes the pushes (hashing each body as the client does, and sending it) or, in the baselines, the PUTs themselves.\n\n", ff.perConn, ff.objSize>>20)
	w.WriteString("| configuration | streams | acknowledged | failed | MB/s | objects/s | vs fs | CPU per object: gateway / SeaweedFS / pushers | gateway peak RSS | worst replication lag during the load | replicas caught up after the load |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	var base float64
	for _, r := range ff.runs {
		rate := mbps(r.bytes, r.elapsed)
		if base == 0 {
			base = rate
		}
		lag, drain, rss := "-", "-", fmt.Sprintf("%d MiB", r.rssKiB>>10)
		if r.baseline {
			rss = "(no gateway)"
		}
		if r.replicas {
			lag, drain = r.maxLag.Round(100*time.Millisecond).String(), r.drain.Round(100*time.Millisecond).String()
		}
		fmt.Fprintf(&w, "| %s | %d | %d | %d | %.0f | %.1f | %.2f× | %s | %s | %s | %s |\n", r.name, r.streams, r.objects, r.failed, rate,
			float64(r.objects)/r.elapsed.Seconds(), rate/base, r.cpuPerObject(), rss, lag, drain)
	}
	var fs, gw, sdk, drv, slots float64
	var gwRun, sdkRun fanoutRun
	for _, r := range ff.runs {
		switch {
		case r.name == "fs (baseline)":
			fs = mbps(r.bytes, r.elapsed)
		case r.name == "s3":
			gw, gwRun = mbps(r.bytes, r.elapsed), r
		case r.name == fanoutSlotsRun:
			slots = mbps(r.bytes, r.elapsed)
		case r.baseline && sdk == 0:
			sdk, sdkRun = mbps(r.bytes, r.elapsed), r
		case r.baseline && drv == 0:
			drv = mbps(r.bytes, r.elapsed)
		}
	}
	if gw > 0 && sdk > 0 {
		fmt.Fprintf(&w, "\nTarget: the s3 backend through the gateway at least 0.8x the SDK-only baseline at the same concurrency: %sx, **%s**.", againstTarget(gw/sdk, 0.8), passFail(gw/sdk >= 0.8))
		if fs > 0 && drv > 0 {
			// Where the s3 path loses against fs: in the store, or in walgate.
			fmt.Fprintf(&w, " The SDK alone reaches %.2fx the fs run's rate and walgate's driver alone %.2fx the SDK's: ", sdk/fs, drv/sdk)
			switch {
			case gw/sdk < 0.8:
				w.WriteString("the gateway's s3 path is slower than the same PUTs sent straight to SeaweedFS.")
			case sdk/fs < 0.8:
				w.WriteString("what the s3 run loses against fs is lost in SeaweedFS itself, which shares the cores.")
			default:
				w.WriteString("the s3 path keeps pace with both.")
			}
		}
		if g, k := gwRun.cpuTotal(), sdkRun.cpuTotal(); g > 0 && k > 0 {
			fmt.Fprintf(&w, " CPU per object, gateway + SeaweedFS + pushers: %s through the gateway, %s with the SDK alone (%.2fx); at the same CPU per object a rate below the SDK's is time spent waiting, not computing.",
				perObject(g, gwRun.objects), perObject(k, sdkRun.objects), (float64(g)/float64(gwRun.objects))/(float64(k)/float64(sdkRun.objects)))
		}
		if slots > 0 {
			fmt.Fprintf(&w, " With as many write slots as streams (`max_writes: 100`) the gateway's s3 path reaches %.2fx the rate with the default 32: ", slots/gw)
			if slots/gw >= 1.15 {
				w.WriteString("the write slots limit it.")
			} else {
				w.WriteString("the write slots are not what limits it.")
			}
		}
	}
	for _, r := range ff.runs {
		if r.streams == 200 {
			verdict := "pass"
			if r.rssKiB > targetFanoutKB {
				verdict = "FAIL"
			}
			fmt.Fprintf(&w, "\nTarget: gateway peak RSS under 256 MB with 200 concurrent streams: %d MiB, **%s**.", r.rssKiB>>10, verdict)
		}
	}
	w.WriteString(" With `ack: primary` a push is acknowledged once S3 holds it, and the replicator copies to GCS and Azure behind it (4 copies at a time per store); with `ack: all` every push is teed into the three stores before its answer. Each cloud store takes at most `max_writes` (default 32) uploads at once, pushes and copies together; the rest wait their turn, which is what bounds the memory GCS chunks and Azure blocks take. Lag is the age of the oldest queued copy, sampled every 200 ms from the admin socket.\n" + fanoutEnd + "\n")
	return w.String()
}
