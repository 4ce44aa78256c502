package ring

// Keys are placed in two steps, as Ceph places objects: a key hashes to one
// of 2^16 fixed partitions, and a partition's replicas are the first shards
// of its rendezvous walk (pick.go). doc.go has the measurements behind this.

// ReplicaSet appends to buf[:0] and returns the first n distinct healthy
// shards for key: a down shard's place is taken by the next healthy one
// (sloppy quorum). On a zoned ring the walk prefers zones not yet used and
// falls back to any shard when zones run out. The result is shorter than n
// only when fewer healthy shards exist. It does not allocate when
// cap(buf) >= n.
func (r *Ring) ReplicaSet(key string, n int, buf []Shard) []Shard {
	return r.walk(partitionOf(key), n, true, buf)
}

// Preference is the same walk with unhealthy shards included: the key's home
// owners, which repair needs to know while one of them is down. ReplicaSet
// is Preference with the unhealthy shards skipped, extended to n.
func (r *Ring) Preference(key string, n int, buf []Shard) []Shard {
	return r.walk(partitionOf(key), n, false, buf)
}

// partitionBits fixes the number of partitions forever: changing it re-homes
// every record. 2^16 partitions keep the quantisation noise of a shard's
// share near 1% on 10 shards (3% on 64), and a cached walk table at 512 KiB.
const partitionBits = 16

const partitions = 1 << partitionBits

// partitionOf maps a key to its partition. Placement is computed per
// partition, not per key, so that a partition's walk can be computed once
// per snapshot and then looked up (see cache.go).
func partitionOf(key string) uint32 {
	return uint32(keyHash(key) >> (64 - partitionBits))
}

// partitionHash is the hash the walk of partition p is scored with.
func partitionHash(p uint32) uint64 {
	return fmix64(uint64(p)*prime1 + prime2)
}

func (r *Ring) walk(p uint32, n int, healthyOnly bool, buf []Shard) []Shard {
	buf = buf[:0]
	n = r.limit(n, healthyOnly)
	if n == 0 {
		return buf
	}
	if n <= cacheDepth && r.cacheable() {
		w := r.cachedWalk(p, healthyOnly)
		for k := range n {
			buf = append(buf, r.shards[w.at(k)])
		}
		return buf
	}
	// Only n > cacheDepth (or rings too big for the cache) get here.
	var us, ts [stackCands]uint64
	u, t := us[:0], ts[:0]
	if n > stackCands {
		sc := getScratch(n)
		defer scratchPool.Put(sc)
		u, t = sc.u[:0], sc.t[:0]
	}
	for _, c := range r.pick(partitionHash(p), n, healthyOnly, u, t) {
		buf = append(buf, r.shards[r.index(c)])
	}
	return buf
}
