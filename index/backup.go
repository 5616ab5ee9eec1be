package index

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketBackups = []byte("backups")
	bucketDrills  = []byte("drills")
)

// BackupState is where a backup is in its life: open, committed, deleting.
type BackupState string

// Backup states.
const (
	BackupOpen      BackupState = "open"      // uploading; invisible to fetch and list
	BackupCommitted BackupState = "committed" // sentinel written; restorable
	// BackupDeleting: retention is deleting its objects (sentinel first);
	// invisible to fetch and list, finished by the next lifecycle run if
	// a backend failed meanwhile.
	BackupDeleting BackupState = "deleting"
)

// BackupFile is one stored object of a backup.
type BackupFile struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Compression string `json:"compression"`
	Encryption  string `json:"encryption"`
	// KeyFingerprint names the key the object was sealed with ("":
	// unknown or unencrypted).
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Backends hold the file (see Holders).
	Backends []string `json:"backends,omitempty"`
	// Classes holds the storage class of copies not in their backend's
	// default class, by backend name (lifecycle tiering).
	Classes map[string]string `json:"classes,omitempty"`
}

// BackupInfo is what the catalog keeps from a backup's sentinel.
type BackupInfo struct {
	Kind             string    `json:"kind"` // full or delta
	DeltaFrom        string    `json:"delta_from,omitempty"`
	DeltaFullName    string    `json:"delta_full_name,omitempty"`
	DeltaCount       int       `json:"delta_count,omitempty"`
	StartLSN         uint64    `json:"start_lsn"`
	FinishLSN        uint64    `json:"finish_lsn"`
	Timeline         uint32    `json:"timeline"`
	StartTime        time.Time `json:"start_time"`
	FinishTime       time.Time `json:"finish_time"`
	UncompressedSize int64     `json:"uncompressed_size"`
	PgVersion        int       `json:"pg_version"`
	SystemIdentifier uint64    `json:"system_identifier"`
	Hostname         string    `json:"hostname"`
	// Permanent backups are never deleted by retention (the sentinel's
	// IsPermanent).
	Permanent bool `json:"permanent,omitempty"`
}

// Backup is a base backup's catalog record, open or committed.
type Backup struct {
	Name         string                `json:"name"`
	State        BackupState           `json:"state"`
	Session      string                `json:"session"`
	Backend      string                `json:"backend"`            // the group's primary when begun
	Backends     []string              `json:"backends,omitempty"` // backends holding all of it (see Holders)
	Begun        time.Time             `json:"begun"`
	LastActivity time.Time             `json:"last_activity"`
	Committed    time.Time             `json:"committed,omitempty"`
	Files        map[string]BackupFile `json:"files"`
	SentinelKey  string                `json:"sentinel_key,omitempty"`
	SentinelSize int64                 `json:"sentinel_size,omitempty"`
	// SentinelClasses holds the sentinel's storage class where not its
	// backend's default, by backend name.
	SentinelClasses map[string]string `json:"sentinel_classes,omitempty"`
	Info            BackupInfo        `json:"info"`
	TokenID         string            `json:"token_id"`
}

// StoredSize is the bytes all objects of the backup take in the backend.
func (b Backup) StoredSize() int64 {
	n := b.SentinelSize
	for _, f := range b.Files {
		n += f.Size
	}
	return n
}

func clusterSub(tx *bolt.Tx, cluster string, name []byte, create bool) (*bolt.Bucket, error) {
	if create {
		cb, err := ensureCluster(tx, cluster)
		if err != nil {
			return nil, err
		}
		return cb.CreateBucketIfNotExists(name)
	}
	cb := tx.Bucket(bucketClusters).Bucket([]byte(cluster))
	if cb == nil {
		return nil, nil
	}
	return cb.Bucket(name), nil
}

// BeginBackup records a new open backup. It fails if a backup of that
// name exists, open or committed.
func (c *Catalog) BeginBackup(cluster string, b Backup) error {
	defer c.bump(cluster)
	return c.db.Update(func(tx *bolt.Tx) error {
		bb, err := clusterSub(tx, cluster, bucketBackups, true)
		if err != nil {
			return err
		}
		var prev Backup
		if ok, err := getJSON(bb, b.Name, &prev); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("backup %s of cluster %s already exists (%s): %w", b.Name, cluster, prev.State, ErrExists)
		}
		return putJSON(bb, b.Name, b)
	})
}

// UpdateBackup reads the backup record, lets fn change it, and writes it
// back in one transaction. fn must not do I/O.
func (c *Catalog) UpdateBackup(cluster, name string, fn func(*Backup) error) error {
	return c.UpdateBackupCopies(cluster, name, func(b *Backup) ([]Copy, error) { return nil, fn(b) })
}

// UpdateBackupCopies is UpdateBackup whose fn also returns copies to queue
// in the same transaction (a commit queues the backup's replication).
func (c *Catalog) UpdateBackupCopies(cluster, name string, fn func(*Backup) ([]Copy, error)) error {
	defer c.bump(cluster)
	return c.db.Update(func(tx *bolt.Tx) error {
		bb, err := clusterSub(tx, cluster, bucketBackups, false)
		if err != nil {
			return err
		}
		var b Backup
		if bb == nil {
			return fmt.Errorf("backup %s of cluster %s: %w", name, cluster, ErrNotFound)
		}
		if ok, err := getJSON(bb, name, &b); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("backup %s of cluster %s: %w", name, cluster, ErrNotFound)
		}
		copies, err := fn(&b)
		if err != nil {
			return err
		}
		if err := putJSON(bb, name, b); err != nil {
			return err
		}
		return enqueue(tx, copies)
	})
}

