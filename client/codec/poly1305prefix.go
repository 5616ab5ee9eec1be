package codec

import (
	"encoding/binary"
	"math/bits"
)

// prefixMAC finds the smallest mlen in [0, maxLen] for which
// body[mlen:mlen+16] is the secretstream MAC (chunkMAC) of tagBlock and
// body[:mlen], and returns mlen + chunkOverhead, or -1 if there is none.
//
// chunkMAC's message for a length m is tagBlock || body[:m] || (m mod 16)
// zero bytes || le64(0) || le64(64+m). All candidates with the same
// floor(m/16) share the Poly1305 state after tagBlock and their whole
// 16-byte blocks of body, so one pass over body plus at most three blocks
// per candidate finds them all, where calling chunkMAC for each would cost
// quadratic time. golang.org/x/crypto/poly1305 cannot copy its state, hence
// this small Poly1305 (RFC 8439, section 2.5), tested against it.
func prefixMAC(polyKey *[32]byte, tagBlock *[64]byte, body []byte, maxLen int) int {
	base := newPoly(polyKey)
	base.blocks(tagBlock[:])
	var tail [48]byte
	for m := 0; m <= maxLen; m++ {
		q, r := m/16, m%16
		if r == 0 && m > 0 {
			base.blocks(body[16*(q-1) : 16*q])
		}
		// The candidate's message after the shared part: body[16q:m],
		// r zero bytes, le64(0), le64(64+m).
		n := copy(tail[:], body[16*q:m])
		clear(tail[n : n+r+8])
		n += r + 8
		binary.LittleEndian.PutUint64(tail[n:], uint64(64+m))
		n += 8
		p := base
		full := n &^ 15
		p.blocks(tail[:full])
		if full < n {
			p.partial(tail[full:n])
		}
		mac := p.sum()
		if equalMAC(&mac, body[m:m+16]) {
			return m + chunkOverhead
		}
	}
	return -1
}

// poly is a Poly1305 state that can be copied: the accumulator h (130 bits
// in three limbs), the clamped r and the final addend s.
type poly struct {
	h0, h1, h2 uint64
	r0, r1     uint64
	s0, s1     uint64
}

func newPoly(key *[32]byte) poly {
	return poly{
		r0: binary.LittleEndian.Uint64(key[0:8]) & 0x0FFFFFFC0FFFFFFF,
		r1: binary.LittleEndian.Uint64(key[8:16]) & 0x0FFFFFFC0FFFFFFC,
		s0: binary.LittleEndian.Uint64(key[16:24]),
		s1: binary.LittleEndian.Uint64(key[24:32]),
	}
}

// blocks absorbs whole 16-byte blocks.
func (p *poly) blocks(msg []byte) {
	for ; len(msg) >= 16; msg = msg[16:] {
		p.add(binary.LittleEndian.Uint64(msg[0:8]), binary.LittleEndian.Uint64(msg[8:16]), 1)
	}
}

// partial absorbs a last block of 1 to 15 bytes, padded with 0x01 then zeros.
func (p *poly) partial(msg []byte) {
	var buf [16]byte
	copy(buf[:], msg)
	buf[len(msg)] = 1
	p.add(binary.LittleEndian.Uint64(buf[0:8]), binary.LittleEndian.Uint64(buf[8:16]), 0)
}

// add computes h = (h + m) * r mod 2^130-5, with m = m0 + m1*2^64 + hi*2^128,
// keeping h partially reduced (h2 stays below 8).
func (p *poly) add(m0, m1, hi uint64) {
	var c uint64
	p.h0, c = bits.Add64(p.h0, m0, 0)
	p.h1, c = bits.Add64(p.h1, m1, c)
	p.h2 += c + hi

	// h * r, with r0 and r1 below 2^60 and h2 small, as a 256-bit t.
	h0r0hi, h0r0lo := bits.Mul64(p.h0, p.r0)
	h1r0hi, h1r0lo := bits.Mul64(p.h1, p.r0)
	h0r1hi, h0r1lo := bits.Mul64(p.h0, p.r1)
	h1r1hi, h1r1lo := bits.Mul64(p.h1, p.r1)
	h2r0 := p.h2 * p.r0
	h2r1 := p.h2 * p.r1

	m1lo, c := bits.Add64(h1r0lo, h0r1lo, 0)
	m1hi, _ := bits.Add64(h1r0hi, h0r1hi, c)
	m2lo, c := bits.Add64(h2r0, h1r1lo, 0)
	m2hi, _ := bits.Add64(0, h1r1hi, c)

	t0 := h0r0lo
	t1, c := bits.Add64(m1lo, h0r0hi, 0)
	t2, c := bits.Add64(m2lo, m1hi, c)
	t3, _ := bits.Add64(h2r1, m2hi, c)

	// t mod p = (t mod 2^130) + 5 * (t >> 130) = low + 4k + k,
	// with 4k = (t2 &^ 3) + t3*2^64 and k = 4k >> 2.
	p.h0, p.h1, p.h2 = t0, t1, t2&3
	k4lo, k4hi := t2&^3, t3
	p.h0, c = bits.Add64(p.h0, k4lo, 0)
	p.h1, c = bits.Add64(p.h1, k4hi, c)
	p.h2 += c
	klo, khi := k4lo>>2|k4hi<<62, k4hi>>2
	p.h0, c = bits.Add64(p.h0, klo, 0)
	p.h1, c = bits.Add64(p.h1, khi, c)
	p.h2 += c
}

// sum returns the tag: (h mod 2^130-5) + s, mod 2^128.
func (p *poly) sum() [16]byte {
	// h < 2p here, so subtracting p once (adding 5 and dropping 2^130)
	// when h >= p reduces it fully.
	t0, c := bits.Add64(p.h0, 5, 0)
	t1, c := bits.Add64(p.h1, 0, c)
	t2 := p.h2 + c
	h0, h1 := p.h0, p.h1
	if t2>>2 != 0 {
		h0, h1 = t0, t1
	}
	h0, c = bits.Add64(h0, p.s0, 0)
	h1, _ = bits.Add64(h1, p.s1, c)
	var tag [16]byte
	binary.LittleEndian.PutUint64(tag[0:8], h0)
	binary.LittleEndian.PutUint64(tag[8:16], h1)
	return tag
}
