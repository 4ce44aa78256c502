package integration

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// Sixteen hosts, each with its own address, memcached and node, R=2: the
// cluster converges; the ring's ownership is as even as rendezvous over
// fixed partitions allows; a node killed (-9) is seen dead by all; a third
// of the hosts split off as a group is seen gone on both sides, and once
// reunited the cluster is whole again and every user registered before is
// found through every node, on both of its replicas.
//
// The nodes run the build without the race detector. Sixteen race-built
// nodes (each several times the CPU and memory of a plain one) on CI's two
// shared cores are slow enough to miss probes and suspect healthy peers,
// which is not what this test is about; the race build runs in the
// three-host test (hosts_test.go).
func TestScaleSixteenHosts(t *testing.T) {
	const n, users = 16, 1000
	hs := StartHosts(t, n)
	c := &Cluster{t: t, o: ClusterOptions{Hosts: hs, Plain: true, APIToken: NewAPIToken()}}
	started := time.Now()
	for range n {
		c.AddNode()
	}
	all := func(*Node) []*Node { return c.Nodes }
	waitViews(t, started, 60*time.Second, "every node sees every node alive and every shard healthy", c.Nodes, all)
	checkOwnership(t, c.Nodes[0], n, 2)

	// Through several nodes, so that several nodes' placement is used.
	for i, from := 0, 0; from < users; i, from = i+1, from+users/4 {
		if failed := RegisterMany(t, c.Nodes[i*5], from, from+users/4, 8); failed != 0 {
			t.Fatalf("%d REGISTERs through node%d failed", failed, i*5+1)
		}
	}

	killed := time.Now()
	c.Nodes[1].Kill()
	live := slices.Delete(slices.Clone(c.Nodes), 1, 2)
	everyone := func(*Node) []*Node { return live }
	// memberlist's suspicion lasts up to 6 x 3 x log10(16) s (21.7 s) when
	// no other member confirms it soon; the bound leaves room for that.
	waitViews(t, killed, 60*time.Second, "every node sees node2 dead", live, everyone)

	// A third of the hosts, as one group. Node 1, the seed every node
	// joined through, stays on the larger side.
	side := hs.List[n-n/3:]
	small, large := live[len(live)-n/3:], live[:len(live)-n/3]
	split := time.Now()
	hs.Split(side...)
	itself := func(nd *Node) []*Node {
		if slices.Contains(small, nd) {
			return small
		}
		return large
	}
	waitViews(t, split, 90*time.Second, "the larger side sees only itself alive", large, itself)
	waitViews(t, split, 90*time.Second, "the smaller side sees only itself alive", small, itself)
	healed := time.Now()
	hs.Reunite(side...)
	waitViews(t, healed, 60*time.Second, "every node sees every live node alive and their shards healthy", live, everyone)

	for _, nd := range live {
		if missing := LookupMany(t, nd, 0, users, 8); missing != 0 {
			t.Errorf("after the split healed, %d of %d users not found through %s", missing, users, nd.ID)
		}
	}
	keys := Keys(0, users)
	WaitFor(t, 60*time.Second, "both replicas of every user", func() bool {
		missing, err := c.underReplicated(c.Ring(), keys, 2, 0)
		return err == nil && missing == 0
	})
}

// checkOwnership compares the share of the key space each shard holds
// replicas for (as node nd reports it) with what rendezvous hashing over
// 2^16 fixed partitions (ring/walk.go) gives: each partition makes a
// given shard one of its r replicas with probability r/s, independently,
// so a shard's count of partitions is binomial with mean P*r/s and
// relative deviation sqrt((1-r/s)/(P*r/s)): 1.03 % for 16 shards and R=2.
// Four deviations, which any of 16 shards exceeds with probability below
// 1e-3, bound max/mean at 1.041 and min/mean at 0.959. (ring/doc.go's
// exact R=1 figures, 1.016 on 10 shards and 1.06 on 64, sit within the
// same rule: 1.047 and 1.12.) The placement is a function of the shard
// addresses alone, so this is not a flaky draw: a wrong walk or hash
// shows here, a fair one passes every time.
func checkOwnership(t *testing.T, nd *Node, s, r int) {
	t.Helper()
	st, err := nd.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Shards) != s {
		t.Fatalf("%s lists %d shards, want %d", nd.ID, len(st.Shards), s)
	}
	const partitions = 1 << 16
	p := float64(r) / float64(s)
	dev := math.Sqrt((1 - p) / (partitions * p))
	lo, hi := 1-4*dev, 1+4*dev
	mean, sum := 1/float64(s), 0.0
	worst, best := math.Inf(1), math.Inf(-1)
	for _, sh := range st.Shards {
		sum += sh.Ownership
		worst, best = min(worst, sh.Ownership/mean), max(best, sh.Ownership/mean)
	}
	t.Logf("ownership over %d shards at R=%d: min/mean %.4f, max/mean %.4f (bounds %.3f, %.3f)", s, r, worst, best, lo, hi)
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("shares sum to %v, want 1", sum)
	}
	if worst < lo || best > hi {
		t.Errorf("ownership min/mean %.4f, max/mean %.4f: outside [%.3f, %.3f]", worst, best, lo, hi)
	}
}

// waitViews waits until every node of nodes sees as alive exactly the
// members want(node) names, and as healthy exactly their shards (each
// member fronts one), at most d after start; it logs how long after start
// that was, or where each node stood on a timeout.
func waitViews(t *testing.T, start time.Time, d time.Duration, what string, nodes []*Node, want func(*Node) []*Node) {
	t.Helper()
	last, deadline := "", start.Add(d)
	for {
		last = ""
		for _, nd := range nodes {
			alive, healthy, err := view(nd)
			w := make([]string, 0, len(nodes))
			for _, m := range want(nd) {
				w = append(w, m.ID)
			}
			slices.Sort(w)
			if err != nil || !slices.Equal(alive, w) || !slices.Equal(healthy, w) {
				last += fmt.Sprintf("\n  %s sees alive %v, healthy shards of %v (err %v)", nd.ID, alive, healthy, err)
			}
		}
		if last == "" {
			t.Logf("%s: after %v", what, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s:%s", d, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// view is what nd sees: the IDs of the members alive and of the nodes
// whose shards are healthy, each sorted.
func view(nd *Node) (alive, healthy []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := nd.Cluster.Status(ctx, &locsvcv1.StatusRequest{})
	if err != nil {
		return nil, nil, err
	}
	for _, m := range st.Members {
		if m.Alive {
			alive = append(alive, m.NodeId)
		}
	}
	for _, s := range st.Shards {
		if s.Healthy {
			healthy = append(healthy, s.NodeId)
		}
	}
	slices.Sort(alive)
	slices.Sort(healthy)
	return alive, healthy, nil
}
