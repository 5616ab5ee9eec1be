package pgcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walgate/walgate/index"
)

// Bulk loading: what `walgate index migrate` (a bbolt catalog copied into
// PostgreSQL) and `walgate index rebuild` into PostgreSQL write. These
// functions are not part of index.Interface: they serve one-off copies
// into this catalog, and the bbolt catalog is filled by its own rebuild.
//
// Every Load function is one transaction and insert-if-absent per record:
// a record the catalog holds already is left as it is when it is the same
// object, and when it is another object the call fails with a *Conflict
// and writes nothing. Running a load twice adds nothing the second time,
// so a copy that was interrupted is finished by running it again. With
// dry set, a call finds what it would add and refuse, and rolls back.

// Conflict is a record the catalog holds already with other content than
// the one being loaded (another system identifier, another WAL SHA-256,
// another backup under the same name, a token hash under another ID).
type Conflict struct {
	Cluster string // "" for tokens
	What    string // e.g. "WAL 000000010000000000000003"
	Detail  string // what differs
}

func (e *Conflict) Error() string {
	if e.Cluster == "" {
		return fmt.Sprintf("%s: %s", e.What, e.Detail)
	}
	return fmt.Sprintf("cluster %s, %s: %s", e.Cluster, e.What, e.Detail)
}

// lockLoad is the advisory lock key held by one bulk load at a time.
const lockLoad int64 = 0x77616c6761744c44 // "walgatLD"

// errDryRun rolls a dry load back.
var errDryRun = errors.New("dry run")

// LockLoad takes the session advisory lock that keeps two bulk loads
// (migrations, rebuilds) off one catalog at once; false when another
// process holds it. release gives it back.
func (c *Catalog) LockLoad(ctx context.Context) (release func(), ok bool, err error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, false, c.wrap("catalog database", err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockLoad).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false, c.wrap("taking the load lock", err)
	}
	return func() {
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockLoad)
		conn.Release()
	}, true, nil
}

// load runs fn in one transaction with the scan deadline; dry rolls it
// back whatever fn did.
func (c *Catalog) load(ctx context.Context, what string, dry bool, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ScanTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		if dry {
			return errDryRun
		}
		return nil
	})
	var conflict *Conflict
	switch {
	case errors.Is(err, errDryRun):
		return nil
	case errors.As(err, &conflict):
		return err
	}
	return c.wrap(what, err)
}

// LoadCluster records a cluster with its creation time and, when sys is
// not nil, its system. A cluster the catalog knows keeps its creation
// time; a system recorded with another identifier is a Conflict. added
// says whether the cluster's row is new.
func (c *Catalog) LoadCluster(ctx context.Context, cl index.Cluster, sys *index.ClusterSystem, dry bool) (added bool, err error) {
	err = c.load(ctx, "loading cluster "+cl.Name, dry, func(ctx context.Context, tx pgx.Tx) error {
		created := cl.Created.UTC()
		if created.IsZero() {
			created = time.Now().UTC().Truncate(time.Second)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO walgate.clusters (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, cl.Name, created)
		if err != nil {
			return err
		}
		added = tag.RowsAffected() == 1
		if sys == nil {
			return nil
		}
		var rec []byte
		if err := tx.QueryRow(ctx, `SELECT system FROM walgate.clusters WHERE name = $1 FOR UPDATE`, cl.Name).Scan(&rec); err != nil {
			return err
		}
		if rec != nil {
			var cur index.ClusterSystem
			if err := decode(rec, &cur); err != nil {
				return err
			}
			if cur.SystemIdentifier != sys.SystemIdentifier {
				return &Conflict{Cluster: cl.Name, What: "system identifier",
					Detail: fmt.Sprintf("the catalog has %d (since %s, from %s), the copy %d: another PostgreSQL system archives under this name there",
						cur.SystemIdentifier, cur.Since.UTC().Format(time.RFC3339), cur.Source, sys.SystemIdentifier)}
			}
			return nil
		}
		data, err := json.Marshal(sys)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE walgate.clusters SET system = $2 WHERE name = $1`, cl.Name, data)
		return err
	})
	return added, err
}

// LoadWAL adds the WAL records objs of cluster (whose row must exist)
// that the catalog lacks, with their brief records. A name the catalog
// holds with another SHA-256 is a Conflict; with the same one it keeps
// the catalog's record (which may list more holders). It returns how many
// records it added.
func (c *Catalog) LoadWAL(ctx context.Context, cluster string, objs []index.WALObject, dry bool) (int, error) {
	if len(objs) == 0 {
		return 0, nil
	}
	added := 0
	err := c.load(ctx, "loading WAL records", dry, func(ctx context.Context, tx pgx.Tx) error {
		names := make([]string, len(objs))
		for i, o := range objs {
			names[i] = o.Name
		}
		have := map[string]index.WALObject{}
		rows, err := tx.Query(ctx, `SELECT name, record FROM walgate.wal WHERE cluster = $1 AND name = ANY($2)`, cluster, names)
		if err != nil {
			return err
		}
		var name string
		var rec []byte
		if _, err := pgx.ForEachRow(rows, []any{&name, &rec}, func() error {
			var o index.WALObject
			if err := decode(rec, &o); err != nil {
				return fmt.Errorf("WAL %s of cluster %s in the catalog: %w", name, cluster, err)
			}
			have[name] = o
			return nil
		}); err != nil {
			return err
		}
		var newNames []string
		var recs, briefs [][]byte
		for _, o := range objs {
			if cur, ok := have[o.Name]; ok {
				if cur.SHA256 != o.SHA256 {
					return &Conflict{Cluster: cluster, What: "WAL " + o.Name,
						Detail: fmt.Sprintf("the catalog holds SHA-256 %s (key %s), the copy %s (key %s)", cur.SHA256, cur.Key, o.SHA256, o.Key)}
				}
				continue
			}
			data, err := json.Marshal(o)
			if err != nil {
				return err
			}
			newNames = append(newNames, o.Name)
			recs = append(recs, data)
			briefs = append(briefs, index.EncodeBrief(o))
			have[o.Name] = o // a name twice in objs is added once
		}
		if len(newNames) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `INSERT INTO walgate.wal (cluster, name, record, brief)
			SELECT $1, n, r, b FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS t(n, r, b)
			ON CONFLICT (cluster, name) DO NOTHING RETURNING name`, cluster, newNames, recs, briefs)
		if err != nil {
			return err
		}
		inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		added = len(inserted)
		// Running gateways add the records to their WAL summaries, as
		// for a push through another gateway (WatchWAL).
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2 || n) FROM unnest($3::text[]) AS n`,
			walChannel, c.origin+" "+cluster+"/", inserted)
		return err
	})
	return added, err
}

