package ring

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// refWalk is the walk written the obvious way: score every eligible shard,
// sort, then take the best shard of each unused zone before any other. The
// fast paths (branch-free small pick, general pick, partition cache) must
// all agree with it.
func refWalk(r *Ring, h uint64, n int, healthyOnly bool) []int {
	var order []uint64
	for i, s := range r.shards {
		if healthyOnly && !s.Healthy {
			continue
		}
		order = append(order, r.score(h, i))
	}
	slices.Sort(order)
	slices.Reverse(order)
	var out []int
	if r.zones > 1 {
		used := map[string]bool{}
		for _, x := range order {
			if z := r.shards[r.index(x)].Zone; !used[z] {
				used[z] = true
				out = append(out, r.index(x))
			}
		}
	}
	for _, x := range order {
		if !slices.Contains(out, r.index(x)) {
			out = append(out, r.index(x))
		}
	}
	return out[:min(n, len(out))]
}

// randomShards builds a ring description with the given features turned on.
func randomShards(rng *rand.Rand, n int, zones int, weighted bool, downFrac float64) []Shard {
	ss := testShards(n)
	for i := range ss {
		if zones > 0 {
			ss[i].Zone = fmt.Sprintf("zone-%d", rng.IntN(zones))
		}
		if weighted {
			ss[i].Weight = rng.IntN(5) // 0 means 1
		}
		ss[i].Healthy = rng.Float64() >= downFrac
	}
	return ss
}
