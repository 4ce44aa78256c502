package ring

import (
	"log/slog"
	"math/rand/v2"
	"time"
)

// reconnectFor is how long a failed member's address is retried; Serf's
// reconnect_timeout defaults to the same day. A member that said goodbye
// (StateLeaving or StateRestarting before it went) is never retried.
const reconnectFor = 24 * time.Hour

// lostMember is a member that failed detection without leaving: perhaps
// dead, perhaps on the other side of a partition.
type lostMember struct {
	addr  string
	since time.Time
}

// noteLost records, under m.mu, what the end of mem means for reconnect.
func (m *Membership) noteLost(name string, mem Member) {
	switch {
	case mem.Alive || mem.State == StateLeaving || mem.State == StateRestarting:
		// Said goodbye: it comes back by itself, or not at all.
		delete(m.lost, name)
	case m.lost[name].addr != mem.GossipAddr:
		m.lost[name] = lostMember{addr: mem.GossipAddr, since: time.Now()}
	}
}

// reconnectLoop joins, about once an interval, the address of one member
// that failed without leaving. memberlist never contacts a dead member
// again once GossipToTheDeadTime has passed, and rejoinLoop acts only for
// a node left alone, so without this the two sides of a partition that
// each kept several nodes (a rack cut off from the rest) would stay two
// clusters for good, and a member wrongly declared dead would stay dead to
// whoever declared it. A join is one push/pull: the sides exchange their
// views, each node named dead refutes it, and gossip carries the rest.
// Serf does the same for Consul.
func (m *Membership) reconnectLoop(every time.Duration) {
	defer m.wg.Done()
	for {
		// Jittered, so that the nodes' attempts do not fall together.
		wait := every/2 + rand.N(every)
		select {
		case <-m.stop:
			return
		case <-time.After(wait):
		}
		name, addr := m.pickLost()
		if addr == "" {
			continue
		}
		if _, err := m.ml.Join([]string{addr}); err != nil {
			m.log.Debug("ring: reconnect failed", slog.String("node", name), slog.Any("err", err))
			continue
		}
		m.stats.reconnects.Add(1)
		m.log.Info("ring: reconnected to a failed member", slog.String("node", name), slog.String("addr", addr))
	}
}

// pickLost returns one lost member at random, forgetting those lost for
// longer than reconnectFor; "" when there is none.
func (m *Membership) pickLost() (name, addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, l := range m.lost {
		if time.Since(l.since) > reconnectFor {
			delete(m.lost, k)
			continue
		}
		// Reservoir sampling: each remaining member is picked with
		// probability 1/n.
		if n++; rand.N(n) == 0 {
			name, addr = k, l.addr
		}
	}
	return name, addr
}
