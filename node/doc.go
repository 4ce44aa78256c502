// Package node is one locsvc node: what `locsvc serve` runs, and what
// tests and benchmarks start in-process.
//
// A Config says what the node is; DefaultConfig is the one home of the
// defaults and Validate of the checks, so that the command line, a config
// file and a test agree on both. Start builds, in order:
//
//   - the store: the embedded one (no shards, no peers), the memcached
//     ring (gossip membership, the replicated store over every member's
//     shards, the repairer of the shards this node fronts), or, with
//     Locator, a gRPC client of a remote cluster;
//   - the core service over it, and the gRPC and HTTP APIs;
//   - the SIP front end, on the service or the remote client, told by the
//     cluster who keeps alive the NAT phones of a node that is gone, and
//     offered those phones by walks of the shards (nat.go);
//   - a Prometheus registry that reads the components' snapshots at
//     scrape time; the shards' item counts are the one figure that needs
//     a dial, shared by the scrapes of a second and bounded by one
//     memcached timeout (records.go).
//
// Ready reports whether the node can serve, Status what it sees, Drain
// turns readiness off, and Stop ends it in the order that loses nothing:
// the front ends finish what they hold, then the node hands its shards'
// records to their next owners while it is still a member (see
// cluster.handOff), then it leaves gossip and closes the store.
//
// The package exists so that cmd/locsvc is only flags, files and
// signals, and so that the lifecycle (the most delicate sequence in the
// system) has a type, a doc and tests.
package node
