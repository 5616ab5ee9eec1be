package index

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Trends are per-cluster activity counts in hourly buckets for the last
// TrendHours hours, for the dashboard. They are statistics, not archive
// state: a catalog rebuilt from the stores starts them again from empty.
// Layout: trends/<cluster>/<hour as 8-byte big-endian Unix seconds> ->
// JSON TrendCounts; buckets older than TrendHours are pruned on every
// write, so a cluster holds at most TrendHours+1 of them.

var bucketTrends = []byte("trends")

// TrendHours is how many hourly buckets a cluster keeps.
const TrendHours = 7 * 24

// TrendCounts is what one cluster did in one hour.
type TrendCounts struct {
	WALBytes int64 `json:"wal_bytes"` // WAL object bytes stored
	WALFiles int64 `json:"wal_files"` // WAL files stored
	Backups  int64 `json:"backups"`   // backups committed
	Requests int64 `json:"requests"`  // requests naming the cluster
	Errors   int64 `json:"errors"`    // of those, answered with an error
}

// Add adds o to t.
func (t *TrendCounts) Add(o TrendCounts) {
	t.WALBytes += o.WALBytes
	t.WALFiles += o.WALFiles
	t.Backups += o.Backups
	t.Requests += o.Requests
	t.Errors += o.Errors
}

// TrendBucket is one hour of a cluster's trends.
type TrendBucket struct {
	Hour time.Time // start of the hour, UTC
	TrendCounts
}

// trendKey is the key of the hour starting at hour (times before 1970
// map to the first key).
func trendKey(hour time.Time) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(max(hour.Unix(), 0)))
	return k
}

// AddTrends adds counts, per cluster and hour (truncated to the hour), to
// the stored buckets in one transaction, and drops every bucket that
// started more than TrendHours hours before now.
func (c *Catalog) AddTrends(counts map[string]map[time.Time]TrendCounts, now time.Time) error {
	oldest := trendKey(now.UTC().Truncate(time.Hour).Add(-TrendHours * time.Hour))
	return c.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketTrends)
		if err != nil {
			return err
		}
		for cluster, hours := range counts {
			b, err := root.CreateBucketIfNotExists([]byte(cluster))
			if err != nil {
				return err
			}
			for hour, add := range hours {
				k := trendKey(hour.UTC().Truncate(time.Hour))
				var cur TrendCounts
				if v := b.Get(k); v != nil {
					if err := jsonUnmarshal(v, &cur); err != nil {
						return err
					}
				}
				cur.Add(add)
				if err := putJSON(b, string(k), cur); err != nil {
					return err
				}
			}
		}
		var empty [][]byte
		err = root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			cur := b.Cursor()
			for k, _ := cur.First(); k != nil && string(k) < string(oldest); k, _ = cur.First() {
				if err := cur.Delete(); err != nil {
					return err
				}
			}
			if k, _ := b.Cursor().First(); k == nil {
				empty = append(empty, append([]byte(nil), name...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range empty {
			if err := root.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Trends returns a cluster's hourly buckets that start at or after since,
// oldest first; hours without activity are absent.
func (c *Catalog) Trends(cluster string, since time.Time) ([]TrendBucket, error) {
	var out []TrendBucket
	err := c.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketTrends)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(cluster))
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.Seek(trendKey(since.UTC().Truncate(time.Hour))); k != nil; k, v = cur.Next() {
			var tb TrendBucket
			if err := jsonUnmarshal(v, &tb.TrendCounts); err != nil {
				return err
			}
			tb.Hour = time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC()
			out = append(out, tb)
		}
		return nil
	})
	return out, err
}
