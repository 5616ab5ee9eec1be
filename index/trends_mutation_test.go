package index

import (
	"testing"
	"time"
)

// After a pause longer than the trends' span, one write drops every
// bucket that fell out of it at once, not one a write.
func TestTrendsAfterAPause(t *testing.T) {
	c, _ := openTest(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for h := range 5 {
		at := start.Add(time.Duration(h) * time.Hour)
		if err := c.AddTrends(map[string]map[time.Time]TrendCounts{"db": {at: {WALFiles: 1}}}, at); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.Trends("db", time.Time{}); err != nil || len(got) != 5 {
		t.Fatalf("before the pause: %d buckets (%v), want 5", len(got), err)
	}
	later := start.Add((TrendHours + 10) * time.Hour)
	if err := c.AddTrends(map[string]map[time.Time]TrendCounts{"db": {later: {WALFiles: 2}}}, later); err != nil {
		t.Fatal(err)
	}
	got, err := c.Trends("db", time.Time{})
	if err != nil || len(got) != 1 || !got[0].Hour.Equal(later) || got[0].WALFiles != 2 {
		t.Fatalf("after the pause: %+v (%v), want only the hour of %v", got, err, later)
	}
}
