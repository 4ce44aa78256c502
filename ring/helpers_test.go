package ring

import (
	"fmt"
	"strconv"
)

// testShards returns n healthy equal-weight shards named like real memcached
// addresses; structured, near-identical IDs are the hard case for seeds.
func testShards(n int) []Shard {
	out := make([]Shard, n)
	for i := range out {
		addr := fmt.Sprintf("10.0.%d.%d:11211", i/250, i%250+1)
		out[i] = Shard{ID: addr, Addr: addr, Node: "node-" + strconv.Itoa(i), Healthy: true}
	}
	return out
}

// testKeys returns keys shaped like locsvc's: a prefix and an AoR, sequential
// so a weak hash would show.
func testKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "loc:sip:user" + strconv.Itoa(i) + "@example.com"
	}
	return out
}

func ids(ss []Shard) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// primaryCounts counts keys per primary shard ID.
func primaryCounts(r *Ring, keys []string) map[string]int {
	counts := make(map[string]int)
	buf := make([]Shard, 0, 1)
	for _, k := range keys {
		buf = r.ReplicaSet(k, 1, buf)
		counts[buf[0].ID]++
	}
	return counts
}

func maxOverMean(counts map[string]int, shards, keys int) float64 {
	mx := 0
	for _, c := range counts {
		mx = max(mx, c)
	}
	return float64(mx) / (float64(keys) / float64(shards))
}

// movedFraction is the share of replica slots that change between two rings:
// for each key, how many of its n replicas in after were not in before,
// over keys*n. Adding one shard to k, the optimum is 1/(k+1).
func movedFraction(before, after *Ring, keys []string, n int) float64 {
	moved := 0
	b := make([]Shard, 0, n)
	a := make([]Shard, 0, n)
	for _, k := range keys {
		b = before.ReplicaSet(k, n, b)
		a = after.ReplicaSet(k, n, a)
		for _, x := range a {
			found := false
			for _, y := range b {
				if x.ID == y.ID {
					found = true
					break
				}
			}
			if !found {
				moved++
			}
		}
	}
	return float64(moved) / float64(len(keys)*n)
}