// DeleteBackup removes a backup record.
func (c *Catalog) DeleteBackup(cluster, name string) error {
	defer c.bump(cluster)
	return c.db.Update(func(tx *bolt.Tx) error {
		bb, err := clusterSub(tx, cluster, bucketBackups, false)
		if err != nil || bb == nil {
			return err
		}
		return bb.Delete([]byte(name))
	})
}

// Backup returns one backup record, open or committed.
func (c *Catalog) Backup(cluster, name string) (Backup, error) {
	var b Backup
	err := c.db.View(func(tx *bolt.Tx) error {
		bb, err := clusterSub(tx, cluster, bucketBackups, false)
		if err != nil {
			return err
		}
		ok := false
		if bb != nil {
			if ok, err = getJSON(bb, name, &b); err != nil {
				return err
			}
		}
		if !ok {
			return fmt.Errorf("backup %s of cluster %s: %w", name, cluster, ErrNotFound)
		}
		return nil
	})
	return b, err
}

// Backups lists a cluster's backups in the given state ("" = all), by
// finish time for committed ones, then by name.
func (c *Catalog) Backups(cluster string, state BackupState) ([]Backup, error) {
	var out []Backup
	err := c.db.View(func(tx *bolt.Tx) error {
		bb, err := clusterSub(tx, cluster, bucketBackups, false)
		if err != nil || bb == nil {
			return err
		}
		return bb.ForEach(func(_, v []byte) error {
			var b Backup
			if err := jsonUnmarshal(v, &b); err != nil {
				return err
			}
			if state == "" || b.State == state {
				out = append(out, b)
			}
			return nil
		})
	})
	SortBackups(out)
	return out, err
}

// SortBackups orders backups as Backups returns them: by finish time,
// then by name.
func SortBackups(out []Backup) {
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Info.FinishTime.Equal(out[j].Info.FinishTime) {
			return out[i].Info.FinishTime.Before(out[j].Info.FinishTime)
		}
		return out[i].Name < out[j].Name
	})
}

// OpenBackups lists open backups of every cluster, as cluster -> records.
func (c *Catalog) OpenBackups() (map[string][]Backup, error) {
	clusters, err := c.Clusters()
	if err != nil {
		return nil, err
	}
	out := map[string][]Backup{}
	for _, cl := range clusters {
		list, err := c.Backups(cl.Name, BackupOpen)
		if err != nil {
			return nil, err
		}
		if len(list) > 0 {
			out[cl.Name] = list
		}
	}
	return out, nil
}

// DrillRecord is a restore-drill report as the catalog keeps it: the
// report JSON, opaque to the catalog, with when it arrived.
type DrillRecord struct {
	Received time.Time       `json:"received"`
	Passed   bool            `json:"passed"`
	Report   json.RawMessage `json:"report"`
}

// DrillSummary returns a cluster's newest drill record (nil when none) and
// when the newest passing drill was received (zero when none), reading
// backwards only as far as the newest passing one.
func (c *Catalog) DrillSummary(cluster string) (*DrillRecord, time.Time, error) {
	var newest *DrillRecord
	var passed time.Time
	err := c.db.View(func(tx *bolt.Tx) error {
		db, err := clusterSub(tx, cluster, bucketDrills, false)
		if err != nil || db == nil {
			return err
		}
		cur := db.Cursor()
		for k, v := cur.Last(); k != nil; k, v = cur.Prev() {
			if newest == nil {
				var d DrillRecord
				if err := jsonUnmarshal(v, &d); err != nil {
					return err
				}
				newest = &d
				if d.Passed {
					passed = d.Received
					return nil
				}
				continue
			}
			var d struct {
				Received time.Time `json:"received"`
				Passed   bool      `json:"passed"`
			}
			if err := jsonUnmarshal(v, &d); err != nil {
				return err
			}
			if d.Passed {
				passed = d.Received
				return nil
			}
		}
		return nil
	})
	return newest, passed, err
}

// AddDrill stores a drill report of a cluster.
func (c *Catalog) AddDrill(cluster string, d DrillRecord) error {
	defer c.bump(cluster)
	return c.db.Update(func(tx *bolt.Tx) error {
		db, err := clusterSub(tx, cluster, bucketDrills, true)
		if err != nil {
			return err
		}
		seq, _ := db.NextSequence()
		key := fmt.Sprintf("%s-%08d", d.Received.UTC().Format("20060102T150405.000000000Z"), seq)
		return putJSON(db, key, d)
	})
}

// Drills returns a cluster's drill reports, oldest first, at most the
// newest limit of them (0 = all).
func (c *Catalog) Drills(cluster string, limit int) ([]DrillRecord, error) {
	var out []DrillRecord
	err := c.db.View(func(tx *bolt.Tx) error {
		db, err := clusterSub(tx, cluster, bucketDrills, false)
		if err != nil || db == nil {
			return err
		}
		cur := db.Cursor()
		for k, v := cur.Last(); k != nil && (limit == 0 || len(out) < limit); k, v = cur.Prev() {
			var d DrillRecord
			if err := jsonUnmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// TrimDrills removes a cluster's oldest drill reports beyond the newest
// keep, and returns how many it removed.
func (c *Catalog) TrimDrills(cluster string, keep int) (int, error) {
	removed := 0
	err := c.db.Update(func(tx *bolt.Tx) error {
		db, err := clusterSub(tx, cluster, bucketDrills, false)
		if err != nil || db == nil {
			return err
		}
		n := db.Stats().KeyN
		cur := db.Cursor()
		for k, _ := cur.First(); k != nil && n-removed > keep; k, _ = cur.First() {
			if err := cur.Delete(); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if removed > 0 {
		c.bump(cluster)
	}
	return removed, err
}
