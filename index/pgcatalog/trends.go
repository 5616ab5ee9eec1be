package pgcatalog

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

// trendHour is the start of the hour of t in UTC, as the bbolt catalog
// keys it (times before 1970 map to 1970).
func trendHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	return h
}

// AddTrends adds counts, per cluster and hour (truncated to the hour), to
// the stored buckets in one transaction, and drops every bucket that
// started more than index.TrendHours hours before now. Gateways adding to
// the same bucket at once each add their counts: the row is locked
// between reading and writing it, and rows are taken in one order
// (cluster, hour) so that two writers never deadlock.
func (c *Catalog) AddTrends(counts map[string]map[time.Time]index.TrendCounts, now time.Time) error {
	oldest := trendHour(now.UTC().Truncate(time.Hour).Add(-index.TrendHours * time.Hour))
	type bucket struct {
		cluster string
		hour    time.Time
	}
	merged := map[bucket]index.TrendCounts{}
	for cluster, hours := range counts {
		for hour, add := range hours {
			k := bucket{cluster, trendHour(hour)}
			if k.hour.Before(oldest) {
				continue // pruned by this very write
			}
			cur := merged[k]
			cur.Add(add)
			merged[k] = cur
		}
	}
	keys := slices.SortedFunc(maps.Keys(merged), func(a, b bucket) int {
		return cmp.Or(strings.Compare(a.cluster, b.cluster), a.hour.Compare(b.hour))
	})
	return c.tx("adding trends", func(ctx context.Context, tx pgx.Tx) error {
		for _, k := range keys {
			cluster, h, add := k.cluster, k.hour, merged[k]
			if _, err := tx.Exec(ctx, `INSERT INTO walgate.trends (cluster, hour, record) VALUES ($1, $2, $3)
				ON CONFLICT (cluster, hour) DO NOTHING`, cluster, h, []byte(`{}`)); err != nil {
				return err
			}
			var rec []byte
			if err := tx.QueryRow(ctx, `SELECT record FROM walgate.trends WHERE cluster = $1 AND hour = $2 FOR UPDATE`,
				cluster, h).Scan(&rec); err != nil {
				return err
			}
			var cur index.TrendCounts
			if err := decode(rec, &cur); err != nil {
				return err
			}
			cur.Add(add)
			data, err := json.Marshal(cur)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE walgate.trends SET record = $3 WHERE cluster = $1 AND hour = $2`, cluster, h, data); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM walgate.trends WHERE hour < $1`, oldest)
		return err
	})
}

// Trends returns a cluster's hourly buckets that start at or after since,
// oldest first; hours without activity are absent.
func (c *Catalog) Trends(cluster string, since time.Time) ([]index.TrendBucket, error) {
	var out []index.TrendBucket
	err := c.scan("trends of cluster "+cluster, `SELECT hour, record FROM walgate.trends WHERE cluster = $1 AND hour >= $2 ORDER BY hour`,
		[]any{cluster, trendHour(since)}, func(rows pgx.Rows) error {
			var tb index.TrendBucket
			var rec []byte
			if err := rows.Scan(&tb.Hour, &rec); err != nil {
				return err
			}
			tb.Hour = tb.Hour.UTC()
			if err := decode(rec, &tb.TrendCounts); err != nil {
				return err
			}
			out = append(out, tb)
			return nil
		})
	return out, err
}
