package ring

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// forgetDeadSoon stops memberlist's own gossip to a dead member after half
// a second instead of 15 s, so that what brings a member back in these
// tests is reconnect and not that grace period.
func forgetDeadSoon(c *Config) {
	c.tune = func(mc *memberlist.Config) { mc.GossipToTheDeadTime = 500 * time.Millisecond }
}

// restartAlone closes m hard and starts a member of the same name at the
// same address with no seeds, so that only its peers can bring it back.
func restartAlone(t *testing.T, m *Membership, reconnect time.Duration) *Membership {
	t.Helper()
	id, addr := m.cfg.NodeID, m.LocalAddr()
	m.Close()
	return testNode(t, id, nil, forgetDeadSoon, func(c *Config) { c.BindAddr = addr; c.ReconnectInterval = reconnect })
}

// TestReconnectFailedMember: a member that failed is joined again by its
// peers once it answers, although nobody names it as a seed and it names
// none: what merges the two sides of a healed partition.
func TestReconnectFailedMember(t *testing.T) {
	t.Parallel()
	fast := func(c *Config) { c.ReconnectInterval = 200 * time.Millisecond }
	a := testNode(t, "a", nil, fast, forgetDeadSoon)
	b := testNode(t, "b", []string{a.LocalAddr()}, fast, forgetDeadSoon)
	c := testNode(t, "c", []string{a.LocalAddr()}, fast, forgetDeadSoon)
	waitFor(t, 5*time.Second, "three members", func() bool { return a.Ring().Len() == 3 && c.Ring().Len() == 3 })

	c.Close()
	waitFor(t, 15*time.Second, "c seen failed", func() bool { return a.Ring().Len() == 2 && b.Ring().Len() == 2 })
	time.Sleep(time.Second) // past GossipToTheDeadTime
	c = restartAlone(t, c, time.Hour)
	waitFor(t, 15*time.Second, "c joined again by its peers", func() bool {
		return a.Ring().Len() == 3 && b.Ring().Len() == 3 && c.Ring().Len() == 3
	})
	if a.Stats().Reconnects+b.Stats().Reconnects == 0 {
		t.Error("no reconnect counted")
	}
}

// TestNoReconnectAfterLeave: a member that left is not called back.
func TestNoReconnectAfterLeave(t *testing.T) {
	t.Parallel()
	fast := func(c *Config) { c.ReconnectInterval = 100 * time.Millisecond }
	a := testNode(t, "a", nil, fast, forgetDeadSoon)
	b := testNode(t, "b", []string{a.LocalAddr()}, fast, forgetDeadSoon)
	waitFor(t, 5*time.Second, "two members", func() bool { return a.Ring().Len() == 2 && b.Ring().Len() == 2 })
	addr := b.LocalAddr()
	if err := b.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b gone", func() bool { return a.Ring().Len() == 1 })
	time.Sleep(time.Second) // past GossipToTheDeadTime
	b = testNode(t, "b", nil, forgetDeadSoon, func(c *Config) { c.BindAddr = addr; c.ReconnectInterval = time.Hour })
	time.Sleep(time.Second) // ten of a's reconnect intervals
	if a.Ring().Len() != 1 || b.Ring().Len() != 1 || a.Stats().Reconnects != 0 {
		t.Errorf("a called back a member that left: rings %d and %d, %d reconnects",
			a.Ring().Len(), b.Ring().Len(), a.Stats().Reconnects)
	}
}
