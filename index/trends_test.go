package index

import (
	"testing"
	"time"
)

// Trends add up per cluster and hour, and stay bounded: a cluster keeps
// at most TrendHours+1 hourly buckets, a cluster without recent activity
// loses its buckets altogether.
func TestTrendsBoundedHourly(t *testing.T) {
	c, _ := openTest(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// Ten days of activity, one write an hour with counts for each quarter
	// hour; "gone" only on day 1.
	for h := range 10 * 24 {
		add := map[string]map[time.Time]TrendCounts{"db": {}}
		var now time.Time
		for q := range 4 {
			now = start.Add(time.Duration(h)*time.Hour + time.Duration(q)*15*time.Minute)
			add["db"][now] = TrendCounts{WALBytes: 100, WALFiles: 1, Requests: 2, Errors: int64(q % 2)}
		}
		if h < 24 {
			add["gone"] = map[time.Time]TrendCounts{now: {Backups: 1}}
		}
		if err := c.AddTrends(add, now); err != nil {
			t.Fatal(err)
		}
	}
	end := start.Add(10*24*time.Hour - 15*time.Minute)
	all, err := c.Trends("db", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != TrendHours+1 {
		t.Fatalf("%d hourly buckets kept, want %d", len(all), TrendHours+1)
	}
	if first := all[0].Hour; !first.Equal(end.Truncate(time.Hour).Add(-TrendHours * time.Hour)) {
		t.Errorf("oldest bucket %v", first)
	}
	for _, b := range all {
		if b.Hour.Minute() != 0 || b.WALBytes != 400 || b.WALFiles != 4 || b.Requests != 8 || b.Errors != 2 || b.Backups != 0 {
			t.Fatalf("bucket %v: %+v, want four quarter hours added up", b.Hour, b.TrendCounts)
		}
	}
	recent, err := c.Trends("db", end.Add(-3*time.Hour))
	if err != nil || len(recent) != 4 {
		t.Fatalf("since 3 hours ago: %d buckets (%v), want 4", len(recent), err)
	}
	gone, err := c.Trends("gone", time.Time{})
	if err != nil || len(gone) != 0 {
		t.Fatalf("a cluster idle for 9 days keeps %d buckets (%v)", len(gone), err)
	}
	if none, err := c.Trends("never", time.Time{}); err != nil || none != nil {
		t.Fatalf("unknown cluster: %v %v", none, err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}
