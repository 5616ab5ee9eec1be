package basebackup

import (
	"path"
	"sort"
	"strconv"
	"strings"
)

// PostgreSQL's fixed tablespace OIDs.
const (
	defaultTablespaceOID = 1663 // base/
	globalTablespaceOID  = 1664 // global/
)

// BlockChanges are the relation blocks changed between two LSNs, as
// PostgreSQL 17's WAL summaries report them (pg_wal_summary_contents):
// modified blocks, and limit blocks (the relation was truncated to that
// length; whatever lies past it now was written since). Only main forks
// are kept: the other forks are copied whole.
type BlockChanges struct {
	rels   map[relKey]*relChanges
	newDBs map[dbKey]bool // created by copying files (a limit entry with relfilenode 0)
}

type dbKey struct{ spc, db uint32 }

type relKey struct {
	dbKey
	rel uint32
}

type relChanges struct {
	limit  uint32 // lowest limit block; noLimit when none
	blocks map[uint32]bool
}

const noLimit = ^uint32(0)

// NewBlockChanges returns an empty set.
func NewBlockChanges() *BlockChanges {
	return &BlockChanges{rels: map[relKey]*relChanges{}, newDBs: map[dbKey]bool{}}
}

// Add records one row of pg_wal_summary_contents.
func (c *BlockChanges) Add(relfilenode, tablespace, database uint32, fork int, block uint32, isLimit bool) {
	if relfilenode == 0 {
		// CREATE DATABASE ... STRATEGY FILE_COPY: every file of the new
		// database directory is new, with page LSNs of the template.
		c.newDBs[dbKey{tablespace, database}] = true
		return
	}
	if fork != 0 {
		return
	}
	k := relKey{dbKey{tablespace, database}, relfilenode}
	r := c.rels[k]
	if r == nil {
		r = &relChanges{limit: noLimit, blocks: map[uint32]bool{}}
		c.rels[k] = r
	}
	if isLimit {
		r.limit = min(r.limit, block)
	} else {
		r.blocks[block] = true
	}
}

// FileBlocks says which of the nblocks pages of a relation data file (a
// member IsPagedFile accepts) changed: the blocks modified, and every
// block at or past a limit block. whole is true when the file must be
// copied whole: its member cannot be mapped to a relation, or its database
// was created by copying files.
func (c *BlockChanges) FileBlocks(member string, nblocks int64) (blocks []uint32, whole bool) {
	k, ok := relOfMember(member)
	if !ok || c.newDBs[k.dbKey] {
		return nil, true
	}
	r := c.rels[k]
	if r == nil {
		return nil, false
	}
	first := uint64(SegmentNumber(member)) * BlocksPerSegment
	end := first + uint64(nblocks)
	for b := range r.blocks {
		if uint64(b) >= first && uint64(b) < end && b < r.limit {
			blocks = append(blocks, uint32(uint64(b)-first))
		}
	}
	if r.limit != noLimit && uint64(r.limit) < end {
		for b := max(uint64(r.limit), first); b < end; b++ {
			blocks = append(blocks, uint32(b-first))
		}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	return blocks, false
}

// relOfMember maps a relation data file member to its tablespace,
// database and relfilenode.
func relOfMember(member string) (relKey, bool) {
	dir, base := path.Split(strings.TrimPrefix(member, "/"))
	node, _, _ := strings.Cut(base, ".")
	rel, err := strconv.ParseUint(node, 10, 32)
	if err != nil {
		return relKey{}, false
	}
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	num := func(s string) (uint32, bool) {
		n, err := strconv.ParseUint(s, 10, 32)
		return uint32(n), err == nil
	}
	var k relKey
	var ok bool
	switch {
	case len(parts) == 1 && parts[0] == "global":
		k, ok = relKey{dbKey{globalTablespaceOID, 0}, uint32(rel)}, true
	case len(parts) == 2 && parts[0] == "base":
		k.spc, k.rel = defaultTablespaceOID, uint32(rel)
		k.db, ok = num(parts[1])
	case len(parts) == 4 && parts[0] == tablespaceDir:
		var ok1, ok2 bool
		k.spc, ok1 = num(parts[1])
		k.db, ok2 = num(parts[3])
		k.rel, ok = uint32(rel), ok1 && ok2
	}
	return k, ok
}
