package main

import (
	"fmt"
	"testing"

	"github.com/walgate/walgate/client"
)

// wal-fetch's exit codes as PostgreSQL reads them: only a 404 from the
// catalog may end archive recovery (74); on a standby an unreachable or
// failing gateway is soft (1); everything else stops recovery (above 125).
func TestWALFetchCodes(t *testing.T) {
	t.Parallel()
	kind := func(k error) error { return &client.Error{Kind: k, Op: "fetch x", Message: "m"} }
	for _, c := range []struct {
		err      error
		recovery int
		standby  int
	}{
		{nil, 0, 0},
		{kind(client.ErrNotFound), 74, 74},
		{kind(client.ErrUnavailable), exitStopRecovery, 1},
		{kind(client.ErrIntegrity), exitStopRecovery, exitStopRecovery},
		{kind(client.ErrAuth), exitStopRecovery, exitStopRecovery},
		{kind(client.ErrRejected), exitStopRecovery, exitStopRecovery},
		{kind(client.ErrConflict), exitStopRecovery, exitStopRecovery},
		{usageError("bad"), exitStopRecovery, exitStopRecovery},
		{fmt.Errorf("something unforeseen"), exitStopRecovery, exitStopRecovery},
	} {
		if got := walFetchCode(c.err, false); got != c.recovery {
			t.Errorf("%v in archive recovery: exit %d, want %d", c.err, got, c.recovery)
		}
		if got := walFetchCode(c.err, true); got != c.standby {
			t.Errorf("%v on a standby: exit %d, want %d", c.err, got, c.standby)
		}
	}
	if exitStopRecovery <= 125 || exitStopRecovery > 255 || exitStopRecovery-128 <= 64 {
		t.Fatalf("exit %d: PostgreSQL must read it as neither \"not archived\" nor a signal", exitStopRecovery)
	}
}
