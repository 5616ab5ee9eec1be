package index

import "time"

// Interface is the catalog as the gateway, the lifecycle executor and the
// admin verbs use it. *Catalog (one bbolt file, the embedded default) and
// pgcatalog.Catalog (a PostgreSQL database shared by a fleet of gateways)
// implement it; index/catalogtest is the one suite both pass.
//
// Contracts every implementation keeps:
//   - A method returns only after its change is durable (committed).
//   - Writes that the bbolt catalog makes in one transaction (a WAL record
//     and the copies it queues, a backup commit and its copies) are one
//     transaction in every implementation.
//   - AddWAL/AddWALCopies are insert-if-absent: of any number of callers
//     racing on one name, in any number of processes, exactly one gets
//     added == true, and every caller gets the record that won.
//   - Errors wrap ErrNotFound, ErrExists and ErrSchema where those apply;
//     fn callbacks must not call back into the catalog for writes.
//   - No method blocks forever on an unreachable database: it fails with
//     an error the caller reports as unavailable.
type Interface interface {
	// Close releases the catalog (file lock or connections).
	Close() error
	// Check reads every record and reports structural damage.
	Check() error
	// SizeBytes is the catalog's current size on disk.
	SizeBytes() int64
	// Generation changes whenever a backup or drill record of cluster is
	// written (through any gateway sharing the catalog).
	Generation(cluster string) uint64

	// ClaimWAL takes or renews owner's claim on a WAL name for lease:
	// true when owner holds it afterwards. Another owner's unexpired
	// claim stays (false). A gateway writes a WAL object under its final
	// key only while it holds the name's claim.
	ClaimWAL(cluster, name, owner string, lease time.Duration) (bool, error)
	// ReleaseWAL drops owner's claim; another owner's claim stays.
	ReleaseWAL(cluster, name, owner string) error
	// TryLease takes or renews owner's lease on a shared duty for ttl:
	// true when owner holds it afterwards; another owner's unexpired
	// lease stays. Background duties run only where it is held.
	TryLease(duty, owner string, ttl time.Duration) (bool, error)

	// Heartbeat stores g (one row per gateway process, by g.ID) with
	// LastSeen set to now by the catalog's clock, in one transaction that
	// also removes the rows g replaces (same Host and Address, not seen
	// for longer than replace) and every row not seen for longer than
	// prune. Another gateway's live row is never removed.
	Heartbeat(g GatewayRecord, replace, prune time.Duration) error
	// Gateways lists every registered gateway, by host, address and id,
	// with Since (the time since LastSeen by the catalog's clock) set.
	Gateways() ([]GatewayRecord, error)

	AddWALBatch(cluster string, objs []WALObject) error
	AddWAL(cluster string, obj WALObject) (WALObject, bool, error)
	AddWALCopies(cluster string, obj WALObject, copies []Copy) (WALObject, bool, error)
	WAL(cluster, name string) (WALObject, error)
	ListWAL(cluster, from string, fn func(WALObject) error) error
	ListWALBrief(cluster string, fn func(name string, w WALBrief) error) error
	Clusters() ([]Cluster, error)
	SegmentSize(cluster string) (uint64, error)
	Timelines(cluster string) ([]TimelineRecord, error)
	ApplyWALChanges(cluster string, changes []CopyChange) error

	BeginBackup(cluster string, b Backup) error
	UpdateBackup(cluster, name string, fn func(*Backup) error) error
	UpdateBackupCopies(cluster, name string, fn func(*Backup) ([]Copy, error)) error
	DeleteBackup(cluster, name string) error
	Backup(cluster, name string) (Backup, error)
	Backups(cluster string, state BackupState) ([]Backup, error)
	OpenBackups() (map[string][]Backup, error)
	SetBackupClasses(cluster, name string, changes []CopyChange) error
	MarkBackupDeleting(cluster, name string) (Backup, error)

	AddDrill(cluster string, d DrillRecord) error
	Drills(cluster string, limit int) ([]DrillRecord, error)
	// TrimDrills removes a cluster's oldest drill reports beyond the
	// newest keep and returns how many it removed.
	TrimDrills(cluster string, keep int) (int, error)
	DrillSummary(cluster string) (*DrillRecord, time.Time, error)

	AddToken(hash [32]byte, t Token) error
	LookupToken(hash [32]byte) (Token, error)
	ListTokens() ([]Token, error)
	RevokeToken(id string) error
	// RotateToken stores next (under nextHash) as the successor of the
	// token id in one transaction: next takes the old token's cluster,
	// all-clusters flag, scopes and comment and records RotatedFrom; the
	// old token records Successor and expires at oldUntil (or its own
	// earlier expiry). A token already rotated, or an unknown id
	// (ErrNotFound), is refused and nothing changes.
	RotateToken(id string, nextHash [32]byte, next Token, oldUntil time.Time) (Token, Token, error)
	TokenRecords() (map[[32]byte]Token, error)

	// AddTrends adds counts per cluster and hour (truncated to the hour,
	// UTC) to the stored hourly buckets in one transaction, and drops
	// every bucket that started more than TrendHours before now: a
	// cluster holds at most TrendHours+1 buckets.
	AddTrends(counts map[string]map[time.Time]TrendCounts, now time.Time) error
	// Trends returns a cluster's buckets that start at or after since
	// (truncated to the hour), oldest first; hours without activity are
	// absent.
	Trends(cluster string, since time.Time) ([]TrendBucket, error)

	ClaimSystem(cluster string, claim ClusterSystem) (ClusterSystem, error)
	System(cluster string) (ClusterSystem, error)

	Enqueue(copies []Copy) error
	EnqueueRepair(cp Copy) (bool, error)
	// Pending lists backend's queue in order with the claims on it; it
	// claims nothing (status pages, tests).
	Pending(backend string, limit int) ([]Copy, error)
	// ClaimCopies claims for owner, for lease, up to limit entries of
	// backend's queue that the Claimable rule lets it take, in queue
	// order, and returns them with the earliest time an entry it passed
	// over becomes claimable (zero: none waits for a time, or limit were
	// claimed: the caller claims again at once). Of any number
	// of owners claiming at once, in any number of processes, no two get
	// the same entry while its claim lasts; an expired claim is taken
	// over. An owner's own unexpired claims are claimed again.
	ClaimCopies(backend, owner string, limit int, lease time.Duration) ([]Copy, time.Time, error)
	// RenewCopies extends owner's claims on copies for lease from now
	// (a long copy); entries another owner took over stay theirs.
	RenewCopies(owner string, copies []Copy, lease time.Duration) error
	// ReleaseCopies drops owner's claims on copies left undone.
	ReleaseCopies(owner string, copies []Copy) error
	QueueStats(backend string) (QueueStats, error)
	// RetryCopy records a failed attempt of cp and drops the claim of
	// cp.ClaimedBy; while another owner holds an unexpired claim on the
	// entry nothing changes.
	RetryCopy(cp Copy, next time.Time, errMsg string) error
	// CompleteCopy records cp.Backend as a holder of the object and
	// removes the entry from the queue, unless another owner than
	// cp.ClaimedBy holds an unexpired claim on it (then the entry stays
	// theirs to complete; the holder is recorded all the same).
	CompleteCopy(cp Copy) error
	CancelCopies(keys []string) error
}

var _ Interface = (*Catalog)(nil)
