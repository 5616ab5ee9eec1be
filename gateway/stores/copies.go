package stores

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/walgate/walgate/backends"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
	"github.com/walgate/walgate/index/pgname"
)

// WALMetadata is the metadata stored with a WAL object (at push time, and
// again with every copy of it).
func WALMetadata(cluster string, obj index.WALObject) map[string]string {
	o := layout.WALObject{Cluster: cluster, Name: obj.Name, SHA256: obj.SHA256, ContentID: obj.ContentID,
		PlainSize: obj.PlainSize, Compression: obj.Compression, Encryption: obj.Encryption, KeyFingerprint: obj.KeyFingerprint,
		TimelineParent: obj.TimelineParent}
	if obj.TimelineParent != 0 {
		o.SwitchLSN = pgname.LSN(obj.SwitchLSN).String()
	}
	return o.Metadata()
}

// WALCopy describes a WAL object as a replication copy (and its metadata
// as written at push time).
func WALCopy(cluster string, obj index.WALObject) index.Copy {
	return index.Copy{Cluster: cluster, Kind: index.CopyWAL, Name: obj.Name, Key: obj.Key, Size: obj.Size, SHA256: obj.SHA256,
		Metadata: WALMetadata(cluster, obj)}
}

// BackupFileCopy describes one object of a backup as a replication copy.
func BackupFileCopy(cluster string, b index.Backup, file string, rec index.BackupFile) index.Copy {
	return index.Copy{Cluster: cluster, Kind: index.CopyBackupFile, Name: b.Name, File: file, Key: rec.Key, Size: rec.Size,
		SHA256: rec.SHA256, Metadata: layout.WithKeyFingerprint(layout.BackupFileMetadata(cluster, b.Name, file, rec.Compression, rec.Encryption), rec.KeyFingerprint)}
}

// SentinelCopy describes a committed backup's sentinel as a replication
// copy (its SHA-256 is not cataloged: copies check the size).
func SentinelCopy(cluster string, b index.Backup) index.Copy {
	return index.Copy{Cluster: cluster, Kind: index.CopySentinel, Name: b.Name, Key: b.SentinelKey, Size: b.SentinelSize,
		Metadata: layout.SentinelMetadata(cluster, b.Name)}
}

// CompleteHolders is the group narrowed to the backends that hold every
// object of b, in group order, with the group's ack count.
func CompleteHolders(g *Group, b index.Backup) *Group {
	out := &Group{name: g.name, patterns: g.patterns, ack: g.ack, strict: g.strict}
	for _, st := range g.stores {
		all := true
		for _, f := range b.Files {
			if !slices.Contains(f.Holders(b.Backend), st.name) {
				all = false
				break
			}
		}
		if all {
			out.stores = append(out.stores, st)
		}
	}
	out.ack = min(out.ack, max(len(out.stores), 1))
	return out
}

// BackupCopies queues, for each backend of the group that lacks some of
// b, its missing objects in file-name order and then the sentinel.
func BackupCopies(g *Group, b index.Backup, sentinel index.Copy) []index.Copy {
	files := slices.Sorted(maps.Keys(b.Files))
	var out []index.Copy
	for _, st := range g.stores {
		if slices.Contains(b.Holders(), st.name) {
			continue
		}
		for _, f := range files {
			rec := b.Files[f]
			if slices.Contains(rec.Holders(b.Backend), st.name) {
				continue
			}
			cp := BackupFileCopy(sentinel.Cluster, b, f, rec)
			cp.Backend = st.name
			out = append(out, cp)
		}
		sc := sentinel
		sc.Backend = st.name
		out = append(out, sc)
	}
	return out
}

// DeleteEverywhere deletes key from the given backends and from the rest
// of the cluster's group (a copy may have landed before the catalog knew),
// and drops its queued copies.
func (s *Set) DeleteEverywhere(cluster, key string, holders []string) error {
	var errs []error
	if err := s.catalog.CancelCopies([]string{key}); err != nil {
		errs = append(errs, err)
	}
	g, _ := s.GroupFor(cluster)
	for _, st := range s.readOrder(g, holders) {
		if err := st.b.Delete(context.Background(), key); err != nil && !errors.Is(err, backends.ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
		}
	}
	return errors.Join(errs...)
}
