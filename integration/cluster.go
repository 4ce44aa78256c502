package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
)

// Cluster is a set of locsvc nodes, each fronting its own memcached.
type Cluster struct {
	t      testing.TB
	Shards []*Memcached
	Nodes  []*Node
	args   []string
	hosts  *Hosts // node i and its memcached run on host i; nil: loopback
	plain  bool   // nodes run the build without the race detector (NodeOptions.Bench)
}

// StartClusterOn is StartCluster with node i and its memcached on host i
// of hs, one node per host.
func StartClusterOn(t testing.TB, hs *Hosts, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, args: extra, hosts: hs}
	for range hs.List {
		c.AddNode()
	}
	c.WaitMembers(len(hs.List))
	return c
}

// StartCluster starts n memcached servers and n nodes (R=2, fast gossip),
// each node fronting one server, all joined through the first node.
func StartCluster(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, args: extra}
	for range n {
		c.AddNode()
	}
	c.WaitMembers(n)
	return c
}

// AddNode starts one more memcached and a node fronting it, joined to the
// cluster.
func (c *Cluster) AddNode() *Node {
	c.t.Helper()
	var host *Host
	if c.hosts != nil {
		host = c.hosts.List[len(c.Nodes)]
	}
	var m *Memcached
	if host != nil {
		m = host.StartMemcached(c.t)
	} else {
		m = StartMemcached(c.t)
	}
	args := append([]string{"--memcached", m.Addr, "--replicas", "2", "--gossip-profile", "local"}, c.args...)
	if len(c.Nodes) > 0 {
		args = append(args, "--join", c.Nodes[0].Gossip)
	}
	n := StartNode(c.t, NodeOptions{ID: fmt.Sprintf("node%d", len(c.Nodes)+1), NoSIP: true, Args: args, Host: host, Bench: c.plain})
	c.Shards = append(c.Shards, m)
	c.Nodes = append(c.Nodes, n)
	return n
}

// WaitMembers waits until every live node sees want alive members and
// want healthy shards.
func (c *Cluster) WaitMembers(want int) {
	c.t.Helper()
	WaitFor(c.t, 20*time.Second, fmt.Sprintf("%d members and healthy shards on every node", want), func() bool {
		for _, n := range c.Nodes {
			if n.Exited() {
				continue
			}
			st, err := n.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
			if err != nil {
				return false
			}
			alive, healthy := 0, 0
			for _, m := range st.Members {
				if m.Alive {
					alive++
				}
			}
			for _, s := range st.Shards {
				if s.Healthy {
					healthy++
				}
			}
			if alive != want || healthy != want {
				return false
			}
		}
		return true
	})
}

// Ring is the ring of the cluster's live shards as every node computes it.
func (c *Cluster) Ring() *ring.Ring {
	var shards []ring.Shard
	for i, m := range c.Shards {
		if c.Nodes[i].Exited() || m.Exited() {
			continue
		}
		shards = append(shards, ring.Shard{ID: m.Addr, Addr: m.Addr, Node: c.Nodes[i].ID, Healthy: true})
	}
	return ring.New(shards)
}

// AoR and Contact of test user i.
func AoR(i int) string     { return fmt.Sprintf("sip:user%d@example.com", i) }
func Contact(i int) string { return fmt.Sprintf("sip:user%d@192.0.2.%d:5060", i, i%250+1) }

// RegisterMany registers users [from, to) through node with the given
// concurrency and returns how many failed (the first error is logged).
func RegisterMany(t testing.TB, node *Node, from, to, concurrency int) int {
	return parallel(t, from, to, concurrency, func(ctx context.Context, i int) error {
		_, err := node.Location.Register(ctx, &locsvcv1.RegisterRequest{
			Aor: AoR(i), CallId: fmt.Sprintf("call-%d", i), Cseq: 1, Expires: proto.Int64(3600),
			Contacts: []*locsvcv1.Contact{{Uri: Contact(i)}},
		})
		return err
	})
}

// LookupMany looks up users [from, to) through node and returns how many
// lookups failed or did not find the user's contact.
func LookupMany(t testing.TB, node *Node, from, to, concurrency int) int {
	return parallel(t, from, to, concurrency, func(ctx context.Context, i int) error {
		res, err := node.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: AoR(i)})
		if err != nil {
			return err
		}
		for _, b := range res.Bindings {
			if b.Uri == Contact(i) {
				return nil
			}
		}
		return fmt.Errorf("%s: contact missing (bindings %v)", AoR(i), res.Bindings)
	})
}

func parallel(t testing.TB, from, to, concurrency int, fn func(context.Context, int) error) int {
	var next atomic.Int64
	next.Store(int64(from))
	var failed atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := fn(ctx, i)
				cancel()
				if err != nil {
					failed.Add(1)
					once.Do(func() { t.Logf("first failure (user %d): %v", i, err) })
				}
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// Keys are the storage keys of users [from, to).
func Keys(from, to int) []string {
	keys := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		keys = append(keys, locsvc.StoreKey(AoR(i)))
	}
	return keys
}

// UnderReplicated counts keys that are missing from a shard of their
// replica set under r, reading memcached directly, and logs the first few.
func (c *Cluster) UnderReplicated(r *ring.Ring, keys []string, replicas int) (int, error) {
	return c.underReplicated(r, keys, replicas, 3)
}

// underReplicated is UnderReplicated logging at most logFirst keys (0 for
// callers that poll).
func (c *Cluster) underReplicated(r *ring.Ring, keys []string, replicas, logFirst int) (int, error) {
	has := map[string]map[string]bool{}
	for _, m := range c.Shards {
		if m.Exited() {
			continue
		}
		h, err := m.Has(keys)
		if err != nil {
			return 0, err
		}
		has[m.Addr] = h
	}
	missing := 0
	buf := make([]ring.Shard, 0, replicas)
	for _, k := range keys {
		for _, s := range r.ReplicaSet(k, replicas, buf) {
			if !has[s.Addr][k] {
				if missing < logFirst {
					var on []string
					for a, h := range has {
						if h[k] {
							on = append(on, a)
						}
					}
					c.t.Logf("under-replicated %s: replicas %v, held by %v", k, r.ReplicaSet(k, replicas, nil), on)
				}
				missing++
				break
			}
		}
	}
	return missing, nil
}
