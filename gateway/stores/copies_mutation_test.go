package stores_test

import (
	"testing"

	"github.com/walgate/walgate/gateway/stores"
	"github.com/walgate/walgate/index"
	"github.com/walgate/walgate/index/layout"
)

// TestHistoryCopyKeepsItsSwitchPoint: every copy of a timeline history
// carries its parent and switch LSN in its metadata: a catalog rebuilt
// from a replica places the timeline switch from them.
func TestHistoryCopyKeepsItsSwitchPoint(t *testing.T) {
	md := stores.WALMetadata(testCluster, index.WALObject{Name: "00000002.history", TimelineParent: 1, SwitchLSN: 0x3000158})
	if md[layout.MetaTimelineParent] != "1" || md[layout.MetaSwitchLSN] != "0/3000158" {
		t.Fatalf("history metadata %v", md)
	}
	md = stores.WALMetadata(testCluster, index.WALObject{Name: "000000020000000000000003"})
	if _, ok := md[layout.MetaSwitchLSN]; ok {
		t.Fatalf("segment metadata names a switch point: %v", md)
	}
}
