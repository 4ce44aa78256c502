package ring

import "time"

// presence is what a member's shards are in the ring.
type presence uint8

const (
	absent    presence = iota // not in the ring
	placed                    // in the ring, with the health last known
	departing                 // in the ring, unhealthy: routed around (StateLeaving)
)

// presenceOf decides what a member's shards are in the ring, from what
// this node knows of it: its last announced state and grace, whether
// gossip has it alive, and when it went away (gone, read only when it is
// not alive). It also returns when that decision will change by itself
// (zero: not before the member changes), so that the ring can be rebuilt
// then.
//
// The rules, and why:
//   - alive, joining, active or restarting: placed. A restarting node is
//     still up until it leaves gossip.
//   - alive and leaving: departing, so that writes go to the new owners
//     while the hand-off reads the old shards.
//   - gone after announcing restarting: placed, as it was, until grace
//     has passed since it went. Its memcached usually still runs and
//     every node dials every shard, so keeping the shard keeps the ring
//     equal: no repair is woken, nothing is copied, and the node comes
//     back to a ring where its shards never left. Keeping a shard whose
//     memcached is down is no worse than a failed shard on a live node:
//     the store's breakers route around it, and peers probe it meanwhile
//     (health.go) so that it is marked unhealthy and repaired around.
//   - gone otherwise (crashed, or left for good), or restarting for
//     longer than its grace: absent, and repair restores the copies.
//   - alive in a state this version does not know: absent, as before.
func presenceOf(s State, alive bool, grace time.Duration, gone, now time.Time) (presence, time.Time) {
	if alive {
		switch s {
		case StateJoining, StateActive, StateRestarting:
			return placed, time.Time{}
		case StateLeaving:
			return departing, time.Time{}
		}
		return absent, time.Time{}
	}
	if s == StateRestarting && grace > 0 {
		if end := gone.Add(grace); now.Before(end) {
			return placed, end
		}
	}
	return absent, time.Time{}
}

// shardsOf is what a member with presence p contributes to the ring: its
// shards as listed, unhealthy when departing.
func shardsOf(m Member, p presence, list []ShardStatus) []Shard {
	if p == absent {
		return nil
	}
	out := make([]Shard, 0, len(list))
	for _, s := range list {
		out = append(out, Shard{
			ID:      s.Addr,
			Addr:    s.Addr,
			Node:    m.NodeID,
			Zone:    m.Zone,
			Weight:  s.Weight,
			Healthy: s.Healthy && p != departing,
			Epoch:   s.Epoch,
		})
	}
	return out
}
