package ringstore

import "github.com/locsvc/locsvc/ring"

// spareShards is how many shards past R a call may fall over to.
const spareShards = 2

// candBuf sizes the callers' buffers for a placement, on their stacks: the
// shard list was the largest allocation of a REGISTER (4 shards of 88
// bytes, twice). A larger R spills to the heap.
const candBuf = 4 + spareShards

// placement is who a call on one key may ask, in the order to ask them:
// the key's replicas first, then spares that stand in for replicas that
// fail. It is a function of the ring snapshot alone, so every node that
// sees the same ring places a key alike.
type placement struct {
	// shards holds the replicas, then the spares, in ring order.
	shards []ring.Shard
	// replicas is how many of shards are replicas: R, or fewer when the
	// ring has fewer healthy shards.
	replicas int
}

// place returns the placement of key on r with R = replicas, its shard
// list appended to buf.
func place(r *ring.Ring, key string, replicas int, buf []ring.Shard) placement {
	shards := r.ReplicaSet(key, replicas+spareShards, buf)
	return placement{shards: shards, replicas: min(replicas, len(shards))}
}

// spares are the shards that stand in for failed replicas.
func (p placement) spares() []ring.Shard { return p.shards[p.replicas:] }
