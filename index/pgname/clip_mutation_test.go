package pgname

import (
	"strconv"
	"strings"
	"testing"
)

// An error quotes a bad name whole up to 64 bytes, and a bad history line
// or timeline ID up to 60; anything longer is cut there and marked "...".
func TestErrorsQuoteLongInputCut(t *testing.T) {
	for _, n := range []int{64, 65} {
		name := strings.Repeat("x", n)
		_, err := ParseWALFile(name)
		want := name
		if n > 64 {
			want = name[:64] + "..."
		}
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(want)+":") {
			t.Errorf("a name of %d bytes: %v; want it quoted as %q", n, err, want)
		}
	}
	for _, n := range []int{60, 61} {
		word := strings.Repeat("y", n)
		want := word
		if n > 60 {
			want = word[:60] + "..."
		}
		for _, text := range []string{word + "\n", word + "\t0/1000000\tno recovery target specified\n"} {
			_, err := ParseHistory(text, 2)
			if err == nil || !strings.Contains(err.Error(), strconv.Quote(want)) {
				t.Errorf("history %q: %v; want %q quoted", text, err, want)
			}
		}
	}
}
