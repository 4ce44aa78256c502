package node

import (
	"context"
	"sync"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
	"github.com/locsvc/locsvc/sipfront"
)

// NAT keepalives across a farm (--nat-ping). The SIP front end pings the
// phones whose REGISTER this node accepted; the cluster decides who pings
// a phone whose home node is gone, and finds those phones, since only the
// store knows them.

// natPeers answers the front end's Peers from gossip: a phone's pinger is
// its home node while that is a live member; else the node that fronts
// the first live replica of the AoR's record, which every member computes
// alike from the same ring and which finds the record on its own shard.
type natPeers struct {
	mship *ring.Membership

	mu    sync.Mutex
	alive map[string]bool
	at    time.Time
}

// aliveFor is how long a reading of the members serves: the keepalives
// ask for every ping, gossip changes far less often.
const aliveFor = time.Second

func (p *natPeers) Pinger(aor, home string) string {
	if p.isAlive(home) {
		return home
	}
	var buf [1]ring.Shard
	set := p.mship.Ring().ReplicaSet(locsvc.StoreKey(aor), 1, buf[:0])
	if len(set) == 0 {
		return ""
	}
	return set[0].Node
}

// forget drops the reading of the members, so that the next question
// reads them afresh: a walk that follows a ring change must see the
// member that left as gone.
func (p *natPeers) forget() {
	p.mu.Lock()
	p.alive = nil
	p.mu.Unlock()
}

func (p *natPeers) isAlive(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); p.alive == nil || now.Sub(p.at) > aliveFor {
		p.alive = make(map[string]bool)
		for _, m := range p.mship.Members() {
			p.alive[m.NodeID] = m.Alive
		}
		p.at = now
	}
	return p.alive[node]
}

// natWalks offers the front end the bindings of the records that may
// hold phones it should keep alive: once at start, every shard (this
// node's own phones, after a restart, are anywhere in the ring); then,
// at each ring change and every repair interval, the shards it fronts
// (where the records whose first live replica it is, the ones it takes
// over when their home is gone, live). The front end keeps those whose
// pinger it is. Paced at the repair rate.
//
// A node away for a restart changes no ring, so its phones are taken over
// no sooner than the next periodic walk, or the end of its grace; until it
// is back (its first walk covers every shard) most go unpinged. Restarts take seconds, well inside the
// NAT timeouts the pings cover; walking every shard on each restart to
// save those seconds would cost every node a full read of its shard.
func (c *cluster) natWalks(ctx context.Context, sip *sipfront.Server) {
	changes, unsubscribe := c.mship.Subscribe()
	defer unsubscribe()
	<-changes // the snapshot of now: the first walk reads it
	offer := func(_ string, set locsvc.BindingSet) {
		if bs := set.Live(time.Now()); len(bs) > 0 {
			sip.NATCandidates(set.AoR, bs)
		}
	}
	walk := func(shards []string) {
		c.peers.forget()
		for _, sh := range shards {
			if err := c.store.Walk(ctx, sh, c.cfg.RepairRate, offer); err != nil && ctx.Err() == nil {
				c.log.Warn("NAT keepalives: cannot read a shard for phones to take over", "shard", sh, "err", err)
			}
		}
	}
	var all []string
	for _, sh := range c.mship.Ring().Shards() {
		all = append(all, sh.Addr)
	}
	walk(all)
	tick := time.NewTicker(c.cfg.RepairInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-tick.C:
		}
		walk(c.cfg.Memcached)
	}
}

// startNATWalks runs natWalks until stopNATWalks.
func (c *cluster) startNATWalks(sip *sipfront.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopNAT = cancel
	c.natDone.Add(1)
	go func() {
		defer c.natDone.Done()
		c.natWalks(ctx, sip)
	}()
}

func (c *cluster) stopNATWalks() {
	if c.stopNAT != nil {
		c.stopNAT()
	}
	c.natDone.Wait()
}
