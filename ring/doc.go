// Package ring decides which memcached shards hold a key, and keeps the set
// of shards current from gossip.
//
// Placement (ring.go, walk.go, pick.go, cache.go) is pure and allocation-free
// on the hot path. Membership (membership.go and the files it names) runs
// hashicorp/memberlist and turns what nodes announce into a new immutable
// *Ring after every change.
//
// # Placement: rendezvous hashing over fixed partitions
//
// A key hashes to one of 2^16 partitions (fixed forever). A partition's
// replicas come from rendezvous (highest random weight) hashing: every shard
// scores the partition and the walk takes shards in descending score;
// unhealthy shards are skipped (sloppy quorum), zones not yet used are
// preferred, weights use the logarithmic method (score -ln(u)/w, computed in
// integers so every architecture agrees). The first four shards of each
// partition's walk are memoised in the snapshot on first use.
//
// Measured on the development VM (2 vCPU AMD EPYC, 2.0 GHz, shared; the
// numbers are go test -bench . ./ring/, BenchmarkChoice for the rejected
// designs), 1,000,000 keys:
//
//	                          ReplicaSet n=3   build      max/mean   moved/optimal
//	                          64 shards        64 shards  10 shards  10->11, n=2
//	token ring, 256 vnodes    144 ns           3.7 ms     1.092      1.046
//	token ring, 1024 vnodes   175 ns           17 ms      1.066      0.992
//	token ring, 4096 vnodes   228 ns           73 ms      1.054      0.996
//	rendezvous per key        313 ns           20 µs      1.004      1.002
//	rendezvous, partitions    66 ns            20 µs      1.022      0.991
//
// The token ring needs thousands of virtual nodes per shard to come near 1.05
// balance on 10 shards, and then both lookup and build (on every membership
// event) are slow. Per-key rendezvous has ideal balance and movement and
// spreads a failed shard's keys evenly over all others, but it scores every
// shard on every lookup: about 3 ns per shard here, so 64 shards alone
// exceed the 200 ns budget. Partitions keep rendezvous' properties at
// partition granularity and make the lookup O(1) once warm: a key hash, one
// atomic load from a 512 KiB table, three copies. The price is quantisation:
// each shard owns a whole number of partitions, so balance on 10 shards is
// 1.02 rather than 1.004; the worst partition share over the mean is 1.016
// on 10 shards, 1.06 on 64 and 1.16 on 256 (exact, from Ownership). A
// partition's first lookup in a new snapshot pays the full walk (~62 ns at 10 shards, ~270 ns at
// 64, ~1 µs at 256); Ownership computes every partition exactly and fills the
// table as it goes (15 ms at 10 shards, 53 ms at 64 on a new snapshot;
// 0.7 ms once warm). Jump hash was not considered (it cannot remove an
// arbitrary shard), nor Maglev (its table moves more keys than the optimum on
// change and has no natural replica walk).
//
// The key hash is a small 8-byte-at-a-time multiply-rotate hash with the
// MurmurHash3 finalizer: 15 ns for a 36-byte key against 45 ns for an inline
// FNV-1a and 118 ns with 2 allocations for hash/fnv; xxhash was not needed.
// All hash constants, the partition count and the scoring are part of the
// placement contract: TestGolden pins them, and changing any of them moves
// every record.
//
// # Membership
//
// Each node gossips a small Meta (meta.go: its addresses, zone, state and the
// memcached shards it fronts with their health) as memberlist node metadata.
// Events from memberlist only record the change and wake a builder goroutine,
// which builds the next *Ring outside memberlist's locks, swaps it in with an
// atomic pointer and offers it to subscribers without ever blocking. See
// membership.go for the decisions on joining, leaving, restarts and failed
// seeds, and presence.go for what a member's shards are in the ring.
package ring
