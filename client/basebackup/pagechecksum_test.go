package basebackup

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// pageChecksumRef is pg_checksum_page written as PostgreSQL writes it
// (checksum_impl.h): 32 sums updated row by row, pd_checksum read as
// zero. PageChecksum computes the same in another order.
func pageChecksumRef(page []byte, blkno uint32) uint16 {
	const fnvPrime = 16777619
	sums := checksumBaseOffsets
	for i := 0; i < BlockSize; i += 4 * 32 {
		for j := 0; j < 32; j++ {
			off := i + 4*j
			v := binary.LittleEndian.Uint32(page[off : off+4])
			if off == 8 {
				v &^= 0xFFFF
			}
			tmp := sums[j] ^ v
			sums[j] = tmp*fnvPrime ^ tmp>>17
		}
	}
	for range 2 {
		for j := 0; j < 32; j++ {
			tmp := sums[j]
			sums[j] = tmp*fnvPrime ^ tmp>>17
		}
	}
	var result uint32
	for _, s := range sums {
		result ^= s
	}
	result ^= blkno
	return uint16(result%65535 + 1)
}

// TestPageChecksumMatchesReference: random pages, pages of one byte value,
// and pages differing from each other in a single word each (every word
// position, the pd_checksum bytes included) checksum as the row-by-row
// reference does.
func TestPageChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, BlockSize)
	check := func(what string, blk uint32) {
		t.Helper()
		if got, want := PageChecksum(page, blk), pageChecksumRef(page, blk); got != want {
			t.Fatalf("%s, block %d: checksum %#04x, reference %#04x", what, blk, got, want)
		}
	}
	for i := range 200 {
		for j := range page {
			page[j] = byte(rng.Uint32())
		}
		check("random page", uint32(i)*7919)
	}
	for _, b := range []byte{0, 0xFF, 0x5A} {
		for j := range page {
			page[j] = b
		}
		check("uniform page", 3)
	}
	for off := 0; off < BlockSize; off += 4 {
		clear(page)
		binary.LittleEndian.PutUint32(page[off:], 0xDEADBEEF)
		check("one word set", uint32(off))
	}
	// pd_checksum's own bytes do not count; the two bytes after it do.
	clear(page)
	base := PageChecksum(page, 1)
	page[8], page[9] = 0xAB, 0xCD
	if PageChecksum(page, 1) != base {
		t.Fatal("pd_checksum's bytes changed the checksum")
	}
	page[10] = 1
	if PageChecksum(page, 1) == base {
		t.Fatal("byte 10 did not change the checksum")
	}
}

func BenchmarkPageChecksum(b *testing.B)          { benchmarkChecksum(b, PageChecksum) }
func BenchmarkPageChecksumReference(b *testing.B) { benchmarkChecksum(b, pageChecksumRef) }

func benchmarkChecksum(b *testing.B, sum func([]byte, uint32) uint16) {
	page := make([]byte, BlockSize)
	for i := range page {
		page[i] = byte(i * 31)
	}
	b.SetBytes(BlockSize)
	for b.Loop() {
		sum(page, 5)
	}
}
