package basebackup

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseTablespaceMap reads PostgreSQL's tablespace_map (as pg_backup_stop
// returns it and the label tar holds it): lines "oid path",
// where a backslash escapes the next character (newlines, carriage
// returns and backslashes in paths).
func ParseTablespaceMap(b []byte) ([][2]string, error) {
	var out [][2]string
	var line []byte
	escaped := false
	flush := func() error {
		if len(line) == 0 {
			return nil
		}
		oid, path, ok := strings.Cut(string(line), " ")
		path = strings.TrimLeft(path, " ")
		if !ok || !IsOID(oid) || path == "" {
			return fmt.Errorf("bad line %q", line)
		}
		out = append(out, [2]string{oid, path})
		line = line[:0]
		return nil
	}
	for _, ch := range b {
		switch {
		case !escaped && (ch == '\n' || ch == '\r'):
			if err := flush(); err != nil {
				return nil, err
			}
		case !escaped && ch == '\\':
			escaped = true
		default:
			line = append(line, ch)
			escaped = false
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// TablespaceMapLine is one line of a tablespace_map: the OID, a space,
// and the path with newlines, carriage returns and backslashes escaped by
// a backslash, as PostgreSQL writes and reads them.
func TablespaceMapLine(oid, p string) string {
	var b strings.Builder
	b.WriteString(oid + " ")
	for _, ch := range []byte(p) {
		if ch == '\n' || ch == '\r' || ch == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(ch)
	}
	b.WriteByte('\n')
	return b.String()
}

// IsOID reports whether s is an object identifier in decimal: 1 to
// 4294967295, no sign, no leading spaces.
func IsOID(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n > 0
}
