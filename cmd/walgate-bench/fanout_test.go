package main

import (
	"strings"
	"testing"
	"time"
)

// The fan-out report shows CPU per object for every run, compares the
// gateway's CPU with the SDK's and says whether more write slots helped.
func TestFanoutMarkdown(t *testing.T) {
	run := func(name string, mbPerS float64, gw, store, pushers time.Duration, baseline bool) fanoutRun {
		r := fanoutRun{name: name, streams: 100, objects: 400, bytes: 400 * fanoutObject, gatewayCPU: gw, storeCPU: store, pusherCPU: pushers, baseline: baseline}
		r.elapsed = time.Duration(float64(r.bytes) / (mbPerS * 1e6) * float64(time.Second))
		return r
	}
	ff := &fanoutFigures{objSize: fanoutObject, perConn: fanoutPerConn, runs: []fanoutRun{
		run("fs (baseline)", 300, 2*time.Second, 0, time.Second, false),
		run("s3", 81, 3*time.Second, 10*time.Second, 2*time.Second, false),
		run("S3 SDK alone", 100, 0, 12*time.Second, 2*time.Second, true),
		run("driver alone", 120, 0, 10*time.Second, time.Second, true),
		run(fanoutSlotsRun, 100, 3*time.Second, 10*time.Second, 2*time.Second, false),
	}}
	md := ff.markdown()
	for _, want := range []string{
		"| s3 | 100 | 400 | 0 | 81 | 38.6 | 0.27× | 7.5 ms / 25.0 ms / 5.0 ms |",
		"| S3 SDK alone | 100 | 400 | 0 | 100 | 47.7 | 0.33× | - / 30.0 ms / 5.0 ms | (no gateway) |",
		"| fs (baseline) | 100 | 400 | 0 | 300 | 143.1 | 1.00× | 5.0 ms / - / 2.5 ms |",
		"0.81x, **PASS**",
		"37.5 ms through the gateway, 35.0 ms with the SDK alone (1.07x)",
		"reaches 1.23x the rate with the default 32: the write slots limit it.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in:\n%s", want, md)
		}
	}
	ff.runs[4] = run(fanoutSlotsRun, 85, 3*time.Second, 10*time.Second, 2*time.Second, false)
	if md := ff.markdown(); !strings.Contains(md, "reaches 1.05x the rate with the default 32: the write slots are not what limits it.") {
		t.Errorf("slots verdict:\n%s", md)
	}
}
