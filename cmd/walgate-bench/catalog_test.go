package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/pgcatalog"
)

// The COPY writes every record once, the rows the catalog writes itself,
// in the order a fleet's pushes write them.
func TestWALRowsForCOPY(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rows := newWALRows(3, 4, now)
	var got [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 {
		t.Fatalf("%d rows, want 12", len(got))
	}
	for i, row := range got {
		c, s := i%3, i/3+1 // every cluster's first segment, then every cluster's second, ...
		name := planClusterName(c)
		obj := planWALObject(name, s, 4, now)
		want, err := pgcatalog.WALRow(name, obj)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(row, want) {
			t.Fatalf("row %d: %v, want %v", i, row, want)
		}
		if len(row) != len(pgcatalog.WALColumns) {
			t.Fatalf("row %d has %d values for columns %v", i, len(row), pgcatalog.WALColumns)
		}
		var brief index.WALBrief
		if err := index.DecodeBrief(row[3].([]byte), &brief); err != nil || brief.Key != obj.Key || brief.Size != obj.Size || !brief.StoredAt.Equal(obj.StoredAt) {
			t.Fatalf("row %d: brief %+v (%v) of %+v", i, brief, err, obj)
		}
	}
	if rows.Next() {
		t.Fatal("Next after the last row")
	}
}

func testCatalogFigures() *catalogFigures {
	ms := func(v ...int) samples {
		var s samples
		for _, x := range v {
			s = append(s, time.Duration(x)*time.Millisecond)
		}
		return s
	}
	return &catalogFigures{
		postgres: "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu",
		pushes:   3, pushBolt: ms(100, 100, 100), pushPG: ms(120, 120, 120),
		pushers: 8, rateTime: 20 * time.Second,
		rates: []catalogRate{
			{kind: segmentsSwitched, gateways: 1, pushes: 100, wall: 10 * time.Second, latency: ms(800)},
			{kind: segmentsSwitched, gateways: 2, pushes: 150, wall: 10 * time.Second, latency: ms(500)},
			{kind: segmentsReal, gateways: 1, pushes: 40, wall: 10 * time.Second, latency: ms(2000)},
		},
		plan:      &catalogPlan{clusters: 100, perCluster: 100_000, scanned: 10_000_000, cold: 8 * time.Second, warm: 12 * time.Second},
		fleet:     &fleetFigures{clusters: 1000, segments: 200, metrics: ms(40), page: ms(150)},
		fleetBolt: &fleetFigures{clusters: 1000, segments: 200, metrics: ms(20), page: ms(100)},
	}
}

// Every target reads pass or FAIL by its own rule, with its ratio.
func TestCatalogMarkdown(t *testing.T) {
	cf := testCatalogFigures()
	md := cf.markdown()
	for _, want := range []string{
		catalogBegin, catalogEnd,
		"| PostgreSQL | 120.0 ms | 120.0 ms | 1.20x / 1.20x | pass |",
		"| switched | 2 | 150 | 15.0 | 1.50x | 500.0 ms | 500.0 ms |",
		"| real | 1 | 40 | 4.0 | 1.00x |",
		"| 8.00 s | 0.80 s | pass |",      // cold plan, 10 million records
		"| 12.00 s | 1.20 s | **FAIL** |", // warm plan
		"| GET /metrics | 40.0 ms | 40.0 ms | 0 KiB | 20.0 ms | 2.00x | pass |",
		"| GET /ui/ (fleet page, admin token) | 150.0 ms | 150.0 ms | 0 KiB | 100.0 ms | 1.50x | **FAIL** |",
		"10,000,000",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Over 1.25x at p90 alone fails the push target.
	cf.pushPG = append(cf.pushPG, 200*time.Millisecond)
	cf.pushBolt = append(cf.pushBolt, 100*time.Millisecond)
	if md := cf.markdown(); !strings.Contains(md, "| 1.20x / 2.00x | **FAIL** |") {
		t.Errorf("p90 at 2x passed:\n%s", md)
	}
	// A smaller catalog is judged scaled to 10 million records.
	cf.plan = &catalogPlan{clusters: 100, perCluster: 2000, scanned: 200_000, cold: 300 * time.Millisecond, warm: 100 * time.Millisecond}
	if md := cf.markdown(); !strings.Contains(md, "**FAIL** (15.0 s scaled to 10 million)") || !strings.Contains(md, "pass (5.0 s scaled to 10 million)") {
		t.Errorf("scaled verdicts:\n%s", md)
	}
	// Spliced into docs/benchmarks.md twice, the section is there once.
	doc := "# Benchmarks\n\n## Method\n"
	doc = spliceSection(spliceSection(doc, md, catalogBegin, catalogEnd), md, catalogBegin, catalogEnd)
	if strings.Count(doc, catalogBegin) != 1 || !strings.HasSuffix(doc, "## Method\n") {
		t.Errorf("spliced twice:\n%s", doc)
	}
}

// The section's in-process parts at tiny sizes, on a real PostgreSQL 15:
// the plan over COPY'd records with PostgreSQL restarted cold, and the
// fleet pages served from PostgreSQL.
func TestCatalogSectionSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	if os.Geteuid() != 0 {
		t.Fatal("run as root: the PostgreSQL server runs as the postgres user")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cl cleanups
	defer cl.run()
	pg, err := startCatalogServer(ctx, &cl)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plan, err := measureCatalogPlan(ctx, pg, filepath.Join(dir, "plan"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if plan.scanned != 1000 || plan.cold <= 0 || plan.warm <= 0 || plan.tableBytes == 0 {
		t.Fatalf("plan figures %+v", plan)
	}
	if plan.resident > 0.05 {
		t.Errorf("%.1f%% of the data directory still resident after eviction", 100*plan.resident)
	}
	dsn, err := catalogDatabase(ctx, pg, "walgate_fleet")
	if err != nil {
		t.Fatal(err)
	}
	ff, err := measureFleetOn(ctx, &cl, filepath.Join(dir, "fleet"), 5, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if len(ff.metrics) != fleetRuns || len(ff.page) != fleetRuns || ff.pageBytes == 0 || ff.metricsBytes == 0 {
		t.Fatalf("fleet figures %+v", ff)
	}
}
