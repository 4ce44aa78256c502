package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
)

// cluster is a node's part of the memcached ring: its gossip membership,
// the replicated store over every member's shards, and the repairer of the
// shards it fronts.
type cluster struct {
	cfg   *Config
	log   *slog.Logger
	mship *ring.Membership
	store *ringstore.Store
	rep   *ringstore.Repairer
	dial  ringstore.DialFunc // to any shard, TLS or not

	stopRepair  context.CancelFunc
	repairDone  chan struct{}
	unsubscribe func()
	// peers names who keeps alive a gone node's phones; the walks find
	// them (nat.go; not run without --nat-ping).
	peers   *natPeers
	stopNAT context.CancelFunc
	natDone sync.WaitGroup

	// The local shards' item counts for locsvc_shard_records, read on
	// demand and kept for shardFresh (records.go).
	polls      sync.WaitGroup
	stopPolls  context.CancelFunc
	pollCtx    context.Context
	mu         sync.Mutex
	records    map[string]uint64
	recordsAt  time.Time
	refreshing chan struct{} // closed when the refresh under way ends
}

// openCluster joins the ring and starts repair. addrs are what the node
// serves on, announced in its gossip metadata.
func openCluster(cfg *Config, addrs announced, log *slog.Logger) (*cluster, error) {
	keys, err := cfg.gossipKeys()
	if err != nil {
		return nil, err
	}
	shards := make([]ring.ShardStatus, len(cfg.Memcached))
	for i, a := range cfg.Memcached {
		shards[i] = ring.ShardStatus{Addr: a}
	}
	timeout := cfg.MemcachedTimeout
	// The one way this node reaches any shard: the probe, the store and
	// the item counts all take it.
	dial := ringstore.Dialer(cfg.MemcachedTLS)
	probe := newShardProbe(dial, timeout, cfg.MemcachedTLS, log.With("component", "store"))
	mship, err := ring.Start(ring.Config{
		NodeID: cfg.NodeID, BindAddr: cfg.Gossip, Advertise: cfg.gossipAdvertise(), Join: cfg.Join,
		Profile: cfg.GossipProfile, Keys: keys,
		Meta: ring.Meta{
			NodeID: cfg.NodeID, GRPC: addrs.grpc, HTTP: addrs.http, SIP: addrs.sip, Zone: cfg.Zone,
			State: ring.StateActive, Shards: shards,
		},
		HealthCheck: probe.check,
		Logger:      log.With("component", "gossip"),
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	c := &cluster{cfg: cfg, log: log, mship: mship, dial: dial, peers: &natPeers{mship: mship}}
	c.store = ringstore.New(mship, ringstore.Config{
		Replicas: cfg.Replicas, WriteQuorum: cfg.WriteQuorum, Timeout: timeout, ConnsPerShard: cfg.MemcachedConns,
		Dial: dial, Logger: log.With("component", "store"),
	})
	c.rep = c.store.NewRepairer(cfg.Memcached, cfg.RepairRate, cfg.RepairInterval)
	var ctx context.Context
	ctx, c.stopRepair = context.WithCancel(context.Background())
	changes, unsubscribe := mship.Subscribe()
	c.unsubscribe = unsubscribe
	c.repairDone = make(chan struct{})
	go func() { defer close(c.repairDone); c.rep.Run(ctx, changes) }()
	c.rep.Trigger() // a node that (re)starts brings its shards' records to their owners

	c.pollCtx, c.stopPolls = context.WithCancel(context.Background())

	log.Info("joined the ring", "gossip", mship.LocalAddr(), "members", len(mship.Members()), "shards", mship.Ring().Len())
	return c, nil
}

// ready fails while no shard of the ring is healthy: the node could
// answer nothing but 503.
func (c *cluster) ready() error {
	if c.mship.Ring().Healthy() == 0 {
		return errors.New("no healthy memcached shard in the ring")
	}
	return nil
}

// handOff gives the records of the shards this node fronts to the owners
// the ring names without them, and returns when they hold them (or ctx
// ends). It runs while the node is still a gossip member, in this order:
//
//  1. announce the state leaving: every member, this one included, drops
//     the node's shards from placement, so new writes go to the new owners
//     while the old shards can still be read;
//  2. stop the background repair, so that one pass, not two, reads the
//     shards;
//  3. run one repair pass over the local shards: each record is merged
//     into its new owners (Merge's laws make this safe beside concurrent
//     writes there).
//
// Only then may the node leave gossip (close). Leaving first would let
// the other members drop the shards before the records were copied, and
// whatever had been written only there would wait for a repair that reads
// shards no member fronts any more: it would be lost.
func (c *cluster) handOff(ctx context.Context) ringstore.RepairStats {
	if err := c.mship.SetState(ring.StateLeaving); err != nil {
		c.log.Warn("announce leaving", "err", err)
	}
	c.stopRepair()
	<-c.repairDone
	before := c.rep.Stats()
	c.rep.Pass(ctx)
	after := c.rep.Stats()
	moved := ringstore.RepairStats{
		Scanned: after.Scanned - before.Scanned, Copied: after.Copied - before.Copied,
		Failures: after.Failures - before.Failures,
	}
	c.log.Info("handed off records", "scanned", moved.Scanned, "copied", moved.Copied, "failures", moved.Failures)
	return moved
}

// close hands off (when the node fronts shards), leaves gossip and closes
// the store.
func (c *cluster) close(ctx context.Context) {
	if len(c.cfg.Memcached) > 0 {
		hctx, cancel := context.WithTimeout(ctx, c.cfg.HandoffTimeout)
		c.handOff(hctx)
		cancel()
	}
	c.stopRepair()
	<-c.repairDone
	c.stopPolls()
	c.polls.Wait()
	c.unsubscribe()
	if err := c.mship.Leave(5 * time.Second); err != nil {
		c.log.Warn("leave gossip", "err", err)
	}
	_ = c.store.Close()
}
