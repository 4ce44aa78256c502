// Package ringstore is the replicated locsvc.Store over a ring of plain
// memcached servers: what memcached lacks for a location table, added on
// the client side.
//
//   - Placement: the ring (package ring) names the R shards of a key; this
//     package keeps one client per shard address and picks the shard
//     itself. The client is internal/mcpipe, which pipelines the commands
//     of concurrent requests over two connections per shard: gomemcache,
//     the first choice, gives every command a connection of its own for
//     its round trip, and that cost more CPU per REGISTER than everything
//     else the node does (docs/BENCHMARKS.md).
//   - Writes: read-merge-write on each replica with gets/cas (add on a
//     miss, retry on a conflict), in parallel; success needs W
//     acknowledgements. A replica that fails is replaced by the next shard on
//     the ring (sloppy quorum), so one dead shard fails no write.
//   - Reads: all replicas in parallel, merged; succeeds if one answers.
//     Replicas found missing or stale are repaired in the background.
//   - Repair: on every membership change, and periodically, each node walks
//     the keys of the shard(s) it fronts (lru_crawler metadump) and merges
//     each record into the replicas the current ring names, paced by a rate
//     limit so live traffic keeps priority.
//
// The merge is locsvc.Merge, a join, so every path above may run twice, in
// any order, concurrently, and still converge.
package ringstore
