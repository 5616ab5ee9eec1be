package pgname

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// firstPages are the first 40 bytes of the segment 000000010000000000000001
// that initdb of each major wrote (x86-64, 16 MiB segments).
var firstPages = map[int]string{
	13: "06d10200010000000000000100000000000000000000000044c100009f7f156b0000000100200000",
	14: "0dd10200010000000000000100000000000000000000000016c2ba9fa57f156b0000000100200000",
	16: "13d102000100000000000001000000000000000000000000b662f25eae7f156b0000000100200000",
	17: "16d10200010000000000000100000000000000000000000051337032b47f156b0000000100200000",
	18: "18d102000100000000000001000000000000000000000000c5137832ba7f156b0000000100200000",
}

func mustWALFile(t testing.TB, name string) WALFile {
	t.Helper()
	f, err := ParseWALFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func decodeHexPage(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The segments PostgreSQL 15 archived for the WAL-G vectors: the header
// names the system identifier pg_control_system() reported.
func TestParseSegmentHeaderPostgreSQL15(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "walg", "lz4-plain")
	var expected struct {
		SystemIdentifier string `json:"system_identifier"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	want, err := strconv.ParseUint(expected.SystemIdentifier, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"000000010000000000000004", "000000010000000000000007"} {
		gz, err := os.Open(filepath.Join(dir, "plain", name+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(gz)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, LongPageHeaderSize)
		if _, err := io.ReadFull(zr, head); err != nil {
			t.Fatal(err)
		}
		gz.Close()
		h, err := ParseSegmentHeader(head, mustWALFile(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.SystemIdentifier != want || h.Major != 15 || h.SegmentSize != 16<<20 || h.BlockSize != 8192 || h.Timeline != 1 {
			t.Errorf("%s: %+v, want system identifier %d of a 15 server", name, h, want)
		}
		// The same page under another segment's name is refused.
		if _, err := ParseSegmentHeader(head, mustWALFile(t, "000000010000000000000005")); !errors.Is(err, ErrNotSegmentHeader) {
			t.Errorf("%s read as segment 5: %v", name, err)
		}
		if _, err := ParseSegmentHeader(head, mustWALFile(t, name+".partial")); err != nil {
			t.Errorf("%s.partial: %v", name, err)
		}
	}
}

func TestParseSegmentHeaderEveryMajor(t *testing.T) {
	f := mustWALFile(t, "000000010000000000000001")
	for major, s := range firstPages {
		page := decodeHexPage(t, s)
		h, err := ParseSegmentHeader(page, f)
		if err != nil {
			t.Fatalf("%d: %v", major, err)
		}
		if want := binary.LittleEndian.Uint64(page[24:]); h.Major != major || h.SystemIdentifier != want || h.PageAddr != 0x1000000 {
			t.Errorf("%d: %+v, want major %d, system identifier %d", major, h, major, want)
		}
		// A big-endian server writes the same fields the other way round.
		be := make([]byte, len(page))
		binary.BigEndian.PutUint16(be[0:], binary.LittleEndian.Uint16(page[0:]))
		binary.BigEndian.PutUint16(be[2:], binary.LittleEndian.Uint16(page[2:]))
		binary.BigEndian.PutUint32(be[4:], binary.LittleEndian.Uint32(page[4:]))
		binary.BigEndian.PutUint64(be[8:], binary.LittleEndian.Uint64(page[8:]))
		binary.BigEndian.PutUint64(be[24:], binary.LittleEndian.Uint64(page[24:]))
		binary.BigEndian.PutUint32(be[32:], binary.LittleEndian.Uint32(page[32:]))
		binary.BigEndian.PutUint32(be[36:], binary.LittleEndian.Uint32(page[36:]))
		if hb, err := ParseSegmentHeader(be, f); err != nil || hb != h {
			t.Errorf("%d big-endian: %+v, %v; want %+v", major, hb, err, h)
		}
	}
}

func TestParseSegmentHeaderRefuses(t *testing.T) {
	good := decodeHexPage(t, firstPages[16])
	f := mustWALFile(t, "000000010000000000000001")
	edit := func(fn func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		fn(b)
		return b
	}
	cases := map[string]struct {
		page []byte
		file WALFile
	}{
		"short":             {good[:39], f},
		"history file":      {good, mustWALFile(t, "00000002.history")},
		"backup history":    {good, mustWALFile(t, "000000010000000000000001.00000028.backup")},
		"unknown magic":     {edit(func(b []byte) { b[0] = 0x19 }), f},
		"short header flag": {edit(func(b []byte) { b[2] = 0x01 }), f},
		"unknown flag":      {edit(func(b []byte) { b[2] = 0x12 }), f},
		"timeline 0":        {edit(func(b []byte) { b[4] = 0 }), f},
		"zero identifier":   {edit(func(b []byte) { clear(b[24:32]) }), f},
		"segment size":      {edit(func(b []byte) { b[35] = 3 }), f},
		"block size":        {edit(func(b []byte) { b[37] = 0x21 }), f},
		"another segment":   {good, mustWALFile(t, "000000010000000000000002")},
		"zeroes":            {make([]byte, LongPageHeaderSize), f},
	}
	for what, c := range cases {
		if h, err := ParseSegmentHeader(c.page, c.file); !errors.Is(err, ErrNotSegmentHeader) {
			t.Errorf("%s: accepted %+v (%v)", what, h, err)
		}
	}
}

// FuzzSegmentHeader: never panics, and what it accepts is a header of the
// very segment it was read for, with a known major and an identifier.
func FuzzSegmentHeader(f *testing.F) {
	for _, s := range firstPages {
		b, _ := hex.DecodeString(s)
		f.Add(b, "000000010000000000000001")
	}
	f.Add(make([]byte, 40), "000000010000000A00000042.partial")
	f.Fuzz(func(t *testing.T, head []byte, name string) {
		wf, err := ParseWALFile(name)
		if err != nil {
			return
		}
		h, err := ParseSegmentHeader(head, wf)
		if err != nil {
			return
		}
		if h.Major < 13 || h.SystemIdentifier == 0 || !IsSegmentSize(int64(h.SegmentSize)) ||
			SegmentSize(h.SegmentSize).Of(h.PageAddr) != SegmentSize(h.SegmentSize).Number(wf) || uint64(h.PageAddr)%uint64(h.SegmentSize) != 0 {
			t.Fatalf("accepted an inconsistent header for %s: %+v", name, h)
		}
	})
}