// sameBackup says whether two records of one backup name are the same
// backup: the same sentinel and the same files with the same SHA-256.
// Their state, holders and classes may differ.
func sameBackup(a, b index.Backup) string {
	if a.SentinelKey != b.SentinelKey {
		return fmt.Sprintf("its sentinel is %q in the catalog, %q in the copy", a.SentinelKey, b.SentinelKey)
	}
	if len(a.Files) != len(b.Files) {
		return fmt.Sprintf("it has %d files in the catalog, %d in the copy", len(a.Files), len(b.Files))
	}
	for name, f := range a.Files {
		g, ok := b.Files[name]
		if !ok || f.Key != g.Key || f.SHA256 != g.SHA256 {
			return fmt.Sprintf("its file %s differs (catalog SHA-256 %s, copy %s)", name, f.SHA256, g.SHA256)
		}
	}
	return ""
}

// LoadBackups adds the backup records of cluster the catalog lacks, in
// every state. A name the catalog holds as another backup is a Conflict.
func (c *Catalog) LoadBackups(ctx context.Context, cluster string, list []index.Backup, dry bool) (int, error) {
	if len(list) == 0 {
		return 0, nil
	}
	added := 0
	err := c.load(ctx, "loading backup records", dry, func(ctx context.Context, tx pgx.Tx) error {
		for _, b := range list {
			var rec []byte
			err := tx.QueryRow(ctx, `SELECT record FROM walgate.backups WHERE cluster = $1 AND name = $2`, cluster, b.Name).Scan(&rec)
			if err == nil {
				var cur index.Backup
				if err := decode(rec, &cur); err != nil {
					return fmt.Errorf("backup %s of cluster %s in the catalog: %w", b.Name, cluster, err)
				}
				if d := sameBackup(cur, b); d != "" {
					return &Conflict{Cluster: cluster, What: "backup " + b.Name, Detail: "the catalog holds another backup under this name: " + d}
				}
				continue
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			data, err := json.Marshal(b)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO walgate.backups (cluster, name, state, record) VALUES ($1, $2, $3, $4)`,
				cluster, b.Name, string(b.State), data); err != nil {
				return err
			}
			added++
		}
		if added > 0 {
			return bump(ctx, tx, cluster)
		}
		return nil
	})
	return added, err
}

// LoadDrills adds a cluster's drill reports (oldest first) that the
// catalog lacks. Reports have no name: one is the same as another when it
// arrived at the same instant with the same bytes, and each is added as
// many times as the list holds it more often than the catalog.
func (c *Catalog) LoadDrills(ctx context.Context, cluster string, list []index.DrillRecord, dry bool) (int, error) {
	if len(list) == 0 {
		return 0, nil
	}
	added := 0
	err := c.load(ctx, "loading drill reports", dry, func(ctx context.Context, tx pgx.Tx) error {
		have := map[string]int{}
		rows, err := tx.Query(ctx, `SELECT received_ns, record FROM walgate.drills WHERE cluster = $1`, cluster)
		if err != nil {
			return err
		}
		var ns int64
		var rec []byte
		if _, err := pgx.ForEachRow(rows, []any{&ns, &rec}, func() error {
			have[strconv.FormatInt(ns, 10)+" "+string(rec)]++
			return nil
		}); err != nil {
			return err
		}
		for _, d := range list {
			data, err := json.Marshal(d)
			if err != nil {
				return err
			}
			k := strconv.FormatInt(d.Received.UnixNano(), 10) + " " + string(data)
			if have[k] > 0 {
				have[k]--
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO walgate.drills (cluster, received_ns, passed, record) VALUES ($1, $2, $3, $4)`,
				cluster, d.Received.UnixNano(), d.Passed, data); err != nil {
				return err
			}
			added++
		}
		if added > 0 {
			return bump(ctx, tx, cluster)
		}
		return nil
	})
	return added, err
}

