package client

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/walgate/walgate/index/pgname"
)

// statusDirWith makes an archive_status directory holding NAME.STATUS for
// each name and status given.
func statusDirWith(t *testing.T, status map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive_status")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, st := range status {
		if err := os.WriteFile(filepath.Join(dir, name+"."+st), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustWALFile(t *testing.T, name string) pgname.WALFile {
	t.Helper()
	f, err := pgname.ParseWALFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Looked up by name or listed, the window is the same: random archive
// states around a log boundary (where a segment name's last eight digits
// start again at 0), for the smallest, the default and the largest
// segment size, with gaps, segments done, other timelines, a history
// file, partial segments and a backup history file among them.
func TestReadyFromAgreesWithListing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	calls := 0
	listings := statusListings.Load()
	for _, size := range []pgname.SegmentSize{1 << 20, 16 << 20, 1 << 30} {
		for round := range 40 {
			first := 8*size.PerLog() - 20 // a log boundary after 20 segments
			status := map[string]string{}
			var names []string
			for seg := first; seg < first+40; seg++ {
				name := size.Name(1, seg)
				names = append(names, name)
				switch r := rng.IntN(8); {
				case r < 5 || round%4 == 0: // long ready runs, too
					status[name] = "ready"
				case r < 7:
					status[name] = "done"
				}
				if rng.IntN(10) == 0 {
					status[size.Name(2, seg)] = "ready"
				}
			}
			status["00000002.history"] = "ready"
			status[names[7]+".partial"] = "ready"
			status[names[9]+".00000028.backup"] = "ready"
			dir := statusDirWith(t, status)
			for _, from := range names {
				for _, n := range []int{1, 3, 9, 17} {
					calls++
					got := readyFrom(dir, mustWALFile(t, from), int64(size), n)
					want := readyListed(dir, mustWALFile(t, from), n)
					if !slices.Equal(got, want) {
						t.Fatalf("size %d, round %d, from %s, n %d: %q, the listing gives %q", size, round, from, n, got, want)
					}
				}
			}
		}
	}
	// readyListed above lists once per call; readyFrom must have found
	// many windows by name alone.
	if byList := statusListings.Load() - listings - int64(calls); byList > int64(calls)*3/4 {
		t.Fatalf("readyFrom listed archive_status in %d of %d calls", byList, calls)
	}
}

// With a backlog of 10,000 ready segments (and the first ones done),
// readyFrom finds its window without listing archive_status.
func TestReadyFromLargeBacklogByName(t *testing.T) {
	const size = pgname.DefaultSegmentSize
	status := map[string]string{}
	for seg := uint64(0x2F0); seg < 0x2F0+10_010; seg++ {
		st := "ready"
		if seg < 0x2F0+10 {
			st = "done"
		}
		status[size.Name(1, seg)] = st
	}
	dir := statusDirWith(t, status)
	var want []string
	for seg := uint64(0x2F0 + 10); seg < 0x2F0+10+9; seg++ {
		want = append(want, size.Name(1, seg))
	}
	before := statusListings.Load()
	got := readyFrom(dir, mustWALFile(t, size.Name(1, 0x2F0)), int64(size), 9)
	if !slices.Equal(got, want) {
		t.Fatalf("window %q, want %q", got, want)
	}
	if n := statusListings.Load() - before; n != 0 {
		t.Fatalf("archive_status listed %d times", n)
	}
	// A size that is no segment's, or a name too large for the size: the
	// listing answers, and the same.
	for _, tc := range []struct {
		from  string
		bytes int64
	}{{size.Name(1, 0x2F0), 64 << 10}, {"000000010000000000001000", 16 << 20}} {
		before := statusListings.Load()
		got := readyFrom(dir, mustWALFile(t, tc.from), tc.bytes, 9)
		if want := readyListed(dir, mustWALFile(t, tc.from), 9); !slices.Equal(got, want) || len(got) != 9 {
			t.Fatalf("from %s, %d bytes: %q, want %q", tc.from, tc.bytes, got, want)
		}
		if statusListings.Load()-before != 2 {
			t.Fatalf("from %s, %d bytes: not answered by a listing", tc.from, tc.bytes)
		}
	}
}

// The push-ahead's window follows the archiver: its cursor moves to the
// oldest ready segment, also when the segment under the cursor is done and
// then removed (a checkpoint), which only a listing can step over.
func TestAheadWindowFollowsArchiver(t *testing.T) {
	const size = pgname.DefaultSegmentSize
	name := func(seg uint64) string { return size.Name(3, seg) }
	status := map[string]string{}
	for seg := uint64(0xFC); seg < 0xFC+12; seg++ {
		status[name(seg)] = "ready"
	}
	dir := statusDirWith(t, status)
	w := &aheadWindow{statusDir: dir, cursor: mustWALFile(t, name(0xFC)), segBytes: int64(size), size: 4}
	look := func(wantFirst uint64) {
		t.Helper()
		want := []string{name(wantFirst), name(wantFirst + 1), name(wantFirst + 2), name(wantFirst + 3)}
		if got := w.look(); !slices.Equal(got, want) {
			t.Fatalf("window %q, want %q", got, want)
		}
		if w.cursor.Name != name(wantFirst) {
			t.Fatalf("cursor %s, want %s", w.cursor.Name, name(wantFirst))
		}
	}
	look(0xFC)
	done := func(seg uint64) {
		t.Helper()
		if err := os.Rename(filepath.Join(dir, name(seg)+".ready"), filepath.Join(dir, name(seg)+".done")); err != nil {
			t.Fatal(err)
		}
	}
	done(0xFC)
	done(0xFD)
	look(0xFE)
	// Done, and then removed with its segment.
	done(0xFE)
	if err := os.Remove(filepath.Join(dir, name(0xFE)+".done")); err != nil {
		t.Fatal(err)
	}
	before := statusListings.Load()
	look(0xFF)
	if statusListings.Load() == before {
		t.Fatal("a removed segment under the cursor was stepped over without a listing")
	}
	before = statusListings.Load()
	look(0xFF) // across the log boundary, by name again
	if statusListings.Load() != before {
		t.Fatal("listed archive_status with the cursor on a ready segment")
	}
}
