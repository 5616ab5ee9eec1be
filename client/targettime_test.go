package client

import (
	"strings"
	"testing"
	"time"
)

func TestParseTargetTime(t *testing.T) {
	want := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	for _, in := range []string{"2026-03-01T11:00:00Z", "2026-03-01T12:00:00+01:00", "2026-03-01 12:00:00+01",
		"2026-03-01 12:00:00+0100", "2026-03-01 11:00:00 UTC", " 2026-03-01 06:00:00-05 ", "2026-03-01 12:00+01:00"} {
		got, conf, err := ParseTargetTime(in)
		if err != nil || !got.Equal(want) || conf != "2026-03-01 11:00:00+00" {
			t.Errorf("ParseTargetTime(%q) = %v %q %v", in, got, conf, err)
		}
	}
	if _, conf, err := ParseTargetTime("2026-03-01 11:00:00.25+00"); err != nil || conf != "2026-03-01 11:00:00.25+00" {
		t.Errorf("fraction: %q %v", conf, err)
	}
	for _, in := range []string{"yesterday", "now", "2026-03-01", "2026-03-01 12:00:00", "2026-03-01T12:00:00", "12:00:00+00",
		"2026-03-01 12:00:00 CET", "2026-13-01 12:00:00+00", ""} {
		if _, _, err := ParseTargetTime(in); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseTargetTime(%q) accepted or unhelpful: %v", in, err)
		}
	}
}
