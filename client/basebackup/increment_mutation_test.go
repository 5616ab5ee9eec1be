package basebackup

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// incrementBytes is an increment header for a file of size bytes listing
// blocks, followed by a page of zeros per block.
func incrementBytes(size int64, blocks []uint32) []byte {
	var b bytes.Buffer
	writeIncrementHeader(&b, size, blocks)
	b.Write(make([]byte, len(blocks)*BlockSize))
	return b.Bytes()
}

// TestIncrementHeaderLimits: the limits ReadIncrementHeader documents are
// inclusive where they say so, and exact where they refuse.
func TestIncrementHeaderLimits(t *testing.T) {
	seq := func(from, n uint32) []uint32 {
		out := make([]uint32, n)
		for i := range out {
			out[i] = from + uint32(i)
		}
		return out
	}
	for name, c := range map[string]struct {
		size   int64
		blocks []uint32
	}{
		// "up to 1 TiB": a file of exactly that size is accepted.
		"a file of 1 TiB":         {maxIncrementFileSize, nil},
		"the last page of 1 TiB":  {maxIncrementFileSize, []uint32{maxIncrementFileSize/BlockSize - 1}},
		"every page of the file":  {3 * BlockSize, []uint32{0, 1, 2}},
		"the last page":           {3 * BlockSize, []uint32{2}},
		"a list of 5000 pages":    {6000 * BlockSize, seq(1000, 5000)},
		"an empty file, no pages": {0, nil},
	} {
		data := incrementBytes(c.size, c.blocks)
		inc, err := ReadIncrementHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := c.blocks
		if want == nil {
			want = []uint32{}
		}
		if inc.FileSize != c.size || !reflect.DeepEqual(inc.Blocks, want) {
			t.Errorf("%s: read size %d, %d blocks", name, inc.FileSize, len(inc.Blocks))
		}
	}

	unordered := seq(0, 5000)
	unordered[4096] = 4095 // the first entry of the second read of the list
	for name, c := range map[string]struct {
		size   int64
		blocks []uint32
	}{
		"a file of 1 TiB and a page":      {maxIncrementFileSize + BlockSize, nil},
		"the page at the file's size":     {3 * BlockSize, []uint32{3}},
		"more pages than the file":        {2 * BlockSize, []uint32{0, 1, 2}},
		"a duplicate across list reads":   {6000 * BlockSize, unordered},
		"past the end after 4096 entries": {5000 * BlockSize, append(seq(0, 4999), 5000)},
	} {
		data := incrementBytes(c.size, c.blocks)
		if _, err := ReadIncrementHeader(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrBadIncrement) {
			t.Errorf("%s: %v, want ErrBadIncrement", name, err)
		}
	}
}

// TestIncrementHeaderErrorCounts: the refusal of a header claiming more
// pages than its file has names both counts, as pages.
func TestIncrementHeaderErrorCounts(t *testing.T) {
	data := incrementBytes(2*BlockSize, []uint32{0, 1, 2})
	_, err := ReadIncrementHeader(bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, ErrBadIncrement) || !strings.Contains(err.Error(), "3 pages in a file of 2 pages") {
		t.Fatalf("%v, want ErrBadIncrement for 3 pages in a file of 2 pages", err)
	}
}
