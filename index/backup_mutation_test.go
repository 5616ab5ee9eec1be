package index

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestBackupsListsByStateAndFinishTime: Backups is what the backup list,
// retention and the open-backup sweep read; a backup it leaves out is one
// nobody can restore and nobody retains.
func TestBackupsListsByStateAndFinishTime(t *testing.T) {
	c, _ := openTest(t)
	if got, err := c.Backups("db", ""); err != nil || len(got) != 0 {
		t.Fatalf("cluster without backups: %v, %v", got, err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Begun in the opposite order of their finish times.
	for i, name := range []string{"base_c", "base_b", "base_a"} {
		if err := c.BeginBackup("db", Backup{Name: name, State: BackupOpen, Begun: t0}); err != nil {
			t.Fatal(err)
		}
		if name == "base_a" {
			continue // stays open
		}
		if err := c.UpdateBackup("db", name, func(b *Backup) error {
			b.State = BackupCommitted
			b.Info.FinishTime = t0.Add(time.Duration(2-i) * time.Hour)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(state BackupState) []string {
		t.Helper()
		list, err := c.Backups("db", state)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range list {
			out = append(out, b.Name)
		}
		return out
	}
	// Committed ones by finish time (base_b finished first), the open one
	// (no finish time) first of all.
	if got, want := names(""), []string{"base_a", "base_b", "base_c"}; !slices.Equal(got, want) {
		t.Errorf("all backups %v, want %v", got, want)
	}
	if got, want := names(BackupCommitted), []string{"base_b", "base_c"}; !slices.Equal(got, want) {
		t.Errorf("committed backups %v, want %v", got, want)
	}
	if got, want := names(BackupOpen), []string{"base_a"}; !slices.Equal(got, want) {
		t.Errorf("open backups %v, want %v", got, want)
	}
	if got := names(BackupDeleting); len(got) != 0 {
		t.Errorf("deleting backups %v, want none", got)
	}
	if got, err := c.Backups("other", ""); err != nil || len(got) != 0 {
		t.Errorf("another cluster's backups: %v, %v", got, err)
	}
	if err := c.DeleteBackup("db", "base_b"); err != nil {
		t.Fatal(err)
	}
	if got, want := names(""), []string{"base_a", "base_c"}; !slices.Equal(got, want) {
		t.Errorf("after deleting base_b: %v, want %v", got, want)
	}
	if _, err := c.Backup("db", "base_b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted backup: %v, want ErrNotFound", err)
	}
}
