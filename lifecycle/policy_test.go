package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/backends/azure"
	"github.com/walgate/walgate/backends/fs"
	"github.com/walgate/walgate/backends/gcs"
	"github.com/walgate/walgate/backends/s3"
)

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`
tiers:
  - {kind: wal, after: 168h, class: warm}
  - {kind: wal, after: 720h, class: cold}
  - {kind: backup, after: 72h, class: warm}
  - {kind: metadata, after: 720h, class: warm}
retain_full: 2
pitr_window: 336h
allow_rehydration_classes_in_window: false
prices: {hot: 0.023, warm: 0.0125, cold: 0.004, archive: 0.0036}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tiers) != 4 || p.Tiers[0].After != 168*time.Hour || p.Tiers[1].Class != Cold || p.RetainFull != 2 ||
		p.PITRWindow != 14*24*time.Hour || p.Prices[Hot] != 0.023 {
		t.Fatalf("parsed %+v", p)
	}
	if p, err := ParsePolicy(nil); err != nil || p.RetentionOn() {
		t.Fatalf("empty policy: %+v %v", p, err)
	}
	if _, err := ParsePolicy([]byte("retain_fulls: 2\n")); err == nil || !strings.Contains(err.Error(), "retain_fulls") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		p    Policy
		want string
	}{
		{Policy{Tiers: []Tier{{Kind: "wals", After: time.Hour, Class: Warm}}}, `kind "wals"`},
		{Policy{Tiers: []Tier{{Kind: WAL, After: time.Hour, Class: "glacier"}}}, `class "glacier"`},
		{Policy{Tiers: []Tier{{Kind: WAL, After: 0, Class: Warm}}}, "positive age"},
		{Policy{Tiers: []Tier{{Kind: WAL, After: 2 * time.Hour, Class: Warm}, {Kind: WAL, After: time.Hour, Class: Cold}}}, "colder class"},
		{Policy{Tiers: []Tier{{Kind: WAL, After: time.Hour, Class: Warm}, {Kind: WAL, After: time.Hour, Class: Cold}}}, "same age"},
		{Policy{Tiers: []Tier{{Kind: WAL, After: time.Hour, Class: Cold}, {Kind: WAL, After: 2 * time.Hour, Class: Cold}}}, "colder class"},
		{Policy{RetainFull: -1}, "retain_full -1"},
		{Policy{PITRWindow: -time.Hour}, "pitr_window"},
		{Policy{Prices: map[Class]float64{"tepid": 1}}, `class "tepid"`},
		{Policy{Prices: map[Class]float64{Hot: -1}}, "negative"},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error with %q", c.p, err, c.want)
		}
	}
	// A free class (price 0) is a valid price, and hot a valid class for
	// a rule (one that keeps the younger objects where they are).
	ok := Policy{Tiers: []Tier{{Kind: WAL, After: time.Hour, Class: Warm}, {Kind: BackupData, After: time.Hour, Class: Archive},
		{Kind: Metadata, After: time.Hour, Class: Hot}, {Kind: Metadata, After: 2 * time.Hour, Class: Cold}}, RetainFull: 1,
		Prices: map[Class]float64{Hot: 0, Archive: 0.001}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Validate names every problem whatever the order the rules are written
// in: rules of the same age are compared with the next older rule by the
// coldest of them.
func TestValidateIndependentOfRuleOrder(t *testing.T) {
	warm1 := Tier{Kind: WAL, After: time.Hour, Class: Warm}
	cold1 := Tier{Kind: WAL, After: time.Hour, Class: Cold}
	cold2 := Tier{Kind: WAL, After: 2 * time.Hour, Class: Cold}
	want := "lifecycle policy: tiers: two wal rules for the same age 1h0m0s; " +
		"tiers: wal goes to cold after 1h0m0s but to cold after 2h0m0s: each older rule must name a colder class"
	for _, order := range [][]Tier{{warm1, cold1, cold2}, {cold1, warm1, cold2}, {cold2, cold1, warm1}, {cold2, warm1, cold1}} {
		err := Policy{Tiers: order}.Validate()
		if err == nil || err.Error() != want {
			t.Errorf("%v: got %v, want %q", order, err, want)
		}
	}
}

func TestStandardBackends(t *testing.T) {
	s3 := NewBackend("s3", s3.Classes())
	v := newBackendView(s3)
	if v.instant(Archive) != Cold || v.names[Archive.rank()] != "GLACIER" {
		t.Fatalf("s3: %+v", v)
	}
	if c, ok := v.classOf("DEEP_ARCHIVE"); !ok || c != Archive {
		t.Fatalf("s3 DEEP_ARCHIVE: %s %v", c, ok)
	}
	gcs := NewBackend("g", gcs.Classes())
	if newBackendView(gcs).instant(Archive) != Archive {
		t.Fatal("GCS ARCHIVE reads instantly")
	}
	az := NewBackend("a", azure.Classes())
	if newBackendView(az).instant(Archive) != Cold {
		t.Fatal("Azure Archive needs rehydration")
	}
	fs := NewBackend("f", fs.Classes())
	if newBackendView(fs).hasClasses() {
		t.Fatal("fs has no classes")
	}
	// A backend mapping only some classes falls back to the next warmer.
	part := newBackendView(Backend{Name: "p", Classes: map[Class]string{Hot: "STANDARD", Cold: "COLD"}})
	if part.names[Warm.rank()] != "STANDARD" || part.names[Archive.rank()] != "COLD" {
		t.Fatalf("fallback: %v", part.names)
	}
}
