package client

import (
	"fmt"
	"strings"
	"time"
)

// targetTimeLayouts are the forms of recovery_target_time walgate takes:
// RFC 3339 and PostgreSQL's own timestamp output, each with a zone, so the
// target means the same instant whatever the server's TimeZone.
var targetTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02 15:04Z07:00",
	"2006-01-02 15:04Z07",
}

// ParseTargetTime reads a recovery target time strictly and returns it
// with the form written to postgresql.auto.conf, which PostgreSQL reads as
// that same instant ("2026-03-01 11:00:00+00"). Anything else (a date
// without a time, a time without a zone, "yesterday") is refused with the
// forms that are accepted.
func ParseTargetTime(s string) (time.Time, string, error) {
	in := strings.TrimSpace(s)
	for _, l := range targetTimeLayouts {
		t, err := time.Parse(l, in)
		if err != nil {
			continue
		}
		if strings.HasSuffix(l, "MST") {
			// Go accepts any abbreviation here without knowing its
			// offset; only UTC and GMT are unambiguous.
			if z, _ := t.Zone(); z != "UTC" && z != "GMT" {
				continue
			}
		}
		return t, t.UTC().Format("2006-01-02 15:04:05.999999") + "+00", nil
	}
	return time.Time{}, "", fmt.Errorf("%q is not a time walgate can hand PostgreSQL as recovery_target_time: "+
		"give a date, a time and a zone, as RFC 3339 (2026-03-01T12:00:00Z, 2026-03-01T12:00:00+01:00) or "+
		"PostgreSQL's timestamp form ('2026-03-01 12:00:00+01', '2026-03-01 12:00:00.5 UTC')", s)
}
