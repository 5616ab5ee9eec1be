package index

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func randText(rng *rand.Rand) string {
	plain := []string{"a", "Z", "0", "/", "_", ".", "-", " ", "é", "日"}
	special := []string{"<", ">", "&", "\"", "\\", "\n", "\u2028", "\x00", "\xff"} // escaped or replaced by json.Marshal
	var b strings.Builder
	for range rng.IntN(12) {
		if rng.IntN(80) == 0 {
			b.WriteString(special[rng.IntN(len(special))])
		} else {
			b.WriteString(plain[rng.IntN(len(plain))])
		}
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

// The fast decoder agrees with encoding/json on every record json.Marshal
// writes, or leaves it to encoding/json.
func TestDecodeWALBriefAgreesWithJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for range 20000 {
		data, err := json.Marshal(randWAL(rng))
		if err != nil {
			t.Fatal(err)
		}
		var want, got WALBrief
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if !decodeWALBrief(data, &got) {
			continue
		}
		fast++
		if !want.StoredAt.Equal(got.StoredAt) {
			t.Fatalf("%s: stored_at %v, want %v", data, got.StoredAt, want.StoredAt)
		}
		got.StoredAt = want.StoredAt
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", data, got, want)
		}
	}
	t.Logf("%d of 20000 records took the fast path", fast)
	if fast < 1000 {
		t.Fatalf("only %d records took the fast path", fast)
	}
	// What walgate writes takes it.
	data, _ := json.Marshal(WALObject{Name: "000000010000000000000001", Key: "db/wal_005/000000010000000000000001.zst", Backend: "s3",
		Backends: []string{"s3", "gcs"}, Size: 42, StoredAt: time.Now().UTC(), Classes: map[string]string{"s3": "STANDARD_IA"}})
	var w WALBrief
	if !decodeWALBrief(data, &w) || w.Key != "db/wal_005/000000010000000000000001.zst" || w.Classes["s3"] != "STANDARD_IA" || len(w.Backends) != 2 {
		t.Fatalf("a walgate record: %+v", w)
	}
}

// FuzzDecodeWALBrief: whatever the fast decoder accepts, encoding/json
// accepts too, with the same result.
func FuzzDecodeWALBrief(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		data, _ := json.Marshal(randWAL(rng))
		f.Add(data)
	}
	f.Add([]byte(`{"key":"a","KEY":"b"}`))
	f.Add([]byte(`{"size":012}`))
	f.Add([]byte(`{"backends":null,"classes":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want WALBrief
		if !decodeWALBrief(data, &got) {
			return
		}
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
		}
		if !want.StoredAt.Equal(got.StoredAt) {
			t.Fatalf("%q: stored_at %v, want %v", data, got.StoredAt, want.StoredAt)
		}
		got.StoredAt = want.StoredAt
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}
