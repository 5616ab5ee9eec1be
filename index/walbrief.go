package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// decodeWALBrief reads a WAL record's JSON into w without encoding/json,
// whose validation pass and reflection make up most of a lifecycle plan
// over a large catalog. It accepts only the plain form json.Marshal
// writes for a WALObject: one object, no whitespace, strings without
// escapes, integers, and the backends array and classes object as the
// only nesting. Anything else returns false and the caller decodes the
// record with encoding/json.
func decodeWALBrief(data []byte, w *WALBrief) bool {
	p := briefParser{b: data}
	if !p.byte('{') {
		return false
	}
	*w = WALBrief{}
	if p.peek('}') {
		p.i++
		return p.i == len(p.b)
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		switch string(key) {
		case "key":
			if w.Key, ok = p.strValue(); !ok {
				return false
			}
		case "backend":
			if w.Backend, ok = p.strValue(); !ok {
				return false
			}
		case "size":
			if w.Size, ok = p.int(); !ok {
				return false
			}
		case "stored_at":
			s, ok := p.str()
			if !ok {
				return false
			}
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				return false
			}
			w.StoredAt = t
		case "backends":
			if w.Backends, ok = p.strArray(); !ok {
				return false
			}
		case "classes":
			if w.Classes, ok = p.strMap(); !ok {
				return false
			}
		default:
			// encoding/json matches keys case-insensitively: leave such
			// records to it.
			for _, k := range briefKeys {
				if strings.EqualFold(string(key), k) {
					return false
				}
			}
			if !p.skipScalar() {
				return false
			}
		}
		if p.peek(',') {
			p.i++
			continue
		}
		if !p.byte('}') {
			return false
		}
		return p.i == len(p.b)
	}
}

var briefKeys = []string{"key", "backend", "size", "stored_at", "backends", "classes"}

type briefParser struct {
	b []byte
	i int
}

func (p *briefParser) peek(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *briefParser) byte(c byte) bool {
	if !p.peek(c) {
		return false
	}
	p.i++
	return true
}

// str reads a string without escapes (a backslash fails the fast path).
func (p *briefParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	end := bytes.IndexByte(p.b[p.i:], '"')
	if end < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+end]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	for _, c := range s {
		if c < 0x20 {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	p.i += end + 1
	return s, true
}

func (p *briefParser) strValue() (string, bool) {
	s, ok := p.str()
	return string(s), ok
}

func (p *briefParser) int() (int64, bool) {
	start := p.i
	if p.peek('-') {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i-digits > 1 && p.b[digits] == '0' {
		return 0, false // JSON has no leading zeros
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return n, err == nil
}

func (p *briefParser) strArray() ([]string, bool) {
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return nil, true
	}
	if !p.byte('[') {
		return nil, false
	}
	var out []string
	if p.byte(']') {
		return []string{}, true
	}
	for {
		s, ok := p.strValue()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if p.byte(']') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

func (p *briefParser) strMap() (map[string]string, bool) {
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return nil, true
	}
	if !p.byte('{') {
		return nil, false
	}
	out := map[string]string{}
	if p.byte('}') {
		return out, true
	}
	for {
		k, ok := p.strValue()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.strValue()
		if !ok {
			return nil, false
		}
		out[k] = v
		if p.byte('}') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// skipScalar passes over a string, integer, true, false or null.
func (p *briefParser) skipScalar() bool {
	if p.peek('"') {
		_, ok := p.str()
		return ok
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
			p.i += len(lit)
			return true
		}
	}
	_, ok := p.int()
	return ok
}

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
		w.Backends = make([]string, nh)
		for j := range w.Backends {
			if w.Backends[j], ok = str(); !ok {
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
		!slices.Equal(w.Holders(), o.Holders()) || len(w.Classes) != len(o.Classes) {
		return false
	}
	for b, c := range o.Classes {
		if w.Classes[b] != c {
			return false
		}
	}
	return true
}
