package apply_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/lifecycle/apply"
)

// A refusal for missing sentinels names the first three and counts the
// rest.
func TestDisagreementNamesThree(t *testing.T) {
	for _, c := range []struct {
		missing []string // backend:backup
		more    string
	}{
		{[]string{"a:old", "b:old", "b:new"}, ""},
		{[]string{"a:old", "b:old", "a:new", "b:new"}, "and 1 more"},
	} {
		a := newArchive(t)
		for _, m := range c.missing {
			backend, which, _ := strings.Cut(m, ":")
			key := a.old.SentinelKey
			if which == "new" {
				key = a.new.SentinelKey
			}
			be, _ := a.set.Backend(backend)
			if err := be.Delete(context.Background(), key); err != nil {
				t.Fatal(err)
			}
		}
		res, err := a.exec.Run(context.Background(), apply.Options{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Plan.Refusals) != 1 {
			t.Fatalf("%d missing: refusals %+v", len(c.missing), res.Plan.Refusals)
		}
		reason := res.Plan.Refusals[0].Reason
		if n := strings.Count(reason, "sentinel is missing"); n != 3 || strings.Contains(reason, "more") != (c.more != "") || !strings.Contains(reason, c.more) {
			t.Errorf("%d sentinels missing: %q (%d named)", len(c.missing), reason, n)
		}
	}
}
