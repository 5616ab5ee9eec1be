package rebuild

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// systemSighting is one object that names the PostgreSQL system of its
// cluster.
type systemSighting struct {
	id     uint64
	at     time.Time
	source string
}

// writeSystems records each cluster's system (index.ClusterSystem) from
// what the objects say: the system-identifier metadata of WAL objects and
// the SystemIdentifier of committed backups' sentinels. When they name
// several systems (archived before the gateway compared them), the one
// seen last is recorded, so that the system archiving now is not refused;
// a note says so.
func (r *rebuildState) writeSystems(cat *index.Catalog, wals []*walItem, groups []*backupGroup) error {
	seen := map[string][]systemSighting{}
	for _, w := range wals {
		v := w.info.Metadata[layout.MetaSystemIdentifier]
		if !w.ok || v == "" {
			continue
		}
		if id, err := strconv.ParseUint(v, 10, 64); err == nil && id != 0 {
			seen[w.cluster] = append(seen[w.cluster], systemSighting{id, w.info.Modified.UTC(), "WAL " + w.name})
		}
	}
	done := map[string]bool{}
	for _, g := range groups {
		if done[g.cluster] {
			continue
		}
		done[g.cluster] = true
		bs, err := cat.Backups(g.cluster, index.BackupCommitted)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if b.Info.SystemIdentifier != 0 {
				seen[g.cluster] = append(seen[g.cluster], systemSighting{b.Info.SystemIdentifier, b.Info.FinishTime.UTC(), "backup " + b.Name})
			}
		}
	}
	for cluster, ss := range seen {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].at.Before(ss[j].at) })
		last := ss[len(ss)-1]
		ids := map[uint64]bool{}
		for _, s := range ss {
			ids[s.id] = true
		}
		if len(ids) > 1 {
			r.note("cluster %s holds objects of %d PostgreSQL systems; recorded the newest, %d (%s), whose pushes are accepted: those of the others are refused", cluster, len(ids), last.id, last.source)
		}
		if _, err := cat.ClaimSystem(cluster, index.ClusterSystem{SystemIdentifier: last.id, Since: time.Now().UTC(),
			Source: fmt.Sprintf("catalog rebuild (%s)", last.source)}); err != nil {
			return err
		}
	}
	return nil
}
