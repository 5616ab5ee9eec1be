package lifecycle

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Class is an abstract storage class. Each Backend maps it to its own
// class name. From Hot to Archive each class is cheaper to keep and dearer
// (or slower) to read.
type Class string

const (
	Hot     Class = "hot"
	Warm    Class = "warm"
	Cold    Class = "cold"
	Archive Class = "archive"
)

// Classes are the abstract classes, warmest first.
var Classes = []Class{Hot, Warm, Cold, Archive}

// rank orders classes from hot (0) to archive (3); -1 for an unknown class.
func (c Class) rank() int {
	switch c {
	case Hot:
		return 0
	case Warm:
		return 1
	case Cold:
		return 2
	case Archive:
		return 3
	}
	return -1
}

// ObjectKind is what a tiering rule applies to.
type ObjectKind string

const (
	// WAL: every WAL archive file (segments, partial segments, backup
	// history files; timeline history files are never tiered).
	WAL ObjectKind = "wal"
	// BackupData: a backup's tar partitions (part_NNN, pg_control,
	// backup_label).
	BackupData ObjectKind = "backup"
	// Metadata: a backup's metadata.json, files_metadata.json and sentinel.
	Metadata ObjectKind = "metadata"
)

// Tier says: objects of Kind older than After belong in Class. The age of
// a WAL file is counted from when it was stored, of a backup's objects
// from the backup's finish time.
type Tier struct {
	Kind  ObjectKind    `yaml:"kind" json:"kind"`
	After time.Duration `yaml:"after" json:"after"`
	Class Class         `yaml:"class" json:"class"`
}

// Policy is the tiering and retention policy. The zero Policy keeps
// everything where it is.
type Policy struct {
	// Tiers, per kind, from young to old. An object younger than every
	// rule of its kind belongs in Hot. Objects only ever move colder.
	Tiers []Tier `yaml:"tiers" json:"tiers"`
	// RetainFull keeps the newest RetainFull full backups with the deltas
	// built on them (0: no count rule).
	RetainFull int `yaml:"retain_full" json:"retain_full"`
	// PITRWindow keeps what is needed to recover to any point in the last
	// PITRWindow: the newest backup finished before the window starts,
	// every backup after it, and the WAL from its start on (0: no window).
	// With neither RetainFull nor PITRWindow set, retention is off and
	// nothing is deleted.
	PITRWindow time.Duration `yaml:"pitr_window" json:"pitr_window"`
	// RetainBackups keeps the newest RetainBackups backups of any kind
	// with their chains, and KeepFrom keeps the named backup and every
	// backup finished after it. They serve one-off deletions
	// (walgate-client delete retain N, delete before NAME), not the
	// config.
	RetainBackups int    `yaml:"-" json:"retain_backups,omitempty"`
	KeepFrom      string `yaml:"-" json:"keep_from,omitempty"`
	// AllowRehydrationInWindow lets tiering move what the PITR window
	// needs into classes that must be rehydrated before a read (S3
	// GLACIER and DEEP_ARCHIVE, Azure Archive). Off, such moves stop at
	// the coldest class that reads instantly.
	AllowRehydrationInWindow bool `yaml:"allow_rehydration_classes_in_window" json:"allow_rehydration_classes_in_window"`
	// Prices are monthly prices per GiB for each class, for the cost
	// estimate only.
	Prices map[Class]float64 `yaml:"prices" json:"prices"`
}

// ParsePolicy reads a policy from YAML strictly (unknown keys are errors)
// and validates it.
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return Policy{}, fmt.Errorf("lifecycle policy: %w", err)
	}
	return p, p.Validate()
}

// RetentionOn says whether any retention rule is set.
func (p Policy) RetentionOn() bool {
	return p.RetainFull > 0 || p.PITRWindow > 0 || p.RetainBackups > 0 || p.KeepFrom != ""
}

// Validate reports every problem of the policy at once.
func (p Policy) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	byKind := map[ObjectKind][]Tier{}
	for i, t := range p.Tiers {
		switch t.Kind {
		case WAL, BackupData, Metadata:
		default:
			bad("tiers[%d]: kind %q: want wal, backup or metadata", i, t.Kind)
			continue
		}
		if t.Class.rank() < 0 {
			bad("tiers[%d]: class %q: want hot, warm, cold or archive", i, t.Class)
			continue
		}
		if t.After <= 0 {
			bad("tiers[%d]: after %s: want a positive age such as 168h (objects start hot)", i, t.After)
			continue
		}
		byKind[t.Kind] = append(byKind[t.Kind], t)
	}
	for kind, ts := range byKind {
		// By age, and rules of the same age by class: each rule is then
		// checked against the coldest rule younger than it, whatever the
		// order they were written in.
		slices.SortFunc(ts, func(a, b Tier) int {
			return cmp.Or(cmp.Compare(a.After, b.After), cmp.Compare(a.Class.rank(), b.Class.rank()))
		})
		for i := 1; i < len(ts); i++ {
			if ts[i].After == ts[i-1].After {
				bad("tiers: two %s rules for the same age %s", kind, ts[i].After)
			} else if ts[i].Class.rank() <= ts[i-1].Class.rank() {
				bad("tiers: %s goes to %s after %s but to %s after %s: each older rule must name a colder class", kind, ts[i-1].Class, ts[i-1].After, ts[i].Class, ts[i].After)
			}
		}
	}
	if p.RetainFull < 0 {
		bad("retain_full %d: want 0 (no count rule) or more", p.RetainFull)
	}
	if p.RetainBackups < 0 {
		bad("retain %d: want 0 (no count rule) or more", p.RetainBackups)
	}
	if p.PITRWindow < 0 {
		bad("pitr_window %s: want 0 (no window) or a positive duration such as 336h", p.PITRWindow)
	}
	for c, v := range p.Prices {
		if c.rank() < 0 {
			bad("prices: class %q: want hot, warm, cold or archive", c)
		}
		if v < 0 {
			bad("prices: %s: %g is negative", c, v)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return errors.New("lifecycle policy: " + strings.Join(errs, "; "))
}

// target is the class the tier rules give an object of kind at age, and
// the rule that gave it (nil: none applies, Hot).
func (p Policy) target(kind ObjectKind, age time.Duration) (Class, *Tier) {
	var best *Tier
	for i := range p.Tiers {
		t := &p.Tiers[i]
		if t.Kind == kind && age >= t.After && (best == nil || t.After > best.After) {
			best = t
		}
	}
	if best == nil {
		return Hot, nil
	}
	return best.Class, best
}
