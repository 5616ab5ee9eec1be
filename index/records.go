package index

import (
	"fmt"
	"slices"
)

// The record rules below are what every catalog implementation applies to
// its records; they do no I/O, so the bbolt and PostgreSQL catalogs share
// them and cannot drift apart.

// EncodeBrief is the brief record of o (see walbrief.go for the format).
func EncodeBrief(o WALObject) []byte { return encodeBrief(o) }

// DecodeBrief reads a brief record made by EncodeBrief.
func DecodeBrief(data []byte, w *WALBrief) error { return decodeBrief(data, w) }

// ApplyChange applies one lifecycle change to the WAL record: a class
// change sets the copy's class; a deletion drops the backend from the
// holders. It returns false when no holder is left (the record goes).
func (o *WALObject) ApplyChange(ch CopyChange) bool {
	if !ch.Deleted {
		o.Classes = setClass(o.Classes, ch.Backend, ch.Class)
		return true
	}
	holders := slices.DeleteFunc(slices.Clone(o.Holders()), func(h string) bool { return h == ch.Backend })
	if len(holders) == 0 {
		return false
	}
	o.Backends = holders
	if o.Backend == ch.Backend {
		o.Backend = holders[0]
	}
	delete(o.Classes, ch.Backend)
	return true
}

// AddCopy records that cp's backend now holds the WAL object, in its
// write class; false when cp is of another object (the name was
// re-pushed under another key meanwhile).
func (o *WALObject) AddCopy(cp Copy) bool {
	if o.Key != cp.Key {
		return false
	}
	o.Backends = addHolder(o.Holders(), cp.Backend)
	delete(o.Classes, cp.Backend) // a new copy is in the write class
	return true
}

// AddCopy records that cp's backend now holds the backup's file or
// sentinel cp names; false when the backup no longer has that object.
func (b *Backup) AddCopy(cp Copy) bool {
	if cp.Kind == CopySentinel {
		if b.SentinelKey != cp.Key {
			return false
		}
		b.Backends = addHolder(b.Holders(), cp.Backend)
		delete(b.SentinelClasses, cp.Backend)
		return true
	}
	f, ok := b.Files[cp.File]
	if !ok || f.Key != cp.Key {
		return false
	}
	f.Backends = addHolder(f.Holders(b.Backend), cp.Backend)
	delete(f.Classes, cp.Backend)
	b.Files[cp.File] = f
	return true
}

// ApplyClassChanges records class changes of the backup's objects (Name is
// the object key: a file's or the sentinel's).
func (b *Backup) ApplyClassChanges(changes []CopyChange) error {
	byKey := map[string]string{}
	for f, rec := range b.Files {
		byKey[rec.Key] = f
	}
	for _, ch := range changes {
		if ch.Deleted {
			return fmt.Errorf("backup %s: a deletion is not a class change", b.Name)
		}
		if ch.Name == b.SentinelKey {
			b.SentinelClasses = setClass(b.SentinelClasses, ch.Backend, ch.Class)
			continue
		}
		if f, ok := byKey[ch.Name]; ok {
			rec := b.Files[f]
			rec.Classes = setClass(rec.Classes, ch.Backend, ch.Class)
			b.Files[f] = rec
		}
	}
	return nil
}

// MarkDeleting moves a committed backup to BackupDeleting; a backup
// already deleting stays as it is; any other state is an error.
func (b *Backup) MarkDeleting(cluster string) error {
	switch b.State {
	case BackupCommitted:
		b.State = BackupDeleting
	case BackupDeleting:
	default:
		return fmt.Errorf("backup %s of cluster %s is %s, not committed", b.Name, cluster, b.State)
	}
	return nil
}

// Add counts one queued copy into the summary.
func (qs *QueueStats) Add(cp Copy) {
	qs.add(cp)
	if qs.ByCluster == nil {
		qs.ByCluster = map[string]QueueStats{}
	}
	pc := qs.ByCluster[cp.Cluster]
	pc.add(cp)
	qs.ByCluster[cp.Cluster] = pc
}

func (qs *QueueStats) add(cp Copy) {
	qs.Count++
	qs.Bytes += cp.Size
	if qs.Oldest.IsZero() || cp.Enqueued.Before(qs.Oldest) {
		qs.Oldest = cp.Enqueued
	}
	if cp.LastErrorAt.After(qs.LastErrorAt) {
		qs.LastError, qs.LastErrorAt = cp.LastError, cp.LastErrorAt
	}
}

// CheckWALRecord is Check's verdict on one WAL record stored under name
// with brief record brief: "" when sound, else the problem.
func CheckWALRecord(cluster, name string, o WALObject, brief []byte) string {
	var w WALBrief
	switch {
	case o.Name != name:
		return fmt.Sprintf("%s/%s: record names %q", cluster, name, o.Name)
	case o.Key == "" || len(o.SHA256) != 64 || o.Size < 0 || o.PlainSize < 0 || o.ContentID == "":
		return fmt.Sprintf("%s/%s: incomplete record", cluster, name)
	case decodeBrief(brief, &w) != nil:
		return fmt.Sprintf("%s/%s: no readable brief record", cluster, name)
	case !sameBrief(o, w):
		return fmt.Sprintf("%s/%s: the brief record disagrees with the record", cluster, name)
	}
	return ""
}

// CheckToken is Check's verdict on one token record.
func CheckToken(t Token) bool {
	return t.ID != "" && (t.Cluster == "") == t.AllClusters && len(t.Scopes) > 0
}

// CheckSystemRecord is Check's verdict on a cluster's system record.
func CheckSystemRecord(s ClusterSystem) bool { return s.SystemIdentifier != 0 && !s.Since.IsZero() }
