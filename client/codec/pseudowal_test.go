package codec

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// pseudoWAL produces deterministic bytes that compress like PostgreSQL WAL
// from an OLTP load: 8 KiB pages with page headers, records with headers
// holding increasing LSNs and transaction IDs, small tuple updates with
// text and numbers, random checksums, and now and then a full-page image
// that is mostly an empty hole. It compresses about 5 to 10 times, like the
// "oltp" segments measured in platform-notes.md.
type pseudoWAL struct {
	rng     *rand.Rand
	left    int64 // bytes still to produce; < 0 means endless
	page    [walPageSize]byte
	pageOff int // bytes of page already returned
	lsn     uint64
	xid     uint32
}

const walPageSize = 8192

func newPseudoWAL(seed uint64, size int64) *pseudoWAL {
	w := &pseudoWAL{rng: rand.New(rand.NewPCG(seed, 0x5741_4c47)), left: size, lsn: 0x3000028, xid: 740}
	w.fillPage()
	return w
}

// pseudoWALBytes returns size bytes of pseudo-WAL.
func pseudoWALBytes(seed uint64, size int) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(newPseudoWAL(seed, int64(size)), b)
	return b
}

func (w *pseudoWAL) Read(p []byte) (int, error) {
	if w.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && w.left != 0 {
		if w.pageOff == walPageSize {
			w.fillPage()
		}
		m := copy(p[n:], w.page[w.pageOff:])
		if w.left > 0 && int64(m) > w.left {
			m = int(w.left)
		}
		w.pageOff += m
		n += m
		if w.left > 0 {
			w.left -= int64(m)
		}
	}
	return n, nil
}

func (w *pseudoWAL) fillPage() {
	clear(w.page[:])
	w.pageOff = 0
	p := w.page[:]
	// XLogPageHeaderData: magic, info, timeline, page address, rem_len.
	binary.LittleEndian.PutUint16(p[0:], 0xD110)
	binary.LittleEndian.PutUint16(p[2:], 0x0005)
	binary.LittleEndian.PutUint32(p[4:], 1)
	binary.LittleEndian.PutUint64(p[8:], w.lsn&^(walPageSize-1))
	off := 24
	for off < walPageSize-64 {
		off = w.record(p, off)
	}
}

// record writes one WAL record at p[off:] and returns the next offset.
func (w *pseudoWAL) record(p []byte, off int) int {
	start := off
	// XLogRecord: tot_len (filled below), xid, prev, info, rmid, crc.
	binary.LittleEndian.PutUint32(p[off+4:], w.xid)
	binary.LittleEndian.PutUint64(p[off+8:], w.lsn-uint64(w.rng.IntN(200)+24))
	p[off+16] = byte(w.rng.IntN(4) << 4)
	p[off+17] = byte([]int{10, 10, 10, 11, 1, 0}[w.rng.IntN(6)])
	binary.LittleEndian.PutUint32(p[off+20:], w.rng.Uint32()) // CRC: incompressible
	off += 24
	// Block reference: tablespace, database, relation, block number.
	rel := uint32(w.rng.IntN(4))
	binary.LittleEndian.PutUint32(p[off:], 1663)
	binary.LittleEndian.PutUint32(p[off+4:], 5)
	binary.LittleEndian.PutUint32(p[off+8:], 16396+rel)
	binary.LittleEndian.PutUint32(p[off+12:], uint32(w.rng.IntN(1640)))
	off += 16
	room := len(p) - off
	var body int
	if w.rng.IntN(25) == 0 && room > 3000 {
		// Full-page image of a pgbench_accounts page: line pointers,
		// then tuples packed from the end.
		body = room - 8
		tuples := (body - 64) / 124
		for i := range tuples {
			binary.LittleEndian.PutUint32(p[off+i*4:], uint32(8192-(i+1)*124)|1<<15|121<<17)
		}
		aid := uint32(w.rng.IntN(100000))
		for i := range tuples {
			t := off + body - (i+1)*124
			w.tuple(p[t:t+121], aid+uint32(i))
		}
	} else {
		// A heap update or insert: a tuple header and one row.
		body = min(room, 121)
		w.tuple(p[off:off+body], uint32(w.rng.IntN(100000)))
	}
	off += body
	binary.LittleEndian.PutUint32(p[start:], uint32(off-start))
	off = (off + 7) &^ 7 // MAXALIGN
	w.lsn += uint64(off - start)
	if w.rng.IntN(5) == 0 {
		w.xid++
	}
	return off
}

// tuple writes a pgbench_accounts row with its heap tuple header: xmin,
// xmax, ctid, infomask, then aid, bid, abalance and 84 blank characters.
func (w *pseudoWAL) tuple(t []byte, aid uint32) {
	if len(t) < 40 {
		return
	}
	binary.LittleEndian.PutUint32(t[0:], w.xid-uint32(w.rng.IntN(50)))
	binary.LittleEndian.PutUint32(t[8:], uint32(w.rng.IntN(1640)))
	binary.LittleEndian.PutUint16(t[12:], uint16(w.rng.IntN(60)))
	binary.LittleEndian.PutUint16(t[18:], 0x0902)
	t[22] = 24
	binary.LittleEndian.PutUint32(t[24:], aid)
	binary.LittleEndian.PutUint32(t[28:], aid/100000+1)
	binary.LittleEndian.PutUint32(t[32:], uint32(int32(w.rng.IntN(10000)-5000)))
	t[36] = 0xab // varlena header of the filler
	for i := 37; i < len(t); i++ {
		t[i] = ' '
	}
}
