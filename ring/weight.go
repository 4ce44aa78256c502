package ring

import (
	"math"
	"math/bits"
)

// Weighted rendezvous hashing (the "logarithmic method"): each shard draws
// E_i = -ln(u_i) / w_i from its uniform score u_i and the smallest E_i wins.
// E_i is exponential with rate w_i, so shard i comes first with probability
// w_i / sum(w), and the order of the remaining draws is weighted sampling
// without replacement — the walk the replica set needs.
//
// The logarithm is computed in integers: math.Log may differ in the last bit
// between architectures (assembly versions) and the compiler may fuse float
// operations, and either would let two nodes disagree on a near-tie.

const (
	logTableBits = 10
	logTableSize = 1 << logTableBits
)

// log2Table[j] = log2(1 + j/1024) in Q32, built with integer arithmetic only.
var log2Table = func() (t [logTableSize + 1]uint64) {
	for j := range t {
		t[j] = log2Q32(uint64(logTableSize+j) << (62 - logTableBits))
	}
	return t
}()

// log2Q32 returns log2(y) in Q32 for y in [1, 2) given in Q62, by repeated
// squaring: each squaring doubles the logarithm, so an overflow past 2 yields
// the next binary digit.
func log2Q32(y uint64) uint64 {
	var r uint64
	for i := 31; i >= 0; i-- {
		hi, lo := bits.Mul64(y, y)
		y = hi<<2 | lo>>62 // back to Q62
		if y >= 2<<62 {
			y >>= 1
			r |= 1 << uint(i)
		}
	}
	return r
}

// negLog2Q32 returns -log2(u) in Q32 where u = x / 2^64, treated as
// uniform in (0, 1). Linear interpolation in a 1024-entry table is accurate
// to about 1e-7, far below anything that matters for placement.
func negLog2Q32(x uint64) uint64 {
	x = max(x, 1) // u = 0 would be an infinite draw
	lz := uint64(bits.LeadingZeros64(x))
	mant := x << lz << 1 // mantissa bits after the leading one
	idx := mant >> (64 - logTableBits)
	frac := (mant << logTableBits) >> 32
	lo, hi := log2Table[idx], log2Table[idx+1]
	l := lo + ((hi-lo)*frac)>>32
	// x = 2^(63-lz) * (1+f), so -log2(x/2^64) = lz + 1 - log2(1+f).
	return (lz+1)<<32 - l
}

// weightedScore maps a uniform score to one where higher still wins but
// shard i wins with probability proportional to its weight; inv is
// floor(2^64-1 / w), so hi = -log2(u)/w without a division per shard.
// -log2(u) is at most 64 (2^38 in Q32), so the shift by 25 cannot overflow
// and spreads the result over all 64 bits: the low bits that the packed score
// replaces with the shard index then carry no information.
func weightedScore(x, inv uint64) uint64 {
	hi, _ := bits.Mul64(negLog2Q32(x)<<25, inv)
	return math.MaxUint64 - hi
}
