package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/internal/testcerts"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
)

// Cluster is a set of locsvc nodes, each fronting its own memcached.
type Cluster struct {
	t      testing.TB
	Shards []*Memcached
	Nodes  []*Node
	o      ClusterOptions
}

// ClusterOptions configure StartClusterWith.
type ClusterOptions struct {
	// Hosts runs node i and its memcached on host i (one node per host);
	// nil: on loopback.
	Hosts *Hosts
	// APIToken is required by every node and sent by its clients
	// (NodeOptions.APIToken).
	APIToken string
	// TLS makes the shards TLS-only, requiring client certificates
	// (StartMemcachedTLS), and gives the nodes MemcachedTLSArgs.
	TLS  *testcerts.Certs
	Args []string // extra flags of every node
	// Plain runs the nodes built without the race detector
	// (NodeOptions.Bench).
	Plain bool
}

// StartClusterOn is StartCluster with node i and its memcached on host i
// of hs, one node per host. Their APIs listen beyond loopback, so they
// require a token of the cluster's own (Cluster.APIToken).
func StartClusterOn(t testing.TB, hs *Hosts, extra ...string) *Cluster {
	t.Helper()
	return StartClusterWith(t, len(hs.List), ClusterOptions{Hosts: hs, APIToken: NewAPIToken(), Args: extra})
}

// StartCluster starts n memcached servers and n nodes (R=2, fast gossip),
// each node fronting one server, all joined through the first node.
func StartCluster(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	return StartClusterWith(t, n, ClusterOptions{Args: extra})
}

// StartClusterWith is StartCluster as o says.
func StartClusterWith(t testing.TB, n int, o ClusterOptions) *Cluster {
	t.Helper()
	c := &Cluster{t: t, o: o}
	for range n {
		c.AddNode()
	}
	c.WaitMembers(n)
	return c
}

// StartClusterTLS is StartCluster with TLS-only shards that require
// client certificates (StartMemcachedTLS), and nodes that talk to them
// with MemcachedTLSArgs.
func StartClusterTLS(t testing.TB, n int, certs *testcerts.Certs, extra ...string) *Cluster {
	t.Helper()
	return StartClusterWith(t, n, ClusterOptions{TLS: certs, Args: extra})
}

// MemcachedTLSArgs are the flags of a node that talks TLS to shards
// started by StartMemcachedTLS with certs.
func MemcachedTLSArgs(certs *testcerts.Certs) []string {
	return []string{"--memcached-tls-ca", certs.CAFile, "--memcached-tls-cert", certs.ClientCert, "--memcached-tls-key", certs.ClientKey}
}

// APIToken is the token the nodes require ("" for none).
func (c *Cluster) APIToken() string { return c.o.APIToken }

// AddNode starts one more memcached and a node fronting it, joined to the
// cluster.
func (c *Cluster) AddNode() *Node {
	c.t.Helper()
	var host *Host
	if c.o.Hosts != nil {
		host = c.o.Hosts.List[len(c.Nodes)]
	}
	var m *Memcached
	if host != nil {
		m = host.StartMemcached(c.t)
	} else {
		m = startMemcached(c.t, c.o.TLS)
	}
	args := []string{"--memcached", m.Addr, "--replicas", "2", "--gossip-profile", "local"}
	if c.o.TLS != nil {
		args = append(args, MemcachedTLSArgs(c.o.TLS)...)
	}
	args = append(args, c.o.Args...)
	if len(c.Nodes) > 0 {
		args = append(args, "--join", c.Nodes[0].Gossip)
	}
	n := StartNode(c.t, NodeOptions{ID: fmt.Sprintf("node%d", len(c.Nodes)+1), NoSIP: true, Args: args, Host: host,
		APIToken: c.o.APIToken, Bench: c.o.Plain})
	c.Shards = append(c.Shards, m)
	c.Nodes = append(c.Nodes, n)
	return n
}

// WaitMembers waits until every live node sees want alive members and
// want healthy shards.
func (c *Cluster) WaitMembers(want int) {
	c.t.Helper()
	// views keeps what each node said last, so a timeout names the node
	// that had not converged and what it saw instead.
	views := make([]string, len(c.Nodes))
	what := fmt.Sprintf("%d members and healthy shards on every node", want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := true
		for i, n := range c.Nodes {
			if n.Exited() {
				views[i] = n.ID + ": exited"
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := n.Cluster.Status(ctx, &locsvcv1.StatusRequest{})
			cancel()
			if err != nil {
				views[i] = fmt.Sprintf("%s: status: %v", n.ID, err)
				done = false
				continue
			}
			var alive, healthy []string
			for _, m := range st.Members {
				if m.Alive {
					alive = append(alive, m.NodeId)
				}
			}
			for _, s := range st.Shards {
				if s.Healthy {
					healthy = append(healthy, s.Addr)
				}
			}
			views[i] = fmt.Sprintf("%s: alive %v, healthy shards %v", n.ID, alive, healthy)
			if len(alive) != want || len(healthy) != want {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s; last seen:\n%s", what, strings.Join(views, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
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
