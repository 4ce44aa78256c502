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
//   - Fan-out, in three parts. Placement (placement.go) names the shards
//     of a key in the order to ask them: its R replicas, then spares.
//     Tolerance (tolerance.go) says how many calls to aim for and how many
//     must succeed, and decides when the outcome is known: enough
//     successes, or too many failures for the rest to make up. The
//     fan-out (fanout.go) calls the shards concurrently, skips those
//     whose breaker is open, replaces each that fails by the next shard
//     on the ring (sloppy quorum, so one dead shard fails no call), and
//     cancels the calls in flight once they are pointless: when the
//     caller's context ends or the quorum is out of reach. A call that
//     has succeeded still waits for its other calls.
//   - Writes: read-merge-write on each replica with gets/cas (add on a
//     miss, retry on a conflict), in parallel, on all R replicas; success
//     needs W acknowledgements. An Update writes only if W shards
//     answered its read, and no write is sent when the open breakers
//     already rule W out. memcached has no transactions, though: a write
//     that fails after some replicas took it leaves it there, visible to
//     reads, and later merges keep it.
//   - Reads: all replicas in parallel, merged; succeeds if one answers.
//     Replicas found missing or stale are repaired in the background.
//   - Contexts: every memcached command gets the caller's context, so its
//     deadline bounds each command (with Config.Timeout) and CAS retries
//     stop when it ends. A call whose context ends fails with an error
//     wrapping ctx.Err(), which the service reports as Unavailable and
//     the gRPC API as DEADLINE_EXCEEDED or CANCELLED. Calls cut short by
//     their context count neither for nor against a shard's breaker.
//   - Connections: every path to a shard (the pipelined clients, the
//     health probe, repair's key listing, the item counts) opens its
//     connections with the node's one DialFunc (Config.Dial, built by
//     Dialer): plain TCP, or TLS for shards that serve only TLS and
//     require client certificates. A shard that closes a new connection
//     unanswered, as a TLS-only memcached does to a plain client, fails
//     with ErrNoAnswer.
//   - Repair: on every membership change, and periodically, each node walks
//     the keys of the shard(s) it fronts (lru_crawler metadump) and merges
//     each record into the replicas the current ring names, paced by a rate
//     limit so live traffic keeps priority.
//   - Scan (scan.go): every record of the ring once, for dumps and counts,
//     without a set of the keys seen: each shard's listing is walked and a
//     key taken only on its first live replica on the ring snapshot of the
//     scan's start; the record is read as Get reads it. ScanOptions.Shards
//     narrows it to a node's own shards, whose scans then partition the
//     ring.
//
// The merge is locsvc.Merge, a join, so every path above may run twice, in
// any order, concurrently, and still converge.
package ringstore
