package pgname

import (
	"errors"
	"strings"
	"testing"
)

func TestParseWALFile(t *testing.T) {
	good := []struct {
		name string
		kind FileKind
		tli  Timeline
		log  uint32
		seg  uint32
	}{
		{"000000010000000A00000042", Segment, 1, 0xA, 0x42},
		{"00000002.history", History, 2, 0, 0},
		{"000000010000000000000004.00000028.backup", BackupHistory, 1, 0, 4},
		{"000000030000000100000002.partial", Partial, 3, 1, 2},
		{"FFFFFFFFFFFFFFFFFFFFFFFF", Segment, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF},
	}
	for _, g := range good {
		f, err := ParseWALFile(g.name)
		if err != nil {
			t.Errorf("%s: %v", g.name, err)
			continue
		}
		if f.Name != g.name || f.Kind != g.kind || f.Timeline != g.tli || f.Log != g.log || f.Seg != g.seg {
			t.Errorf("%s: got %+v", g.name, f)
		}
	}
	bad := []string{
		"", "../000000010000000000000001", "..", "0000000100000000000000", "0000000100000000000000011",
		"000000010000000a00000042",                             // lower-case
		"00000001000000000000000G", "000000000000000000000001", // timeline 0
		"00000000.history", "0000000g.history", "00000001.HISTORY", "000000010000000000000001/x",
		"000000010000000000000001.partial.zst", "000000010000000000000004.0000002.backup",
		"000000010000000000000004_00000028.backup", "000000010000000000000001\x00", " 000000010000000000000001",
		strings.Repeat("0", 200),
	}
	for _, b := range bad {
		if _, err := ParseWALFile(b); !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q: want ErrInvalidName, got %v", b, err)
		}
	}
}

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "0/4000028", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if l.String() != s {
			t.Errorf("round trip %s -> %s", s, l)
		}
	}
	if l, _ := ParseLSN("0/4000028"); l != 67108904 {
		t.Errorf("0/4000028 = %d, want 67108904", l)
	}
	for _, s := range []string{"", "0", "/1", "1/", "x/1", "1/1/1", "123456789/0", "-1/0"} {
		if _, err := ParseLSN(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestSegmentName(t *testing.T) {
	cases := []struct {
		tli  Timeline
		lsn  LSN
		size uint64
		want string
	}{
		{1, 0x4000028, 16 << 20, "000000010000000000000004"},
		{1, 0x1_0000_0000, 16 << 20, "000000010000000100000000"},
		{2, 0xA_4200_0000, 16 << 20, "000000020000000A00000042"},
		{1, 0x1_4000_0000, 1 << 30, "000000010000000100000001"},
	}
	for _, c := range cases {
		if got := SegmentName(c.tli, c.lsn, c.size); got != c.want {
			t.Errorf("SegmentName(%d, %s, %d) = %s, want %s", c.tli, c.lsn, c.size, got, c.want)
		}
	}
}

// FuzzParseWALFile: never panics, and whatever it accepts is a name that
// is safe as a path element and round-trips.
func FuzzParseWALFile(f *testing.F) {
	for _, s := range []string{"000000010000000A00000042", "00000002.history", "000000010000000000000004.00000028.backup",
		"000000030000000100000002.partial", "../x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWALFile(s)
		if err != nil {
			return
		}
		if w.Name != s || strings.ContainsAny(s, "/\\\x00") || strings.Contains(s, "..") || w.Timeline == 0 {
			t.Fatalf("accepted unsafe or inconsistent name %q: %+v", s, w)
		}
	})
}

func TestParseHistory(t *testing.T) {
	// What PostgreSQL 15 writes after two promotions.
	text := "1\t0/3000158\tno recovery target specified\n\n2\t0/5000060\tat restore point \"x\"\n"
	got, err := ParseHistory(text, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []HistoryEntry{{1, 0x3000158}, {2, 0x5000060}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "# only a comment\n", "x\t0/1\tr", "1\tnot-an-lsn\tr", "3\t0/1\tr",
		"2\t0/5\tr\n1\t0/6\tr", "1\t0/6\tr\n2\t0/5\tr", "0\t0/1\tr", "1"} {
		if _, err := ParseHistory(bad, 3); err == nil {
			t.Errorf("ParseHistory(%q) accepted it", bad)
		}
	}
}

// FuzzParseHistory: never panics; what it accepts has increasing parents
// below the timeline and switch points that never go back.
func FuzzParseHistory(f *testing.F) {
	f.Add("1\t0/3000158\tno recovery target specified\n", uint32(2))
	f.Add("1\t0/3000158\tr\n2\t0/5000060\tr\n", uint32(3))
	f.Add("# c\n\n1 1/0 x", uint32(0))
	f.Fuzz(func(t *testing.T, s string, tli uint32) {
		es, err := ParseHistory(s, Timeline(tli))
		if err != nil {
			return
		}
		for i, e := range es {
			if e.Parent == 0 || tli != 0 && uint32(e.Parent) >= tli || i > 0 && (e.Parent <= es[i-1].Parent || e.Switch < es[i-1].Switch) {
				t.Fatalf("accepted inconsistent history %q: %+v", s, es)
			}
		}
	})
}
