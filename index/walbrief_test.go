package index

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func randText(rng *rand.Rand) string {
	alphabet := []string{"a", "Z", "0", "/", "_", ".", "-", " ", "é", "日", "\"", "\\", "\n", "\x00", "\xff"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func randWAL(rng *rand.Rand) WALObject {
	o := WALObject{Name: randText(rng), Key: randText(rng), Backend: randText(rng), Size: rng.Int64N(1 << 40), SHA256: randText(rng),
		ContentID: randText(rng), PlainSize: rng.Int64() - 1<<62, Compression: randText(rng), Encryption: randText(rng),
		StoredAt: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("x", 3600*(rng.IntN(24)-12))), TokenID: randText(rng),
		TimelineParent: rng.Uint32(), SwitchLSN: rng.Uint64()}
	if rng.IntN(2) == 0 {
		o.StoredAt = o.StoredAt.UTC()
	}
	for range rng.IntN(4) {
		o.Backends = append(o.Backends, randText(rng))
	}
	if n := rng.IntN(3); n > 0 {
		o.Classes = map[string]string{}
		for range n {
			o.Classes[randText(rng)] = randText(rng)
		}
	}
	return o
}

// A catalog from before brief records gets them at open, and every change
// keeps them equal to the JSON records (Check compares them).
func TestBriefRecords(t *testing.T) {
	c, path := openTest(t)
	var objs []WALObject
	for i := 1; i <= 50; i++ {
		o := walObj(fmt.Sprintf("00000001%016X", i), "sha256:"+strings.Repeat("b", 64))
		o.Backends = []string{"local", "s3"}
		objs = append(objs, o)
	}
	if err := c.AddWALBatch("db", objs); err != nil {
		t.Fatal(err)
	}
	// As an older walgate left it: no brief records.
	if err := c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClusters).Bucket([]byte("db")).DeleteBucket(bucketWALBrief)
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "no walbrief bucket") {
		t.Fatalf("check without briefs: %v", err)
	}
	c.Close()
	c, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	// Changes of every kind.
	late := walObj("000000010000000000000099", "sha256:"+strings.Repeat("c", 64))
	if _, _, err := c.AddWALCopies("db", late, []Copy{{Backend: "s3", Cluster: "db", Kind: CopyWAL, Name: late.Name, Key: late.Key}}); err != nil {
		t.Fatal(err)
	}
	pending, err := c.Pending("s3", 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %v %v", pending, err)
	}
	if err := c.CompleteCopy(pending[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyWALChanges("db", []CopyChange{{Name: objs[0].Name, Backend: "s3", Class: "STANDARD_IA"},
		{Name: objs[1].Name, Backend: "s3", Deleted: true}, {Name: objs[2].Name, Backend: "s3", Deleted: true},
		{Name: objs[2].Name, Backend: "local", Deleted: true}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := c.ListWALBrief("db", func(name string, w WALBrief) error {
		n++
		switch name {
		case objs[0].Name:
			if w.Classes["s3"] != "STANDARD_IA" {
				t.Errorf("%s: classes %v", name, w.Classes)
			}
		case objs[1].Name:
			if !slices.Equal(w.Holders, []string{"local"}) {
				t.Errorf("%s: holders %v", name, w.Holders)
			}
		case "000000010000000000000099":
			if !slices.Equal(w.Holders, []string{"local", "s3"}) {
				t.Errorf("%s: holders %v", name, w.Holders)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 50 {
		t.Fatalf("%d brief records, want 50", n)
	}
	// A damaged brief record fails the listing (and no plan is made of
	// it) and the check.
	if err := c.db.Update(func(tx *bolt.Tx) error {
		return clusterBucket(tx, "db").Bucket(bucketWALBrief).Put([]byte(objs[3].Name), []byte{1, 2})
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.ListWALBrief("db", func(string, WALBrief) error { return nil }); !errors.Is(err, errBrief) {
		t.Fatalf("listing a damaged brief: %v", err)
	}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "no readable brief record") {
		t.Fatalf("check of a damaged brief: %v", err)
	}
}

// FuzzDecodeBrief: a damaged brief record is an error, never a panic, and
// what decodes encodes back to a record that decodes the same.
func FuzzDecodeBrief(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10 {
		f.Add(encodeBrief(randWAL(rng)))
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var w, again WALBrief
		if decodeBrief(data, &w) != nil {
			return
		}
		o := WALObject{Key: w.Key, Size: w.Size, StoredAt: w.StoredAt, Backends: w.Holders, Classes: w.Classes}
		if err := decodeBrief(encodeBrief(o), &again); err != nil || !sameBrief(o, again) {
			t.Fatalf("%x decodes to %+v, which does not round-trip (%v)", data, w, err)
		}
	})
}
