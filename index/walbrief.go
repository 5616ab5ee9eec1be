package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The brief records: clusters/<cluster>/walbrief/<WAL name> -> what
// retention and tiering read of the WAL record of that name (WALBrief),
// in a compact binary form, written in the same transaction as every
// change to the JSON record. A lifecycle plan reads these instead of the
// JSON (a tenth of the bytes and no JSON to parse).
//
// Format, version 1: byte 1 | varint size | varint stored_at (Unix ns) |
// string key | uvarint holders, each a string | uvarint classes, each
// backend string then class string; a string is uvarint length + bytes.
var bucketWALBrief = []byte("walbrief")

const briefVersion = 1

func encodeBrief(o WALObject) []byte {
	n := 1 + 2*binary.MaxVarintLen64 + binary.MaxVarintLen64 + len(o.Key) + binary.MaxVarintLen64
	holders := o.Holders()
	for _, h := range holders {
		n += binary.MaxVarintLen64 + len(h)
	}
	n += binary.MaxVarintLen64
	for b, c := range o.Classes {
		n += 2*binary.MaxVarintLen64 + len(b) + len(c)
	}
	out := make([]byte, 0, n)
	str := func(s string) {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	out = append(out, briefVersion)
	out = binary.AppendVarint(out, o.Size)
	out = binary.AppendVarint(out, o.StoredAt.UnixNano())
	str(o.Key)
	out = binary.AppendUvarint(out, uint64(len(holders)))
	for _, h := range holders {
		str(h)
	}
	backends := make([]string, 0, len(o.Classes))
	for b := range o.Classes {
		backends = append(backends, b)
	}
	sort.Strings(backends)
	out = binary.AppendUvarint(out, uint64(len(backends)))
	for _, b := range backends {
		str(b)
		str(o.Classes[b])
	}
	return out
}

var errBrief = errors.New("catalog brief record is corrupt")

func decodeBrief(data []byte, w *WALBrief) error {
	*w = WALBrief{}
	if len(data) == 0 || data[0] != briefVersion {
		return errBrief
	}
	i := 1
	varint := func() (int64, bool) {
		v, n := binary.Varint(data[i:])
		if n <= 0 {
			return 0, false
		}
		i += n
		return v, true
	}
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(data[i:])
		if n <= 0 || v > uint64(len(data)) {
			return 0, false
		}
		i += n
		return v, true
	}
	str := func() (string, bool) {
		l, ok := uvarint()
		if !ok || uint64(len(data)-i) < l {
			return "", false
		}
		s := string(data[i : i+int(l)])
		i += int(l)
		return s, true
	}
	var ok bool
	var at int64
	if w.Size, ok = varint(); !ok {
		return errBrief
	}
	if at, ok = varint(); !ok {
		return errBrief
	}
	w.StoredAt = time.Unix(0, at).UTC()
	if w.Key, ok = str(); !ok {
		return errBrief
	}
	nh, ok := uvarint()
	if !ok {
		return errBrief
	}
	if nh > 0 {
		w.Holders = make([]string, nh)
		for j := range w.Holders {
			if w.Holders[j], ok = str(); !ok {
				return errBrief
			}
		}
	}
	nc, ok := uvarint()
	if !ok {
		return errBrief
	}
	if nc > 0 {
		w.Classes = make(map[string]string, nc)
		for range nc {
			b, ok1 := str()
			c, ok2 := str()
			if !ok1 || !ok2 {
				return errBrief
			}
			w.Classes[b] = c
		}
	}
	if i != len(data) {
		return errBrief
	}
	return nil
}

// putWALRecord writes a WAL record and its brief into the cluster's
// bucket.
func putWALRecord(cb *bolt.Bucket, o WALObject) error {
	wb := cb.Bucket(bucketWAL)
	// WAL arrives in name order: full pages instead of bbolt's half-full
	// splits halve the file and what a scan reads.
	wb.FillPercent = walFillPercent
	if err := putJSON(wb, o.Name, o); err != nil {
		return err
	}
	bb, err := cb.CreateBucketIfNotExists(bucketWALBrief)
	if err != nil {
		return err
	}
	bb.FillPercent = walFillPercent
	return bb.Put([]byte(o.Name), encodeBrief(o))
}

// walFillPercent is how full bbolt fills a page of WAL records before it
// splits it.
const walFillPercent = 0.9

// deleteWALRecord removes a WAL record and its brief.
func deleteWALRecord(cb *bolt.Bucket, name string) error {
	if err := cb.Bucket(bucketWAL).Delete([]byte(name)); err != nil {
		return err
	}
	if bb := cb.Bucket(bucketWALBrief); bb != nil {
		return bb.Delete([]byte(name))
	}
	return nil
}

// fillBriefs writes the brief of every WAL record of a cluster that has
// none (a catalog from before briefs existed).
func fillBriefs(cb *bolt.Bucket) error {
	if cb.Bucket(bucketWALBrief) != nil {
		return nil
	}
	bb, err := cb.CreateBucket(bucketWALBrief)
	if err != nil {
		return err
	}
	wb := cb.Bucket(bucketWAL)
	if wb == nil {
		return nil
	}
	return wb.ForEach(func(k, v []byte) error {
		var o WALObject
		if err := jsonUnmarshal(v, &o); err != nil {
			return fmt.Errorf("WAL record %s: %w", k, err)
		}
		return bb.Put(k, encodeBrief(o))
	})
}

func clusterBucket(tx *bolt.Tx, cluster string) *bolt.Bucket {
	return tx.Bucket(bucketClusters).Bucket([]byte(cluster))
}

// sameBrief says whether w is what the brief of o must say.
func sameBrief(o WALObject, w WALBrief) bool {
	if w.Key != o.Key || w.Size != o.Size || w.StoredAt.UnixNano() != o.StoredAt.UnixNano() ||
		!slices.Equal(w.Holders, o.Holders()) || len(w.Classes) != len(o.Classes) {
		return false
	}
	for b, c := range o.Classes {
		if w.Classes[b] != c {
			return false
		}
	}
	return true
}
