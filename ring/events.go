package ring

import (
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
)

// events is memberlist's EventDelegate. memberlist calls it with its node
// lock held, so it must not call back into memberlist or do real work: it
// records the member under the Membership's own short lock and wakes the
// builder, which makes the new Ring elsewhere.
type events struct{ m *Membership }

func (e events) NotifyJoin(n *memberlist.Node)   { e.m.observe(n, true) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.observe(n, true) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.m.observe(n, false) }

func (m *Membership) observe(n *memberlist.Node, alive bool) {
	m.stats.events.Add(1)
	if n.Name == m.cfg.NodeID {
		return // our own metadata is authoritative locally (localMember)
	}
	meta, err := decodeMeta(n.Name, n.Meta)
	if err != nil && alive {
		// Still listed, with no shards: a newer, incompatible node is
		// visible on a status page instead of silently absent.
		m.log.Warn("ring: ignoring metadata of member", slog.String("node", n.Name), slog.Any("err", err))
	}
	mem := Member{Meta: meta, GossipAddr: n.Address(), Alive: alive}
	m.mu.Lock()
	e := memberEntry{Member: mem, since: time.Now()}
	if old, ok := m.members[n.Name]; ok && !alive {
		// Keep what it last announced (its state decides whether its
		// shards stay: presenceOf); a second notice of the same departure
		// must not restart its grace.
		e.Meta = old.Meta
		if !old.Alive {
			e.since, e.probed = old.since, old.probed
		}
	}
	m.members[n.Name] = e
	m.noteLost(n.Name, e.Member)
	m.mu.Unlock()
	m.wakeBuilder()
}
