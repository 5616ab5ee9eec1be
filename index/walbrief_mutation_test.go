package index

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestBriefCutShortIsCorrupt: a brief record cut anywhere is corrupt, not a
// shorter record: a listing built from it would plan deletions on sizes
// and holders that are not the catalog's.
func TestBriefCutShortIsCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 5 {
		data := encodeBrief(randWAL(rng))
		for n := range len(data) {
			var w WALBrief
			if err := decodeBrief(data[:n], &w); !errors.Is(err, errBrief) {
				t.Fatalf("%x cut to %d bytes: %v, want errBrief", data, n, err)
			}
		}
	}
}

// TestBriefOfLongNames: the brief of a record with a long key, holder,
// backend or storage class name encodes and decodes to the same values.
// The encoder reserves its buffer from those lengths; a reservation that
// subtracted one of them would be negative for such a record, and the
// catalog write would panic.
func TestBriefOfLongNames(t *testing.T) {
	long := strings.Repeat("n", 300)
	name := "000000010000000000000001"
	base := func() WALObject {
		o := walObj(name, "sha256:"+strings.Repeat("c", 64))
		o.Key = "db/" + name + ".zst"
		return o
	}
	cases := map[string]func(*WALObject){
		"key":     func(o *WALObject) { o.Key = "db/" + long + ".zst" },
		"holder":  func(o *WALObject) { o.Backend = long },
		"holders": func(o *WALObject) { o.Backends = []string{"a", long} },
		"backend": func(o *WALObject) { o.Classes = map[string]string{long: "COLD"} },
		"class":   func(o *WALObject) { o.Classes = map[string]string{"local": long} },
	}
	for what, change := range cases {
		o := base()
		change(&o)
		var w WALBrief
		if err := decodeBrief(encodeBrief(o), &w); err != nil {
			t.Fatalf("long %s: %v", what, err)
		}
		if !sameBrief(o, w) {
			t.Errorf("long %s: decoded %+v from %+v", what, w, o)
		}
	}
}

// TestBriefOfALongClusterName: a cluster name of 63 bytes (the longest a
// cluster may have) gives a WAL key of about a hundred bytes; its record
// is written, listed and checked with its brief.
func TestBriefOfALongClusterName(t *testing.T) {
	c, _ := openTest(t)
	cluster := strings.Repeat("c", 63)
	name := "000000010000000000000001"
	o := walObj(name, "sha256:"+strings.Repeat("c", 64))
	o.Key = cluster + "/wal_005/" + name + ".zst"
	if err := c.AddWALBatch(cluster, []WALObject{o}); err != nil {
		t.Fatal(err)
	}
	var got []WALBrief
	if err := c.ListWALBrief(cluster, func(n string, w WALBrief) error {
		if n != name {
			t.Errorf("brief listed as %q", n)
		}
		got = append(got, w)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !sameBrief(o, got[0]) {
		t.Fatalf("briefs %+v, want the one of %+v", got, o)
	}
}
