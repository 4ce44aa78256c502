package ring

import (
	"sync/atomic"
	"time"
)

// Stats are cheap counters for a status page.
type Stats struct {
	Members, AliveMembers int
	Events                uint64    // memberlist join/leave/update notifications
	Rebuilds              uint64    // snapshots built
	RingChanges           uint64    // snapshots that differed from the previous one
	LastRingChange        time.Time // zero before the first
	Announcements         uint64    // own metadata updates gossiped
	HealthChecks          uint64
	HealthChanges         uint64 // shard health flips: announced, or probed on a node away for a restart
	JoinFailures          uint64 // join attempts in which no seed answered
	Reconnects            uint64 // joins to a failed member that succeeded
	GossipHealthScore     int    // memberlist's awareness score: 0 is healthy
}

type counters struct {
	events, rebuilds, ringChanges, announcements atomic.Uint64
	healthChecks, healthChanges, joinFailures    atomic.Uint64
	reconnects                                   atomic.Uint64
	lastChange                                   atomic.Int64
}

// Stats returns the current counters.
func (m *Membership) Stats() Stats {
	s := Stats{
		Events:            m.stats.events.Load(),
		Rebuilds:          m.stats.rebuilds.Load(),
		RingChanges:       m.stats.ringChanges.Load(),
		Announcements:     m.stats.announcements.Load(),
		HealthChecks:      m.stats.healthChecks.Load(),
		HealthChanges:     m.stats.healthChanges.Load(),
		JoinFailures:      m.stats.joinFailures.Load(),
		Reconnects:        m.stats.reconnects.Load(),
		GossipHealthScore: m.ml.GetHealthScore(),
	}
	if ns := m.stats.lastChange.Load(); ns != 0 {
		s.LastRingChange = time.Unix(0, ns)
	}
	for _, mem := range m.Members() {
		s.Members++
		if mem.Alive {
			s.AliveMembers++
		}
	}
	return s
}
