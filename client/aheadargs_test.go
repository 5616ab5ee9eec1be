package client_test

import (
	"errors"
	"testing"

	"github.com/walgate/walgate/client"
)

// The background verbs take only what their starters pass: anything else
// is a usage error naming what is wrong, and nothing is done with it.
func TestBackgroundVerbArgs(t *testing.T) {
	const seg = "000000010000000000000003"
	for _, args := range [][]string{
		{"/data/pg_wal", seg},
		{"/srv/x/pg_wal", "0000000A00000001000000FF"},
	} {
		dir, name, err := client.ParsePushAheadArgs(args)
		if err != nil || dir != args[0] || name != args[1] {
			t.Errorf("wal-push-ahead %q: %q %q %v", args, dir, name, err)
		}
	}
	for _, args := range [][]string{
		nil,
		{"/data/pg_wal"},
		{"/data/pg_wal", seg, seg},
		{"pg_wal", seg},          // relative: the detached process has no data directory
		{"/data/pg_wal", "../x"}, // not a WAL name
		{"/data/pg_wal", seg + ".partial"},
		{"/data/pg_wal", "00000002.history"},
		{"/data/pg_wal", seg + ".00000028.backup"},
		{"/data/pg_wal", "000000010000000000000003/"},
	} {
		if _, _, err := client.ParsePushAheadArgs(args); !errors.Is(err, client.ErrPushAheadArgs) {
			t.Errorf("wal-push-ahead %q: %v, want a usage error", args, err)
		}
	}
	if _, names, err := client.ParsePrefetchArgs([]string{"/data/pg_wal", seg, "000000010000000000000004"}); err != nil || len(names) != 2 {
		t.Errorf("wal-prefetch: %q %v", names, err)
	}
	for _, args := range [][]string{
		nil,
		{"/data/pg_wal"},
		{"/data/not_wal", seg},
		{"/data/pg_wal", "00000002.history"},
		{"/data/pg_wal", seg, "../../etc/passwd"},
	} {
		if _, _, err := client.ParsePrefetchArgs(args); !errors.Is(err, client.ErrPrefetchArgs) {
			t.Errorf("wal-prefetch %q: %v, want a usage error", args, err)
		}
	}
}
