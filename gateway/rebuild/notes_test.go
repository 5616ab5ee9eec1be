package rebuild_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walgate/walgate/index/layout"
)

// The notes on what a rebuild does with each backup are made in cluster
// and name order: past the bound of 50, those of the first backups in
// that order are kept, the same on every run of the same store. Here
// two clusters have 30 incomplete backups each (a metadata.json, no
// sentinel): the notes kept are cluster db's 30 and cluster db2's first
// 20, and 10 more are counted.
func TestRebuildNotesKeptInBackupOrder(t *testing.T) {
	s := newStore(t)
	type backup struct{ cluster, name string }
	var all []backup
	for _, cl := range []string{cluster + "2", cluster} { // listed in another order than kept
		for i := range 30 {
			b := backup{cl, "base_" + walName(uint64(100-i))}
			s.put(b.cluster+"/"+layout.BackupDir+"/"+b.name+"/metadata.json", []byte("{}"), nil, time.Time{})
			all = append(all, b)
		}
	}
	slices.SortFunc(all, func(a, b backup) int {
		return cmp.Or(strings.Compare(a.cluster, b.cluster), strings.Compare(a.name, b.name))
	})
	var want []string
	for _, b := range all[:50] {
		want = append(want, fmt.Sprintf("backup %s of cluster %s: ", b.name, b.cluster))
	}
	slices.Sort(want)
	for run := range 2 {
		sum := s.rebuild(nil)
		if sum.Incomplete != 60 || len(sum.Notes) != 51 || sum.Notes[50] != "... and 10 more notes" {
			t.Fatalf("run %d: %d incomplete, %d notes: %q", run+1, sum.Incomplete, len(sum.Notes), sum.Notes)
		}
		for i, n := range sum.Notes[:50] {
			if !strings.HasPrefix(n, want[i]) || !strings.Contains(n, "no sentinel") {
				t.Fatalf("run %d: note %d is %q, want one on %q; notes:\n%s", run+1, i, n, want[i], strings.Join(sum.Notes, "\n"))
			}
		}
	}
}