// LoadTokens adds the token records the catalog lacks, keyed by the
// token's SHA-256 as stored (the secret is never known). A hash the
// catalog holds under another token ID, or a token ID it holds under
// another hash, is a Conflict; the same token is left as the catalog has
// it. A token's cluster row is made when missing.
func (c *Catalog) LoadTokens(ctx context.Context, tokens map[[32]byte]index.Token, dry bool) (int, error) {
	if len(tokens) == 0 {
		return 0, nil
	}
	hashes := make([][32]byte, 0, len(tokens))
	for h := range tokens {
		hashes = append(hashes, h)
	}
	slices.SortFunc(hashes, func(a, b [32]byte) int { return slices.Compare(a[:], b[:]) })
	added := 0
	err := c.load(ctx, "loading tokens", dry, func(ctx context.Context, tx pgx.Tx) error {
		for _, h := range hashes {
			t := tokens[h]
			rows, err := tx.Query(ctx, `SELECT hash, id FROM walgate.tokens WHERE hash = $1 OR id = $2`, h[:], t.ID)
			if err != nil {
				return err
			}
			same := false
			var clash error
			var hash []byte
			var id string
			if _, err := pgx.ForEachRow(rows, []any{&hash, &id}, func() error {
				switch {
				case string(hash) == string(h[:]) && id == t.ID:
					same = true
				case string(hash) == string(h[:]):
					clash = &Conflict{What: "token " + t.ID, Detail: fmt.Sprintf("the catalog holds its secret's hash under the token ID %s", id)}
				default:
					clash = &Conflict{What: "token " + t.ID, Detail: "the catalog holds a token with this ID and another secret"}
				}
				return nil
			}); err != nil {
				return err
			}
			if clash != nil {
				return clash
			}
			if same {
				continue
			}
			if !t.AllClusters {
				if err := ensureCluster(ctx, tx, t.Cluster); err != nil {
					return err
				}
			}
			data, err := json.Marshal(t)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO walgate.tokens (hash, id, cluster, record) VALUES ($1, $2, $3, $4)`,
				h[:], t.ID, t.Cluster, data); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	return added, err
}

// LoadCopies adds queued copies to backend (in queue order) that the
// queue lacks. A queued copy has no name: one is the same as another
// when its record has the same bytes, and each is added as many times as
// the list holds it more often than the queue.
func (c *Catalog) LoadCopies(ctx context.Context, backend string, copies []index.Copy, dry bool) (int, error) {
	if len(copies) == 0 {
		return 0, nil
	}
	added := 0
	err := c.load(ctx, "loading the replication queue of "+backend, dry, func(ctx context.Context, tx pgx.Tx) error {
		keys := make([]string, len(copies))
		for i, cp := range copies {
			keys[i] = cp.Key
		}
		have := map[string]int{}
		rows, err := tx.Query(ctx, `SELECT record FROM walgate.replication WHERE backend = $1 AND key = ANY($2)`, backend, keys)
		if err != nil {
			return err
		}
		var rec []byte
		if _, err := pgx.ForEachRow(rows, []any{&rec}, func() error { have[string(rec)]++; return nil }); err != nil {
			return err
		}
		var newKeys []string
		var recs [][]byte
		var kinds []string
		var backups []*string
		var nexts []*time.Time
		for _, cp := range copies {
			data, err := json.Marshal(cp)
			if err != nil {
				return err
			}
			if have[string(data)] > 0 {
				have[string(data)]--
				continue
			}
			newKeys = append(newKeys, cp.Key)
			recs = append(recs, data)
			// The columns the claim filters on, as enqueue writes them.
			kinds = append(kinds, string(cp.Kind))
			var backup *string
			if b := cp.Backup(); b != "" {
				backup = &b
			}
			backups = append(backups, backup)
			var next *time.Time
			if !cp.NextAttempt.IsZero() {
				next = &cp.NextAttempt
			}
			nexts = append(nexts, next)
		}
		if len(recs) == 0 {
			return nil
		}
		// WITH ORDINALITY keeps the queue order in the new seq values.
		tag, err := tx.Exec(ctx, `INSERT INTO walgate.replication (backend, key, record, kind, backup, next_attempt)
			SELECT $1, k, r, kd, b, n FROM unnest($2::text[], $3::bytea[], $4::text[], $5::text[], $6::timestamptz[])
				WITH ORDINALITY AS t(k, r, kd, b, n, i) ORDER BY i`, backend, newKeys, recs, kinds, backups, nexts)
		if err != nil {
			return err
		}
		added = int(tag.RowsAffected())
		return nil
	})
	return added, err
}

// LoadTrends adds a cluster's hourly activity buckets that the catalog
// lacks; a bucket it holds already keeps its counts (statistics: a copy
// run twice must not count twice).
func (c *Catalog) LoadTrends(ctx context.Context, cluster string, buckets []index.TrendBucket, dry bool) (int, error) {
	if len(buckets) == 0 {
		return 0, nil
	}
	added := 0
	err := c.load(ctx, "loading trends", dry, func(ctx context.Context, tx pgx.Tx) error {
		for _, tb := range buckets {
			data, err := json.Marshal(tb.TrendCounts)
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO walgate.trends (cluster, hour, record) VALUES ($1, $2, $3) ON CONFLICT (cluster, hour) DO NOTHING`,
				cluster, trendHour(tb.Hour), data)
			if err != nil {
				return err
			}
			added += int(tag.RowsAffected())
		}
		return nil
	})
	return added, err
}

