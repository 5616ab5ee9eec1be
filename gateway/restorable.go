package gateway

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/walgate/walgate/gateway/fleet"
	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// unrestorable says why backup b of list (a cluster's committed backups)
// cannot be restored, or "" when nothing known stands in the way: a link
// of its delta chain is missing from the catalog, or an object of it or of
// its chain has no good copy on any store as far as the gateway found
// (reads, repairs and drills mark damaged and missing copies).
func (s *Server) unrestorable(list []index.Backup, b index.Backup) string {
	byName := make(map[string]index.Backup, len(list))
	for _, x := range list {
		byName[x.Name] = x
	}
	cur := b
	for range len(list) + 1 {
		if why := s.damagedObject(cur); why != "" {
			if cur.Name == b.Name {
				return why
			}
			return fmt.Sprintf("backup %s of its chain: %s", cur.Name, why)
		}
		parent := cur.Info.DeltaFrom
		if parent == "" {
			return ""
		}
		next, ok := byName[parent]
		if !ok {
			return fmt.Sprintf("backup %s of its chain is missing", parent)
		}
		cur = next
	}
	return "its delta chain loops"
}

// damagedObject names an object of b that no store holds a good copy of,
// as far as the gateway found, or returns "".
func (s *Server) damagedObject(b index.Backup) string {
	if s.everyCopyBad(b.SentinelKey, b.Holders()) {
		return "its sentinel is damaged or missing on every store"
	}
	for _, name := range slices.Sorted(maps.Keys(b.Files)) {
		f := b.Files[name]
		if s.everyCopyBad(f.Key, f.Holders(b.Backend)) {
			return fmt.Sprintf("its object %s is damaged or missing on every store", name)
		}
	}
	return ""
}

// everyCopyBad reports whether every holder's copy of key was found
// damaged or missing.
func (s *Server) everyCopyBad(key string, holders []string) bool {
	if len(holders) == 0 {
		return false
	}
	for _, h := range holders {
		if !s.stores.IsBad(h, key) {
			return false
		}
	}
	return true
}

// summaries describes list for backup-list, each with what keeps it from
// being restored.
func (s *Server) summaries(list []index.Backup) []protocol.BackupSummary {
	out := make([]protocol.BackupSummary, 0, len(list))
	for _, b := range list {
		sum := fleet.BackupSummary(b)
		sum.Unrestorable = s.unrestorable(list, b)
		out = append(out, sum)
	}
	return out
}

// healthAnswer is a cluster's health as wal-verify reads it, with what
// the gateway found damaged beyond repair.
type healthAnswer struct {
	ClusterStatus
	// DamagedWAL lists the WAL files (segments, history files) of which
	// every stored copy was found damaged or missing.
	DamagedWAL []string `json:"damaged_wal,omitempty"`
	// NewestBackupUnrestorable says why the newest backup cannot be
	// restored; empty when nothing known stands in the way.
	NewestBackupUnrestorable string `json:"newest_backup_unrestorable,omitempty"`
}

// withDamage adds to st what the gateway found damaged in cluster.
func (s *Server) withDamage(cluster string, st ClusterStatus) (healthAnswer, error) {
	out := healthAnswer{ClusterStatus: st}
	list, err := s.catalog.Backups(cluster, index.BackupCommitted)
	if err != nil {
		return out, err
	}
	if len(list) > 0 {
		out.NewestBackupUnrestorable = s.unrestorable(list, list[len(list)-1])
	}
	prefix := cluster + "/wal_005/"
	seen := map[string]bool{}
	var names []string
	for _, key := range s.stores.BadKeys(prefix) {
		rest := strings.TrimPrefix(key, prefix)
		name := rest
		if i := strings.Index(rest, "."); i == 24 {
			name = rest[:24]
		} else if len(rest) > 8 && strings.HasPrefix(rest[8:], ".history") {
			name = rest[:8] + ".history"
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		obj, err := s.catalog.WAL(cluster, name)
		if err == nil && s.everyCopyBad(obj.Key, obj.Holders()) {
			out.DamagedWAL = append(out.DamagedWAL, name)
		}
	}
	return out, nil
}
