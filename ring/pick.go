package ring

import (
	"math/bits"
	"sync"
)

// Rendezvous (highest random weight) hashing: every shard gets a score for a
// hash and the walk visits shards in descending score order. A score is
// packed into one uint64 — mixed bits on top, index+1 in the low idxBits —
// so scores are unique (no tie-breaking rule needed, still the same on every
// node), a plain integer compare orders them, and 0 can mean "not eligible".
//
// Only the best n of the order matter. pickSmall, the common case (n <= 3,
// at most 16 zones), keeps them in three registers with branch-free
// min/max: a top-n insertion that branches mispredicts about n*ln(N/n)
// times per hash, which cost more than the hashing itself. pickGeneral
// handles the rest with sorted lists. Both compute the same walk:
// "take the next shard whose zone is still unused; when zones run out, take
// the next unused shard" — that is, the best shard of each zone in score
// order, then the remaining shards in score order. Every n gets a prefix of
// that one sequence, which is what lets the partition cache serve any n.

const (
	smallN     = 3  // largest n pickSmall handles
	smallZones = 16 // most zones pickSmall handles
	stackCands = 8  // largest n pickGeneral handles without the pool
)

// limit clamps n to the number of shards the walk may return.
func (r *Ring) limit(n int, healthyOnly bool) int {
	if r == nil || n <= 0 {
		return 0
	}
	avail := len(r.shards)
	if healthyOnly {
		avail = r.healthy
	}
	return min(n, avail)
}

// score is shard i's packed score for key hash h. The 64x64->128 multiply
// folded by xor (wyhash's "mum") mixes as well as a full finalizer here —
// see TestScoreIndependence — at a third of its latency.
func (r *Ring) score(h uint64, i int) uint64 {
	hi, lo := bits.Mul64(h^r.seeds[i], prime1)
	s := hi ^ lo
	if r.weighted {
		s = weightedScore(s, r.inv[i])
	}
	return s&^r.idxMask | uint64(i+1)
}

func (r *Ring) index(c uint64) int { return int(c&r.idxMask) - 1 }

// pick runs the walk and returns the chosen packed scores, best first; u and
// t need capacity n, and n must already be clamped by limit. The result
// aliases u or t.
func (r *Ring) pick(h uint64, n int, healthyOnly bool, u, t []uint64) []uint64 {
	masks := r.allMask
	if healthyOnly {
		masks = r.upMask
	}
	if n <= smallN && r.zones <= smallZones {
		return r.pickSmall(h, n, masks, u)
	}
	return r.pickGeneral(h, n, masks, u, t)
}

func (r *Ring) pickSmall(h uint64, n int, masks []uint64, out []uint64) []uint64 {
	var zbest [smallZones]uint64 // best score per zone
	var top [smallN]uint64
	if r.weighted {
		top = r.scanWeighted(h, masks, &zbest)
	} else {
		top = r.scanPlain(h, masks, &zbest)
	}
	if r.zones <= 1 {
		return append(out, top[:n]...)
	}
	// Best shard of each of the best n zones, then the best shards not yet
	// taken: top holds n shards, at most len(out) of them already taken.
	for _, zb := range zbest[:r.zones] {
		if zb != 0 {
			out = insertTop(out, n, zb)
		}
	}
	taken := len(out)
	for _, x := range top[:n] {
		if len(out) == n {
			break
		}
		if !contains(out[:taken], x) {
			out = append(out, x)
		}
	}
	return out
}

// scanPlain and scanWeighted are one loop written twice so that the score
// (the body of r.score) inlines: through a call, spills around it doubled
// the cost per shard. Ineligible shards score 0 via masks; top keeps the best
// three in registers with branch-free min/max.
func (r *Ring) scanPlain(h uint64, masks []uint64, zbest *[smallZones]uint64) (top [smallN]uint64) {
	var a, b, c uint64
	seeds, zone := r.seeds, r.zone[:len(r.seeds)]
	masks = masks[:len(seeds)]
	keep, zoned := ^r.idxMask, r.zones > 1
	for i, seed := range seeds {
		hi, lo := bits.Mul64(h^seed, prime1)
		x := ((hi^lo)&keep | uint64(i+1)) & masks[i]
		if zoned {
			z := zone[i] & (smallZones - 1)
			zbest[z] = max(zbest[z], x)
		}
		a, x = max(a, x), min(a, x)
		b, x = max(b, x), min(b, x)
		c = max(c, x)
	}
	return [smallN]uint64{a, b, c}
}

func (r *Ring) scanWeighted(h uint64, masks []uint64, zbest *[smallZones]uint64) (top [smallN]uint64) {
	var a, b, c uint64
	seeds, zone, inv := r.seeds, r.zone[:len(r.seeds)], r.inv[:len(r.seeds)]
	masks = masks[:len(seeds)]
	keep, zoned := ^r.idxMask, r.zones > 1
	for i, seed := range seeds {
		hi, lo := bits.Mul64(h^seed, prime1)
		x := (weightedScore(hi^lo, inv[i])&keep | uint64(i+1)) & masks[i]
		if zoned {
			z := zone[i] & (smallZones - 1)
			zbest[z] = max(zbest[z], x)
		}
		a, x = max(a, x), min(a, x)
		b, x = max(b, x), min(b, x)
		c = max(c, x)
	}
	return [smallN]uint64{a, b, c}
}

func (r *Ring) pickGeneral(h uint64, n int, masks []uint64, u, t []uint64) []uint64 {
	zoned := r.zones > 1
	for i := range masks {
		x := r.score(h, i) & masks[i]
		if x == 0 {
			continue
		}
		u = insertTop(u, n, x)
		if zoned {
			t = r.insertZone(t, n, x)
		}
	}
	if !zoned {
		return u
	}
	taken := len(t)
	for _, x := range u {
		if len(t) == n {
			break
		}
		if !contains(t[:taken], x) {
			t = append(t, x)
		}
	}
	return t
}

// insertTop keeps list as the best n scores seen, best first.
func insertTop(list []uint64, n int, x uint64) []uint64 {
	if len(list) == n {
		if x <= list[n-1] {
			return list
		}
		list = list[:n-1]
	}
	list = append(list, x)
	siftUp(list, len(list)-1)
	return list
}

// insertZone keeps list as the best shard of each of the best n zones. A
// zone evicted from a full list cannot come back with a worse shard: the
// list's last entry only ever improves.
func (r *Ring) insertZone(list []uint64, n int, x uint64) []uint64 {
	z := r.zone[r.index(x)]
	for j, y := range list {
		if r.zone[r.index(y)] == z {
			if x > y {
				list[j] = x
				siftUp(list, j)
			}
			return list
		}
	}
	return insertTop(list, n, x)
}

func siftUp(list []uint64, j int) {
	for ; j > 0 && list[j] > list[j-1]; j-- {
		list[j], list[j-1] = list[j-1], list[j]
	}
}

func contains(list []uint64, x uint64) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

type scratch struct{ u, t []uint64 }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch(n int) *scratch {
	sc := scratchPool.Get().(*scratch)
	if cap(sc.u) < n {
		sc.u = make([]uint64, 0, n)
		sc.t = make([]uint64, 0, n)
	}
	return sc
}
