package pgcatalog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/walgate/walgate/index"
)

// The password is found in both DSN forms and never survives in an error.
// (The catalog itself is tested against PostgreSQL in cmd/internal/catalogdb.)
func TestPasswordNeverInErrors(t *testing.T) {
	for _, dsn := range []string{"postgres://u:S3cret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=1", "host=127.0.0.1 port=1 user=u password=S3cret-pw dbname=db sslmode=disable connect_timeout=1"} {
		if got := passwordOf(dsn); got != "S3cret-pw" {
			t.Errorf("%q: password %q", dsn, got)
		}
		_, err := Open(context.Background(), dsn, Options{})
		if err == nil || strings.Contains(err.Error(), "S3cret-pw") || !errors.Is(err, index.ErrUnavailable) {
			t.Errorf("nothing listens on port 1: %v", err)
		}
	}
	if err := scrub(errors.New("at postgres://u:S3cret-pw@h"), "S3cret-pw"); strings.Contains(err.Error(), "S3cret-pw") {
		t.Error(err)
	}
	if _, err := Open(context.Background(), "postgres://u:S3cret-pw@h:notaport/db", Options{}); err == nil || strings.Contains(err.Error(), "S3cret-pw") {
		t.Errorf("a DSN that does not parse: %v", err)
	}
}
