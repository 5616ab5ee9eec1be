package index

import (
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TimelineRecord is what the catalog knows of one timeline of a cluster's
// WAL: its ID and, when its history file was pushed by a client that read
// it, the parent it branched from and where (Parent 0: not known).
type TimelineRecord struct {
	ID        uint32
	Parent    uint32
	SwitchLSN uint64
	// History: the timeline's history file is archived.
	History bool
}

// Timelines lists the timelines the cluster's WAL names, lowest first. WAL
// keys start with the timeline in hex, so this seeks once per timeline
// instead of reading every record.
func (c *Catalog) Timelines(cluster string) ([]TimelineRecord, error) {
	var out []TimelineRecord
	err := c.db.View(func(tx *bolt.Tx) error {
		b := walBucket(tx, cluster)
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; {
			if len(k) < 8 {
				k, v = cur.Next()
				continue
			}
			raw, err := hex.DecodeString(string(k[:8]))
			if err != nil || len(raw) != 4 {
				k, v = cur.Next()
				continue
			}
			id := uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3])
			rec := TimelineRecord{ID: id}
			// A history file ("0000000N.history") sorts before the
			// timeline's segments.
			if string(k) == fmt.Sprintf("%08X.history", id) {
				var obj WALObject
				if err := jsonUnmarshal(v, &obj); err != nil {
					return err
				}
				rec.History, rec.Parent, rec.SwitchLSN = true, obj.TimelineParent, obj.SwitchLSN
			}
			out = append(out, rec)
			if id == ^uint32(0) {
				break
			}
			k, v = cur.Seek([]byte(fmt.Sprintf("%08X", id+1)))
		}
		return nil
	})
	return out, err
}

// CopyChange is one lifecycle change to one backend's copy of an object:
// a new storage class, or the copy deleted.
type CopyChange struct {
	Name    string // WAL file name (ApplyWALChanges) or object key (ApplyBackupChanges)
	Backend string
	Class   string // the new class; "" with Deleted
	Deleted bool
}

func setClass(m map[string]string, backend, class string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[backend] = class
	return m
}

// ApplyWALChanges records changes to a cluster's WAL copies in one
// transaction: a class change sets the copy's class; a deletion drops the
// backend from the holders, and the record when no holder is left.
// Changes to records that are gone are ignored.
func (c *Catalog) ApplyWALChanges(cluster string, changes []CopyChange) error {
	if len(changes) == 0 {
		return nil
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		cb := clusterBucket(tx, cluster)
		if cb == nil {
			return nil
		}
		b := cb.Bucket(bucketWAL)
		for _, ch := range changes {
			var obj WALObject
			ok, err := getJSON(b, ch.Name, &obj)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if !obj.ApplyChange(ch) {
				if err := deleteWALRecord(cb, ch.Name); err != nil {
					return err
				}
				continue
			}
			if err := putWALRecord(cb, obj); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetBackupClasses records class changes of a backup's objects (Name is
// the object key: a file's or the sentinel's).
func (c *Catalog) SetBackupClasses(cluster, name string, changes []CopyChange) error {
	if len(changes) == 0 {
		return nil
	}
	defer c.bump(cluster)
	return c.db.Update(func(tx *bolt.Tx) error {
		bb, err := clusterSub(tx, cluster, bucketBackups, false)
		if err != nil || bb == nil {
			return err
		}
		var bk Backup
		if ok, err := getJSON(bb, name, &bk); err != nil || !ok {
			return err
		}
		if err := bk.ApplyClassChanges(changes); err != nil {
			return err
		}
		return putJSON(bb, name, bk)
	})
}

// MarkBackupDeleting moves a committed backup to BackupDeleting and
// returns its record; a backup already deleting is returned as it is.
func (c *Catalog) MarkBackupDeleting(cluster, name string) (Backup, error) {
	var out Backup
	err := c.UpdateBackup(cluster, name, func(b *Backup) error {
		if err := b.MarkDeleting(cluster); err != nil {
			return err
		}
		out = *b
		return nil
	})
	return out, err
}

// WALBrief is what retention and tiering read of a WAL record (its brief
// record, see walbrief.go).
type WALBrief struct {
	Key      string
	Holders  []string // as WALObject.Holders
	Size     int64
	StoredAt time.Time
	Classes  map[string]string
}

// ListWALBrief lists the brief records of the cluster's WAL, in name
// order; name is the WAL file name.
func (c *Catalog) ListWALBrief(cluster string, fn func(name string, w WALBrief) error) error {
	return c.db.View(func(tx *bolt.Tx) error {
		cb := clusterBucket(tx, cluster)
		if cb == nil {
			return nil
		}
		bb := cb.Bucket(bucketWALBrief)
		if bb == nil {
			return fmt.Errorf("cluster %s has no brief records (Open fills them in)", cluster)
		}
		cur := bb.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			var w WALBrief
			if err := decodeBrief(v, &w); err != nil {
				return fmt.Errorf("WAL %s of cluster %s: %w", k, cluster, err)
			}
			if err := fn(string(k), w); err != nil {
				return err
			}
		}
		return nil
	})
}
