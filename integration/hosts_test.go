package integration

import (
	"testing"
	"time"
)

// Three hosts, each with its own address, memcached and node: a user
// registered through host 1 is found through host 3; host 3 cut off is
// seen dead by the others, and after the partition heals the cluster is
// whole again and still finds the user through every node.
func TestHostsPartitionHeals(t *testing.T) {
	hs := StartHosts(t, 3)
	c := StartClusterOn(t, hs)
	RegisterMany(t, c.Nodes[0], 0, 50, 4)
	if missing := LookupMany(t, c.Nodes[2], 0, 50, 4); missing != 0 {
		t.Fatalf("%d of 50 users not found through host 3", missing)
	}
	hs.Cut(hs.List[2])
	WaitFor(t, 20*time.Second, "hosts 1 and 2 see host 3's node dead", func() bool {
		return aliveMembers(t, c.Nodes[0]) == 2 && aliveMembers(t, c.Nodes[1]) == 2
	})
	hs.Heal(hs.List[2])
	c.WaitMembers(3)
	for i, n := range c.Nodes {
		if missing := LookupMany(t, n, 0, 50, 4); missing != 0 {
			t.Errorf("after the heal, %d of 50 users not found through host %d", missing, i+1)
		}
	}
}
