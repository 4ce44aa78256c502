package ring

import "math/bits"

// The hashes below are fixed forever: every node of every version must place
// a key on the same shards, so nothing here may depend on a process seed
// (hash/maphash) or on the machine. Changing a constant re-homes every record.
const (
	prime1 = 0x9E3779B185EBCA87
	prime2 = 0xC2B2AE3D27D4EB4F
	prime3 = 0x165667B19E3779F9
)

// keyHash hashes a key eight bytes at a time. FNV-1a is a byte-at-a-time loop
// and costs about four times as much on the 30-60 byte keys locsvc uses (see
// BenchmarkKeyHash); fmix64 at the end gives the avalanche HRW scores need.
func keyHash(s string) uint64 {
	h := prime3 ^ uint64(len(s))*prime1
	for len(s) >= 8 {
		h ^= round(le64(s))
		h = bits.RotateLeft64(h, 27)*prime1 + prime2
		s = s[8:]
	}
	if len(s) > 0 {
		var k uint64
		for i := len(s) - 1; i >= 0; i-- {
			k = k<<8 | uint64(s[i])
		}
		h ^= round(k)
		h = bits.RotateLeft64(h, 27)*prime1 + prime2
	}
	return fmix64(h)
}

func round(k uint64) uint64 {
	return bits.RotateLeft64(k*prime2, 31) * prime1
}

// le64 is written so the compiler merges the byte loads into one load.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// fmix64 is the MurmurHash3 finalizer: every input bit flips each output bit
// with probability close to 1/2, which is what makes fmix64(key^seed) usable
// as an independent score per shard.
func fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
