package ring

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// Ring is an immutable snapshot: safe for concurrent use, never mutated after
// New. A nil *Ring behaves as an empty ring.
type Ring struct {
	shards   []Shard // sorted by ID, one per ID
	healthy  int
	zones    int    // distinct zones; 1 when none is set, and then ignored
	weighted bool   // weights differ: scores need the weighted transform
	idxMask  uint64 // low bits of a packed score that hold index+1

	// Parallel to shards and dense, because the walk reads them for every
	// shard on every lookup and Shard's strings would spread them over many
	// cache lines.
	seeds   []uint64 // keyHash(ID): the shard's identity in every score
	inv     []uint64 // floor((2^64-1) / weight)
	zone    []uint8  // index into the sorted distinct zones, when zones <= 256
	upMask  []uint64 // all ones when healthy, else 0
	allMask []uint64 // all ones: Preference ignores health

	walks [2]walkTable // memoised partition walks: healthy only, all
}

// New builds a snapshot. Placement depends only on the set of shard IDs,
// their weights, zones and health — not on input order — so every node that
// sees the same members computes the same replica sets. Shards sharing an ID
// collapse to one: the one whose Node sorts first (then Addr, Zone, Weight,
// healthy first), so the choice is the same everywhere.
func New(shards []Shard) *Ring {
	ss := slices.Clone(shards)
	slices.SortFunc(ss, func(a, b Shard) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return compareShard(a, b)
	})
	ss = slices.Clip(slices.CompactFunc(ss, func(a, b Shard) bool { return a.ID == b.ID }))

	zones := make([]string, 0, 4)
	for _, s := range ss {
		zones = append(zones, s.Zone)
	}
	slices.Sort(zones)
	zones = slices.Compact(zones)

	n := len(ss)
	r := &Ring{
		shards:  ss,
		zones:   len(zones),
		idxMask: 1<<bits.Len(uint(n)) - 1,
		seeds:   make([]uint64, n),
		inv:     make([]uint64, n),
		zone:    make([]uint8, n),
		upMask:  make([]uint64, n),
		allMask: make([]uint64, n),
	}
	if r.zones > 256 {
		// Zones are failure domains (racks, rooms, sites): hundreds of them
		// mean IDs were put in Zone by mistake; placement then ignores zones
		// rather than carrying a wider index for a case that cannot matter.
		r.zones = 1
	}
	for i, s := range ss {
		r.seeds[i] = keyHash(s.ID)
		r.inv[i] = math.MaxUint64 / uint64(s.weight())
		if r.zones > 1 {
			zi, _ := slices.BinarySearch(zones, s.Zone)
			r.zone[i] = uint8(zi)
		}
		r.allMask[i] = math.MaxUint64
		if s.Healthy {
			r.upMask[i] = math.MaxUint64
			r.healthy++
		}
		if s.weight() != ss[0].weight() {
			r.weighted = true
		}
	}
	return r
}

// compareShard orders duplicates of one ID by every other field, so which
// duplicate survives never depends on input order.
func compareShard(a, b Shard) int {
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	if c := strings.Compare(a.Addr, b.Addr); c != 0 {
		return c
	}
	if c := strings.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	if a.Weight != b.Weight {
		return a.Weight - b.Weight
	}
	if a.Healthy != b.Healthy {
		if a.Healthy {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.Epoch, b.Epoch)
}

// Shards returns a copy of the shards, sorted by ID.
func (r *Ring) Shards() []Shard {
	if r == nil {
		return nil
	}
	return slices.Clone(r.shards)
}

// Len is the number of shards, healthy or not.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.shards)
}

// Healthy is the number of healthy shards: the most ReplicaSet can return.
func (r *Ring) Healthy() int {
	if r == nil {
		return 0
	}
	return r.healthy
}

// Shard returns the shard with the given ID.
func (r *Ring) Shard(id string) (Shard, bool) {
	if r == nil {
		return Shard{}, false
	}
	i, ok := slices.BinarySearchFunc(r.shards, id, func(s Shard, id string) int {
		return strings.Compare(s.ID, id)
	})
	if !ok {
		return Shard{}, false
	}
	return r.shards[i], true
}

// Equal reports whether two snapshots hold the same shards, so callers (and
// Membership) can skip repair when a membership event changed nothing that
// placement or addressing depends on.
func (r *Ring) Equal(o *Ring) bool {
	return slices.Equal(r.shardList(), o.shardList())
}

func (r *Ring) shardList() []Shard {
	if r == nil {
		return nil
	}
	return r.shards
}
