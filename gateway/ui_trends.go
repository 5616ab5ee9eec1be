package gateway

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/walgate/walgate/index"
)

// trendFlushEvery is how often counted activity is written to the
// catalog's trend buckets (and before each dashboard page that shows it,
// and at shutdown).
const trendFlushEvery = time.Minute

// trendRecorder counts each cluster's activity per hour in memory and
// adds it to the catalog's trends now and then: one small write
// transaction a minute instead of one per request. Only clusters in the
// catalog are written, so request paths naming unknown clusters cannot
// grow it.
type trendRecorder struct {
	catalog index.Interface
	log     *slog.Logger

	mu        sync.Mutex
	pending   map[string]map[time.Time]index.TrendCounts
	lastFlush time.Time

	flushMu sync.Mutex // one flush at a time
}

func newTrendRecorder(cat index.Interface, log *slog.Logger) *trendRecorder {
	return &trendRecorder{catalog: cat, log: log, pending: map[string]map[time.Time]index.TrendCounts{}, lastFlush: time.Now()}
}

// add counts c for cluster in the hour of at; a minute after the last
// flush it starts one in the background.
func (r *trendRecorder) add(cluster string, at time.Time, c index.TrendCounts) {
	hour := at.UTC().Truncate(time.Hour)
	r.mu.Lock()
	hours := r.pending[cluster]
	if hours == nil {
		hours = map[time.Time]index.TrendCounts{}
		r.pending[cluster] = hours
	}
	cur := hours[hour]
	cur.Add(c)
	hours[hour] = cur
	due := at.Sub(r.lastFlush) >= trendFlushEvery
	if due {
		r.lastFlush = at
	}
	r.mu.Unlock()
	if due {
		go func() {
			if err := r.flush(time.Now()); err != nil {
				r.log.Warn("trends: writing the hourly counts", "err", err)
			}
		}()
	}
}

// flush writes the counts gathered so far to the catalog. Counts that
// cannot be written are dropped (they are statistics) and the error
// returned.
func (r *trendRecorder) flush(now time.Time) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	pending := r.pending
	r.pending = map[string]map[time.Time]index.TrendCounts{}
	r.lastFlush = now
	r.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	clusters, err := r.catalog.Clusters()
	if err != nil {
		return err
	}
	for name := range pending {
		if !slices.ContainsFunc(clusters, func(c index.Cluster) bool { return c.Name == name }) {
			delete(pending, name)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	if err := r.catalog.AddTrends(pending, now); err != nil {
		return fmt.Errorf("%d clusters' counts lost: %w", len(pending), err)
	}
	return nil
}

// uiTrend is one cluster's last 7 days for the cluster page: three bar
// charts (WAL bytes per hour, backups, request errors) in SVG coordinates.
type uiTrend struct {
	Width, Height int
	AxisY         int // the time axis under the last band
	Series        []uiTrendSeries
	Ticks         []uiTick
	Empty         bool
}

type uiTrendSeries struct {
	Title string // e.g. "WAL per hour"
	Max   string // the largest hour, formatted
	Total string
	Y     int // top of this series' band
	Bars  []uiTrendBar
}

type uiTrendBar struct {
	X, Y, W, H float64
	Title      string
}

// buildTrend lays out buckets (oldest first) over the 7 days before now.
func buildTrend(buckets []index.TrendBucket, now time.Time) uiTrend {
	const left, right, band, gap = 10.0, 950.0, 46, 30
	tr := uiTrend{Width: 960, Empty: len(buckets) == 0}
	end := now.UTC().Truncate(time.Hour).Add(time.Hour)
	from := end.Add(-index.TrendHours * time.Hour)
	slot := (right - left) / index.TrendHours
	x := func(t time.Time) float64 { return left + slot*t.Sub(from).Hours() }
	type metric struct {
		title  string
		value  func(index.TrendCounts) int64
		format func(int64) string
	}
	count := func(n int64) string { return fmt.Sprint(n) }
	metrics := []metric{
		{"WAL archived per hour", func(c index.TrendCounts) int64 { return c.WALBytes }, func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }},
		{"backups committed per hour", func(c index.TrendCounts) int64 { return c.Backups }, count},
		{"request errors per hour", func(c index.TrendCounts) int64 { return c.Errors }, count},
	}
	y := 18
	for _, m := range metrics {
		s := uiTrendSeries{Title: m.title, Y: y}
		var peak, total int64
		for _, b := range buckets {
			v := m.value(b.TrendCounts)
			peak, total = max(peak, v), total+v
		}
		s.Max, s.Total = m.format(peak), m.format(total)
		for _, b := range buckets {
			v := m.value(b.TrendCounts)
			if v == 0 || b.Hour.Before(from) {
				continue
			}
			h := max(float64(band)*float64(v)/float64(peak), 1.5)
			s.Bars = append(s.Bars, uiTrendBar{X: x(b.Hour), Y: float64(y+band) - h, W: max(slot-0.5, 1), H: h,
				Title: b.Hour.Format("Mon 01-02 15:00") + " UTC: " + m.format(v)})
		}
		tr.Series = append(tr.Series, s)
		y += band + gap
	}
	tr.AxisY = y - gap + 2
	tr.Height = tr.AxisY + 22
	for d := 0; d <= 7; d++ {
		t := from.Add(time.Duration(d) * 24 * time.Hour)
		anchor := "middle"
		switch d {
		case 0:
			anchor = "start"
		case 7:
			anchor = "end"
		}
		tr.Ticks = append(tr.Ticks, uiTick{X: x(t), Label: t.Format("Mon 01-02"), Anchor: anchor})
	}
	return tr
}
