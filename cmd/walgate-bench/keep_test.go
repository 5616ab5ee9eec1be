package main

import (
	"strings"
	"testing"
)

// A run of some sections rewrites the report but keeps the sections of
// the existing file it did not measure, and replaces the ones it did.
func TestKeepUnmeasured(t *testing.T) {
	section := func(begin, end, body string) string { return begin + "\n" + body + "\n" + end + "\n" }
	old := "# Benchmarks\n\nold wal figures\n\n" +
		section(deltaBegin, deltaEnd, "old delta") + "\n" +
		section(peerBegin, peerEnd, "old peer") + "\n" +
		section(catalogBegin, catalogEnd, "old catalog") + "\n## Method\n\nold method\n"
	doc := "# Benchmarks\n\nnew wal figures\n\n" + section(peerBegin, peerEnd, "new peer") + "\n## Method\n\nnew method\n"
	got := keepUnmeasured(old, doc, map[string]bool{"wal": true, "peer": true})
	for _, want := range []string{"new wal figures", "old delta", "new peer", "old catalog", "new method"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"old wal figures", "old peer", "old method"} {
		if strings.Contains(got, gone) {
			t.Errorf("kept %q:\n%s", gone, got)
		}
	}
	if d, c, m := strings.Index(got, "old delta"), strings.Index(got, "old catalog"), strings.Index(got, "## Method"); !(d < c && c < m) {
		t.Errorf("kept sections out of order (delta %d, catalog %d, method %d):\n%s", d, c, m, got)
	}
	if n := strings.Count(got, deltaBegin); n != 1 {
		t.Errorf("delta section %d times", n)
	}
	// The reader learns which sections are this run's and which are kept.
	said := "This run measured the sections wal, peer (`-sections wal,peer`); the sections delta, catalog are as an earlier run wrote them"
	if i := strings.Index(got, said); i < 0 || i > strings.Index(got, "old delta") || i < strings.Index(got, "new wal figures") {
		t.Errorf("no sentence %q after the first paragraph:\n%s", said, got)
	}
	// Every spliced section measured: nothing kept, nothing said.
	all := map[string]bool{"wal": true, "backup": true}
	for _, n := range sectionNames() {
		all[n] = true
	}
	if got := keepUnmeasured(old, doc, all); got != doc {
		t.Errorf("a whole run changed the report:\n%s", got)
	}
	// No file yet: the report as written.
	if got := keepUnmeasured("", doc, map[string]bool{"wal": true}); got != doc {
		t.Errorf("no old file changed the report:\n%s", got)
	}
}