// Counts is how many records of each kind the catalog holds for one
// cluster, read straight from the tables (what a copy is verified by).
type Counts struct {
	Known   bool                      // the cluster has a row
	System  uint64                    // its system identifier (0: none recorded)
	WAL     int                       // WAL records
	Briefs  int                       // WAL records with a brief record
	Backups map[index.BackupState]int // backup records by state
	Drills  int                       // drill reports
	Tokens  int                       // tokens bound to the cluster
	Trends  int                       // hourly activity buckets
	Queued  map[string]int            // queued copies of its objects, by backend (see QueueCounts)
}

// CountsOf reads the record counts of cluster.
func (c *Catalog) CountsOf(ctx context.Context, cluster string) (Counts, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ScanTimeout)
	defer cancel()
	n := Counts{Backups: map[index.BackupState]int{}}
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var sys []byte
		err := tx.QueryRow(ctx, `SELECT system FROM walgate.clusters WHERE name = $1`, cluster).Scan(&sys)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		n.Known = true
		if sys != nil {
			var s index.ClusterSystem
			if err := decode(sys, &s); err != nil {
				return err
			}
			n.System = s.SystemIdentifier
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE length(brief) > 0) FROM walgate.wal WHERE cluster = $1`, cluster).Scan(&n.WAL, &n.Briefs); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM walgate.drills WHERE cluster = $1`, cluster).Scan(&n.Drills); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM walgate.tokens WHERE cluster = $1`, cluster).Scan(&n.Tokens); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM walgate.trends WHERE cluster = $1`, cluster).Scan(&n.Trends); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT state, count(*) FROM walgate.backups WHERE cluster = $1 GROUP BY state`, cluster)
		if err != nil {
			return err
		}
		var state string
		var k int
		_, err = pgx.ForEachRow(rows, []any{&state, &k}, func() error { n.Backups[index.BackupState(state)] = k; return nil })
		return err
	})
	return n, c.wrap("counting the records of cluster "+cluster, err)
}

// QueueCounts counts the queued copies per cluster and backend, in one
// scan of the queue.
func (c *Catalog) QueueCounts(ctx context.Context) (map[string]map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ScanTimeout)
	defer cancel()
	out := map[string]map[string]int{}
	rows, err := c.pool.Query(ctx, `SELECT convert_from(record, 'UTF8')::jsonb->>'cluster', backend, count(*)
		FROM walgate.replication GROUP BY 1, 2`)
	if err != nil {
		return nil, c.wrap("counting the replication queue", err)
	}
	var cluster *string
	var backend string
	var k int
	_, err = pgx.ForEachRow(rows, []any{&cluster, &backend, &k}, func() error {
		cl := ""
		if cluster != nil {
			cl = *cluster
		}
		if out[cl] == nil {
			out[cl] = map[string]int{}
		}
		out[cl][backend] += k
		return nil
	})
	return out, c.wrap("counting the replication queue", err)
}
