package index

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The replication queue: replication/<backend>/<seq, 8 bytes big-endian>
// -> Copy (JSON). A copy is queued in the same transaction that records
// its object, so an acknowledged object is always either on a backend or
// queued for it; it leaves the queue in the transaction that records the
// backend as a holder.
var bucketReplication = []byte("replication")

// Kinds of queued copies.
const (
	CopyWAL        = "wal"
	CopyBackupFile = "backup-file"
	CopySentinel   = "sentinel"
)

// Copy is one object to copy to one backend.
type Copy struct {
	Seq      uint64            `json:"-"`
	Backend  string            `json:"-"`
	Cluster  string            `json:"cluster"`
	Kind     string            `json:"kind"`           // CopyWAL, CopyBackupFile, CopySentinel
	Name     string            `json:"name"`           // WAL file or backup name
	File     string            `json:"file,omitempty"` // backup file (CopyBackupFile)
	Key      string            `json:"key"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Metadata map[string]string `json:"metadata,omitempty"` // stored with the copy
	Enqueued time.Time         `json:"enqueued"`
	// Repair replaces a copy found damaged: it is written even when the
	// backend has an object under the key.
	Repair bool `json:"repair,omitempty"`

	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// ClaimedBy and ClaimedUntil are the claim on the entry (ClaimCopies):
	// the gateway copying it and until when no other gateway may take it
	// over. Empty when nobody holds it. They live beside the record, not
	// in it.
	ClaimedBy    string    `json:"-"`
	ClaimedUntil time.Time `json:"-"`
}

// Backup names the backup a backup file or sentinel copy belongs to
// ("cluster/name"); "" for a WAL copy.
func (cp Copy) Backup() string {
	if cp.Kind == CopyWAL {
		return ""
	}
	return cp.Cluster + "/" + cp.Name
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// enqueue adds copies inside tx, each under its backend in arrival order.
func enqueue(tx *bolt.Tx, copies []Copy) error {
	if len(copies) == 0 {
		return nil
	}
	root, err := tx.CreateBucketIfNotExists(bucketReplication)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, cp := range copies {
		b, err := root.CreateBucketIfNotExists([]byte(cp.Backend))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if cp.Enqueued.IsZero() {
			cp.Enqueued = now
		}
		data, err := jsonMarshal(cp)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(seq), data); err != nil {
			return err
		}
	}
	return nil
}

// Enqueue queues copies on their own (a repair of a damaged copy, a
// rebuilt catalog's other backends).
func (c *Catalog) Enqueue(copies []Copy) error {
	return c.db.Update(func(tx *bolt.Tx) error { return enqueue(tx, copies) })
}

// Pending returns up to limit queued copies for backend in queue order
// (limit <= 0: all), with their claims. It claims nothing.
func (c *Catalog) Pending(backend string, limit int) ([]Copy, error) {
	c.copyClaims.mu.Lock()
	defer c.copyClaims.mu.Unlock()
	var out []Copy
	err := c.walkQueue(backend, func(cp Copy) bool {
		out = append(out, cp)
		return limit <= 0 || len(out) < limit
	})
	return out, err
}

// walkQueue calls fn with backend's queued copies in order, each with its
// unexpired claim, until fn returns false. c.copyClaims.mu must be held.
func (c *Catalog) walkQueue(backend string, fn func(Copy) bool) error {
	now := time.Now()
	return c.db.View(func(tx *bolt.Tx) error {
		b := queueBucket(tx, backend)
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			var cp Copy
			if err := jsonUnmarshal(v, &cp); err != nil {
				return fmt.Errorf("replication queue of %s: %w", backend, err)
			}
			cp.Seq, cp.Backend = binary.BigEndian.Uint64(k), backend
			if cl, ok := c.copyClaims.m[copyClaimKey(cp)]; ok && now.Before(cl.until) {
				cp.ClaimedBy, cp.ClaimedUntil = cl.owner, cl.until
			}
			if !fn(cp) {
				return nil
			}
		}
		return nil
	})
}

// copyClaimKey is where the claim on a queued copy lives in
// Catalog.copyClaims (in memory, like the WAL claims: see claims).
func copyClaimKey(cp Copy) string {
	return fmt.Sprintf("%s\x00%d", cp.Backend, cp.Seq)
}

// Claimable is the rule every catalog claims queued copies by. Walking
// backend's queue in order, an entry is taken when it is due (NextAttempt
// passed), no other owner holds an unexpired claim on it, and, for a
// sentinel, no earlier entry of its backup and no earlier sentinel is
// left in the queue at all (claimed by anyone, due or not): a replica
// shows a backup only after all its parts, and backups in queue order,
// however many gateways copy at once. It keeps the state of one walk.
type Claimable struct {
	Owner string
	Now   time.Time
	// Next is the earliest time an entry passed over becomes claimable
	// (its NextAttempt, or the end of another owner's claim); zero when
	// none waits for a time.
	Next time.Time

	backups   map[string]bool // backups with an entry seen
	sentinels bool            // a sentinel seen
}

// Take reports whether the next entry of the walk, cp, is claimable.
func (w *Claimable) Take(cp Copy) bool {
	ok := true
	if cp.NextAttempt.After(w.Now) {
		w.wait(cp.NextAttempt)
		ok = false
	}
	if cp.ClaimedBy != "" && cp.ClaimedBy != w.Owner && cp.ClaimedUntil.After(w.Now) {
		w.wait(cp.ClaimedUntil)
		ok = false
	}
	if cp.Kind == CopySentinel && (w.sentinels || w.backups[cp.Backup()]) {
		ok = false
	}
	if w.backups == nil {
		w.backups = map[string]bool{}
	}
	if b := cp.Backup(); b != "" {
		w.backups[b] = true
	}
	if cp.Kind == CopySentinel {
		w.sentinels = true
	}
	return ok
}

func (w *Claimable) wait(t time.Time) {
	if w.Next.IsZero() || t.Before(w.Next) {
		w.Next = t
	}
}

// ClaimCopies claims for owner, for lease, up to limit (> 0) entries of
// backend's queue by the Claimable rule, in queue order, and returns them
// with the earliest time an entry it passed over becomes claimable (zero:
// none waits, or limit entries were claimed and the walk stopped there).
// An owner's own unexpired claims are claimed again. The bbolt catalog's
// claims live in memory: it serves one process.
func (c *Catalog) ClaimCopies(backend, owner string, limit int, lease time.Duration) ([]Copy, time.Time, error) {
	c.copyClaims.mu.Lock()
	defer c.copyClaims.mu.Unlock()
	if c.copyClaims.m == nil {
		c.copyClaims.m = map[string]walClaim{}
	}
	w := Claimable{Owner: owner, Now: time.Now()}
	var out []Copy
	err := c.walkQueue(backend, func(cp Copy) bool {
		if w.Take(cp) {
			cp.ClaimedBy, cp.ClaimedUntil = owner, w.Now.Add(lease)
			out = append(out, cp)
		}
		return len(out) < limit
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(out) == limit {
		w.Next = time.Time{} // the caller claims again at once
	}
	for _, cp := range out {
		c.copyClaims.m[copyClaimKey(cp)] = walClaim{owner: owner, until: cp.ClaimedUntil}
	}
	for k, cl := range c.copyClaims.m { // claims of entries cancelled meanwhile
		if !w.Now.Before(cl.until) {
			delete(c.copyClaims.m, k)
		}
	}
	return out, w.Next, nil
}

// RenewCopies extends owner's claims on copies for lease from now; an
// entry another owner took over meanwhile, or that left the queue, is
// passed over.
func (c *Catalog) RenewCopies(owner string, copies []Copy, lease time.Duration) error {
	c.copyClaims.mu.Lock()
	defer c.copyClaims.mu.Unlock()
	until := time.Now().Add(lease)
	for _, cp := range copies {
		k := copyClaimKey(cp)
		if cl, ok := c.copyClaims.m[k]; ok && cl.owner == owner {
			c.copyClaims.m[k] = walClaim{owner: owner, until: until}
		}
	}
	return nil
}

// ReleaseCopies drops owner's claims on copies (left undone: another
// gateway may take them at once); other owners' claims stay.
func (c *Catalog) ReleaseCopies(owner string, copies []Copy) error {
	c.copyClaims.mu.Lock()
	defer c.copyClaims.mu.Unlock()
	for _, cp := range copies {
		c.releaseCopy(cp, owner)
	}
	return nil
}

// heldByOther reports whether another owner than cp.ClaimedBy holds an
// unexpired claim on cp; c.copyClaims.mu must be held.
func (c *Catalog) heldByOther(cp Copy) bool {
	cl, ok := c.copyClaims.m[copyClaimKey(cp)]
	return ok && cl.owner != cp.ClaimedBy && time.Now().Before(cl.until)
}

// releaseCopy drops owner's claim on cp; c.copyClaims.mu must be held.
func (c *Catalog) releaseCopy(cp Copy, owner string) {
	k := copyClaimKey(cp)
	if cl, ok := c.copyClaims.m[k]; ok && cl.owner == owner {
		delete(c.copyClaims.m, k)
	}
}

func queueBucket(tx *bolt.Tx, backend string) *bolt.Bucket {
	root := tx.Bucket(bucketReplication)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(backend))
}

// QueueStats summarises one backend's queue.
type QueueStats struct {
	Count       int
	Bytes       int64
	Oldest      time.Time // enqueue time of the oldest copy
	LastError   string
	LastErrorAt time.Time
	// ByCluster splits Count, Bytes and Oldest per cluster.
	ByCluster map[string]QueueStats
}

// QueueStats scans backend's queue.
func (c *Catalog) QueueStats(backend string) (QueueStats, error) {
	qs := QueueStats{ByCluster: map[string]QueueStats{}}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := queueBucket(tx, backend)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var cp Copy
			if err := jsonUnmarshal(v, &cp); err != nil {
				return err
			}
			qs.Add(cp)
			return nil
		})
	})
	return qs, err
}

// RetryCopy records a failed attempt and when to try again, and drops
// the claim of cp.ClaimedBy. When another owner claims the entry (it took
// it over), the attempt is not recorded: that owner's result counts.
func (c *Catalog) RetryCopy(cp Copy, next time.Time, errMsg string) error {
	c.copyClaims.mu.Lock()
	defer c.copyClaims.mu.Unlock()
	if c.heldByOther(cp) {
		return nil
	}
	c.releaseCopy(cp, cp.ClaimedBy)
	return c.db.Update(func(tx *bolt.Tx) error {
		b := queueBucket(tx, cp.Backend)
		if b == nil || b.Get(seqKey(cp.Seq)) == nil {
			return nil // completed or cancelled meanwhile
		}
		cp.Attempts++
		cp.NextAttempt = next.UTC()
		cp.LastError = errMsg
		cp.LastErrorAt = time.Now().UTC()
		data, err := jsonMarshal(cp)
		if err != nil {
			return err
		}
		return b.Put(seqKey(cp.Seq), data)
	})
}

// CompleteCopy records cp's backend as a holder of the object and removes
// the entry from the queue, in one transaction. The entry stays queued
// when another owner than cp.ClaimedBy claims it (it took the entry over;
// its own completion removes it). A copy whose object left the catalog
// meanwhile (a deleted backup) just leaves the queue.
func (c *Catalog) CompleteCopy(cp Copy) error {
	defer func() {
		if cp.Kind != CopyWAL {
			c.bump(cp.Cluster)
		}
	}()
	c.copyClaims.mu.Lock()
	defer c.copyClaims.mu.Unlock()
	keep := c.heldByOther(cp)
	c.releaseCopy(cp, cp.ClaimedBy)
	return c.db.Update(func(tx *bolt.Tx) error {
		if b := queueBucket(tx, cp.Backend); b != nil && !keep {
			if err := b.Delete(seqKey(cp.Seq)); err != nil {
				return err
			}
		}
		switch cp.Kind {
		case CopyWAL:
			cb := clusterBucket(tx, cp.Cluster)
			if cb == nil {
				return nil
			}
			b := cb.Bucket(bucketWAL)
			var obj WALObject
			if ok, err := getJSON(b, cp.Name, &obj); err != nil || !ok || !obj.AddCopy(cp) {
				return err
			}
			return putWALRecord(cb, obj)
		case CopyBackupFile, CopySentinel:
			bb, err := clusterSub(tx, cp.Cluster, bucketBackups, false)
			if err != nil || bb == nil {
				return err
			}
			var bk Backup
			if ok, err := getJSON(bb, cp.Name, &bk); err != nil || !ok {
				return err
			}
			if !bk.AddCopy(cp) {
				return nil
			}
			return putJSON(bb, cp.Name, bk)
		}
		return fmt.Errorf("replication queue: unknown kind %q", cp.Kind)
	})
}

// CancelCopies drops every queued copy of the given keys, on every backend
// (the objects are being deleted).
func (c *Catalog) CancelCopies(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketReplication)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			var del [][]byte
			if err := b.ForEach(func(k, v []byte) error {
				var cp Copy
				if err := jsonUnmarshal(v, &cp); err != nil {
					return err
				}
				if drop[cp.Key] {
					del = append(del, slices.Clone(k))
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func addHolder(holders []string, name string) []string {
	if slices.Contains(holders, name) {
		return holders
	}
	return append(slices.Clone(holders), name)
}

// Holders are the backends that hold the WAL object (older records name
// one, in Backend).
func (o WALObject) Holders() []string {
	if len(o.Backends) > 0 {
		return o.Backends
	}
	if o.Backend != "" {
		return []string{o.Backend}
	}
	return nil
}

// Holders are the backends that hold every object of the backup: those
// its sentinel reached (a replica gets the sentinel after the parts).
func (b Backup) Holders() []string {
	if len(b.Backends) > 0 {
		return b.Backends
	}
	if b.Backend != "" {
		return []string{b.Backend}
	}
	return nil
}

// Holders are the backends that hold the file; def is the backup's
// backend, for records written before files listed theirs.
func (f BackupFile) Holders(def string) []string {
	if len(f.Backends) > 0 {
		return f.Backends
	}
	if def != "" {
		return []string{def}
	}
	return nil
}
