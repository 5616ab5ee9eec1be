package index

import (
	"errors"

	"github.com/walgate/walgate/index/pgname"
)

// errStopSegmentScan ends the scan of SegmentSize at the first segment.
var errStopSegmentScan = errors.New("segment size found")

// SegmentSize is the cluster's WAL segment size as its archived segments
// show it: the plaintext size of any segment (a power of two from 1 MiB to
// 1 GiB). 0 when none is archived.
func (c *Catalog) SegmentSize(cluster string) (uint64, error) { return SegmentSizeOf(c, cluster) }

// SegmentSizeOf is SegmentSize read through any catalog's ListWAL.
func SegmentSizeOf(c interface {
	ListWAL(cluster, from string, fn func(WALObject) error) error
}, cluster string) (uint64, error) {
	var size uint64
	err := c.ListWAL(cluster, "", func(o WALObject) error {
		if len(o.Name) == 24 && pgname.IsSegmentSize(o.PlainSize) {
			size = uint64(o.PlainSize)
			return errStopSegmentScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopSegmentScan) {
		return 0, err
	}
	return size, nil
}
