package pgname

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Timeline is a PostgreSQL timeline ID. Timeline 0 does not exist.
type Timeline uint32

// LSN is a PostgreSQL log sequence number: a byte position in the WAL.
type LSN uint64

// String formats the LSN as PostgreSQL does ("16/B374D848").
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN reads an LSN in PostgreSQL's text form "X/Y" (hex, either case).
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("invalid LSN %q: want the form X/Y in hex, e.g. 0/16B3748", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("invalid LSN %q: want the form X/Y in hex, e.g. 0/16B3748", s)
	}
	return LSN(h<<32 | l), nil
}

// FileKind says which of the files PostgreSQL hands to archive_command a
// name denotes.
type FileKind int

const (
	// Segment is a WAL segment: 24 upper-case hex digits.
	Segment FileKind = iota + 1
	// History is a timeline history file: 8 hex digits + ".history".
	History
	// BackupHistory is a backup history file written by pg_backup_stop:
	// 24 hex digits + "." + 8 hex digits + ".backup".
	BackupHistory
	// Partial is the last, incomplete segment of an old timeline, archived
	// at promotion: 24 hex digits + ".partial".
	Partial
)

func (k FileKind) String() string {
	switch k {
	case Segment:
		return "segment"
	case History:
		return "history"
	case BackupHistory:
		return "backup_history"
	case Partial:
		return "partial"
	}
	return "unknown"
}

// WALFile is a parsed, validated WAL archive file name.
type WALFile struct {
	Name     string // exactly as given, e.g. "000000010000000A00000042"
	Kind     FileKind
	Timeline Timeline
	// Log and Seg are the two halves of the segment number; zero for
	// history files.
	Log, Seg uint32
}

// ErrInvalidName is wrapped by every error ParseWALFile returns.
var ErrInvalidName = errors.New("invalid WAL file name")

// MaxNameLen bounds any WAL archive file name ("...partial" is the longest form).
const MaxNameLen = 40

// ParseWALFile checks name against PostgreSQL's WAL archive naming and
// returns what it denotes. Only upper-case hex is accepted, as PostgreSQL
// writes it; a path separator, "..", or anything else is an error.
func ParseWALFile(name string) (WALFile, error) {
	bad := func(why string) (WALFile, error) {
		return WALFile{}, fmt.Errorf("%w %q: %s", ErrInvalidName, clip(name), why)
	}
	if len(name) > MaxNameLen {
		return bad("too long")
	}
	switch {
	case len(name) == 24:
		if !isHex(name) {
			return bad("a WAL segment name is 24 upper-case hex digits")
		}
		return segmentFile(name, name, Segment)
	case len(name) == 8+len(".history") && strings.HasSuffix(name, ".history"):
		if !isHex(name[:8]) {
			return bad("a timeline history name is 8 upper-case hex digits + .history")
		}
		tli := parseHex32(name[:8])
		if tli == 0 {
			return bad("timeline 0 does not exist")
		}
		return WALFile{Name: name, Kind: History, Timeline: Timeline(tli)}, nil
	case len(name) == 24+len(".partial") && strings.HasSuffix(name, ".partial"):
		if !isHex(name[:24]) {
			return bad("a partial segment name is 24 upper-case hex digits + .partial")
		}
		return segmentFile(name, name[:24], Partial)
	case len(name) == 24+1+8+len(".backup") && strings.HasSuffix(name, ".backup") && name[24] == '.':
		if !isHex(name[:24]) || !isHex(name[25:33]) {
			return bad("a backup history name is 24 hex digits + . + 8 hex digits + .backup")
		}
		return segmentFile(name, name[:24], BackupHistory)
	}
	return bad("not a WAL segment, timeline history, backup history or partial segment name")
}

func segmentFile(name, seg string, kind FileKind) (WALFile, error) {
	tli := parseHex32(seg[0:8])
	if tli == 0 {
		return WALFile{}, fmt.Errorf("%w %q: timeline 0 does not exist", ErrInvalidName, name)
	}
	return WALFile{Name: name, Kind: kind, Timeline: Timeline(tli),
		Log: parseHex32(seg[8:16]), Seg: parseHex32(seg[16:24])}, nil
}

// SegmentName returns the 24-hex WAL segment name for the segment that
// holds lsn on timeline tli, for a cluster with the given segment size.
func SegmentName(tli Timeline, lsn LSN, segSize uint64) string {
	s := SegmentSize(segSize)
	return s.Name(tli, s.Of(lsn))
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func parseHex32(s string) uint32 {
	v, _ := strconv.ParseUint(s, 16, 32)
	return uint32(v)
}

// clip keeps error messages short when a hostile name is long.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// HistoryEntry is one line of a timeline history file: timeline Parent
// ended at Switch, where the next timeline branched off.
type HistoryEntry struct {
	Parent Timeline
	Switch LSN
}

// ParseHistory reads the text of timeline tli's history file
// ("0000000N.history"): one line per ancestor, "parentTLI<TAB>X/Y<TAB>reason",
// oldest first, with blank lines and lines starting with # ignored, as
// PostgreSQL's readTimeLineHistory does. It returns the entries; the last
// is the timeline's immediate parent. Parents must increase and stay below
// tli, and switch points must not go backwards.
func ParseHistory(text string, tli Timeline) ([]HistoryEntry, error) {
	var out []HistoryEntry
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return nil, fmt.Errorf("timeline history line %d: want \"parent-timeline switch-LSN reason\", got %q", i+1, clipLine(line))
		}
		p, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("timeline history line %d: %q is not a timeline ID", i+1, clipLine(fields[0]))
		}
		lsn, err := ParseLSN(fields[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history line %d: %w", i+1, err)
		}
		e := HistoryEntry{Parent: Timeline(p), Switch: lsn}
		if n := len(out); n > 0 && (e.Parent <= out[n-1].Parent || e.Switch < out[n-1].Switch) {
			return nil, fmt.Errorf("timeline history line %d: timelines must increase and switch points must not go back", i+1)
		}
		if tli != 0 && e.Parent >= tli {
			return nil, fmt.Errorf("timeline history line %d: parent timeline %d is not below timeline %d", i+1, e.Parent, tli)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("timeline history: no entries")
	}
	return out, nil
}

func clipLine(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
