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

	// The hand-off runs once, whoever asks first (Drain, or Stop when
	// leaving for good); handed is what it did.
	handOnce sync.Once
	handed   handOffResult
}

// handOffResult is what one hand-off did; complete is false when its
// context ended before it had read every record.
type handOffResult struct {
	ringstore.RepairStats
	complete bool
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
		Profile: cfg.GossipProfile, Keys: keys, RestartGrace: cfg.RestartGrace,
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
	// A node that (re)starts brings its shards' records to their owners.
	// Back from a restart, its records are already there: the pass
	// compares and copies nothing (TestRepairCopiesNothingInPlace).
	c.rep.Trigger()

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
// ends). Only a node leaving for good hands off (drain, --leave-on-stop):
// one stopping for a restart keeps its shards in placement (close). It
// runs while the node is still a gossip member, in this order:
//
//  1. stop the background repair, so that one pass, not two, reads the
//     shards: the next step changes the ring, which would wake it;
//  2. announce the state leaving: every member, this one included, drops
//     the node's shards from placement, so new writes go to the new owners
//     while the old shards can still be read;
//  3. run one repair pass over the local shards: each record is merged
//     into its new owners (Merge's laws make this safe beside concurrent
//     writes there).
//
// Only then may the node leave gossip (close). Leaving first would let
// the other members drop the shards before the records were copied, and
// whatever had been written only there would wait for a repair that reads
// shards no member fronts any more: it would be lost.
func (c *cluster) handOff(ctx context.Context) handOffResult {
	c.stopRepair()
	<-c.repairDone
	if err := c.mship.SetState(ring.StateLeaving); err != nil {
		c.log.Warn("announce leaving", "err", err)
	}
	before := c.rep.Stats()
	c.rep.Pass(ctx)
	after := c.rep.Stats()
	moved := handOffResult{RepairStats: ringstore.RepairStats{
		Scanned: after.Scanned - before.Scanned, Copied: after.Copied - before.Copied,
		Failures: after.Failures - before.Failures,
	}, complete: ctx.Err() == nil}
	c.log.Info("handed off records", "scanned", moved.Scanned, "copied", moved.Copied, "failures", moved.Failures,
		"complete", moved.complete)
	return moved
}

// canLeave refuses to leave for good when no healthy shard of another
// node is in the ring: the hand-off would have nowhere to put the
// records, and they would go with this node's memcached.
func (c *cluster) canLeave() error {
	if len(c.cfg.Memcached) == 0 {
		return nil // a router holds no records
	}
	for _, s := range c.mship.Ring().Shards() {
		if s.Healthy && s.Node != c.cfg.NodeID {
			return nil
		}
	}
	return errors.New("no healthy shard of another node is in the ring: the records of this node's shards would have nowhere to go")
}

// handOffOnce runs handOff the first time it is called; later callers
// wait for that one and get its result.
func (c *cluster) handOffOnce(ctx context.Context) handOffResult {
	c.handOnce.Do(func() { c.handed = c.handOff(ctx) })
	return c.handed
}

// close leaves the ring and closes the store. Leaving for good, a node
// that fronts shards hands off first and then leaves gossip: peers drop
// its shards at once. Otherwise it is a restart: no hand-off, and the
// node announces restarting before it leaves gossip, so that peers keep
// its shards in placement, unchanged, for --restart-grace. Its memcached
// usually stays up and every node dials it directly, so reads and writes
// keep reaching its records; a node back within the grace, over the same
// memcached, finds a ring that never changed and nothing to copy.
func (c *cluster) close(ctx context.Context, forGood bool) {
	if forGood && len(c.cfg.Memcached) > 0 {
		hctx, cancel := context.WithTimeout(ctx, c.cfg.HandoffTimeout)
		c.handOffOnce(hctx)
		cancel()
	}
	c.stopRepair()
	<-c.repairDone
	c.stopPolls()
	c.polls.Wait()
	c.unsubscribe()
	if forGood {
		if err := c.mship.Leave(5 * time.Second); err != nil {
			c.log.Warn("leave gossip", "err", err)
		}
	} else {
		c.log.Info("leaving gossip for a restart: the other nodes keep this node's shards in placement",
			"restart_grace", c.cfg.RestartGrace, "shards", c.cfg.Memcached)
		if err := c.mship.LeaveForRestart(5 * time.Second); err != nil {
			c.log.Warn("leave gossip", "err", err)
		}
	}
	_ = c.store.Close()
}
