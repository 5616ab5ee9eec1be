package gateway

import (
	"encoding/json"
	"time"

	"github.com/walgate/walgate/gateway/protocol"
	"github.com/walgate/walgate/index"
)

// ClusterStatus is one row of 'walgate status'.
type ClusterStatus struct {
	Cluster     string                  `json:"cluster"`
	WALFiles    int                     `json:"wal_files"`
	WALBytes    int64                   `json:"wal_bytes"`
	LastWAL     string                  `json:"last_wal,omitempty"`
	LastWALAt   time.Time               `json:"last_wal_at,omitempty"`
	Backups     int                     `json:"backups"`
	LastBackup  *protocol.BackupSummary `json:"last_backup,omitempty"`
	OpenBackups int                     `json:"open_backups"`
	LastDrill   *protocol.DrillReport   `json:"last_drill,omitempty"`
}

// Status summarises every cluster in the catalog.
func Status(cat *index.Catalog) ([]ClusterStatus, error) {
	clusters, err := cat.Clusters()
	if err != nil {
		return nil, err
	}
	out := make([]ClusterStatus, 0, len(clusters))
	for _, cl := range clusters {
		st := ClusterStatus{Cluster: cl.Name}
		err := cat.ListWAL(cl.Name, "", func(o index.WALObject) error {
			st.WALFiles++
			st.WALBytes += o.Size
			if len(o.Name) == 24 && o.Name > st.LastWAL {
				st.LastWAL = o.Name
			}
			if o.StoredAt.After(st.LastWALAt) {
				st.LastWALAt = o.StoredAt
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		backups, err := cat.Backups(cl.Name, "")
		if err != nil {
			return nil, err
		}
		for _, b := range backups {
			if b.State == index.BackupOpen {
				st.OpenBackups++
				continue
			}
			st.Backups++
			s := summary(b)
			st.LastBackup = &s
		}
		drills, err := cat.Drills(cl.Name, 1)
		if err != nil {
			return nil, err
		}
		if len(drills) == 1 {
			var rep protocol.DrillReport
			if json.Unmarshal(drills[0].Report, &rep) == nil {
				st.LastDrill = &rep
			}
		}
		out = append(out, st)
	}
	return out, nil
}
