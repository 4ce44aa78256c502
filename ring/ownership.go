package ring

// Ownership returns, per shard ID, the fraction of the key space for which
// the shard is among the first n healthy replicas, divided by the number of
// replicas a key gets (min(n, healthy shards)), so the shares sum to 1 when
// any shard is healthy. Unhealthy shards are listed with 0.
//
// The answer is exact: keys map uniformly onto the fixed partitions, so
// counting over all 2^16 partitions is the key space. It costs one walk per
// partition on a fresh snapshot (tens of milliseconds at 64 shards) and
// leaves those walks cached for ReplicaSet, about 1 ms afterwards.
func (r *Ring) Ownership(n int) map[string]float64 {
	out := make(map[string]float64, r.Len())
	if r == nil {
		return out
	}
	for _, s := range r.shards {
		out[s.ID] = 0
	}
	n = r.limit(n, true)
	if n == 0 {
		return out
	}
	counts := make([]uint64, len(r.shards))
	if n <= cacheDepth && r.cacheable() {
		for p := range uint32(partitions) {
			w := r.cachedWalk(p, true)
			for k := range n {
				counts[w.at(k)]++
			}
		}
	} else {
		u, t := make([]uint64, 0, n), make([]uint64, 0, n)
		for p := range uint32(partitions) {
			for _, c := range r.pick(partitionHash(p), n, true, u[:0], t[:0]) {
				counts[r.index(c)]++
			}
		}
	}
	total := float64(partitions * n)
	for i, s := range r.shards {
		out[s.ID] = float64(counts[i]) / total
	}
	return out
}
