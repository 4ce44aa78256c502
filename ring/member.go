package ring

import "time"

// Member is a node as this node currently knows it.
type Member struct {
	Meta
	GossipAddr string
	// Alive is false for a node that left or failed detection; such members
	// are kept for deadRetention so a status page can show them.
	Alive bool
}

// deadRetention is how long a departed member stays listed by Members.
const deadRetention = 5 * time.Minute

// shards is what a member contributes to the ring: nothing unless it is
// alive and in a known state; a leaving member's shards stay but unhealthy
// (see StateLeaving).
func (m Member) shards() []Shard {
	if !m.Alive || m.State > StateLeaving {
		return nil
	}
	out := make([]Shard, 0, len(m.Shards))
	for _, s := range m.Shards {
		out = append(out, Shard{
			ID:      s.Addr,
			Addr:    s.Addr,
			Node:    m.NodeID,
			Zone:    m.Zone,
			Weight:  s.Weight,
			Healthy: s.Healthy && m.State != StateLeaving,
			Epoch:   s.Epoch,
		})
	}
	return out
}
