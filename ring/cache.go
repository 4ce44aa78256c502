package ring

import (
	"sync"
	"sync/atomic"
)

// The first cacheDepth shards of each partition's walk are computed on first
// use and kept for the life of the snapshot. A snapshot is immutable, so a
// walk never goes stale; concurrent first uses compute the same value and
// either store wins. This turns the O(shards) rendezvous walk (~290 ns at 64
// shards) into a load and an unpack, and lets New stay O(shards) instead of
// filling 2^16 walks up front.
const cacheDepth = 4

// walkEntry packs up to cacheDepth shard indices, each as index+1 in 16
// bits, first in the low bits. 0 means "not computed yet".
type walkEntry uint64

func (w walkEntry) at(k int) int { return int(w>>(16*k)&0xffff) - 1 }

type walkTable struct {
	once  sync.Once
	slots []atomic.Uint64
}

func (t *walkTable) get() []atomic.Uint64 {
	t.once.Do(func() { t.slots = make([]atomic.Uint64, partitions) })
	return t.slots
}

// cacheable reports whether indices fit the 16-bit fields.
func (r *Ring) cacheable() bool { return len(r.shards) < 1<<16-1 }

// cachedWalk returns the first min(cacheDepth, eligible) shards of
// partition p's walk. The caller ensures at least one shard is eligible, so
// a computed entry is never 0.
func (r *Ring) cachedWalk(p uint32, healthyOnly bool) walkEntry {
	table := &r.walks[0]
	if !healthyOnly && r.healthy < len(r.shards) {
		table = &r.walks[1] // with every shard healthy both walks are the same
	}
	slots := table.get()
	if w := walkEntry(slots[p].Load()); w != 0 {
		return w
	}
	var us, ts [cacheDepth]uint64
	var w walkEntry
	n := r.limit(cacheDepth, healthyOnly)
	for k, c := range r.pick(partitionHash(p), n, healthyOnly, us[:0], ts[:0]) {
		w |= walkEntry(r.index(c)+1) << (16 * k)
	}
	slots[p].Store(uint64(w))
	return w
}
