package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// Register through node 1, look up through node 3; a memcached shard dies
// (kill -9) and nothing fails; it comes back empty and repair restores R
// copies of every record, checked by reading memcached directly.
func TestClusterShardFailureAndRepair(t *testing.T) {
	c := StartCluster(t, 3)
	const users = 10000
	start := time.Now()
	if failed := RegisterMany(t, c.Nodes[0], 0, users, 32); failed != 0 {
		t.Fatalf("%d of %d registrations failed", failed, users)
	}
	t.Logf("registered %d users through node1 in %v", users, time.Since(start).Round(time.Millisecond))
	if failed := LookupMany(t, c.Nodes[2], 0, users, 32); failed != 0 {
		t.Fatalf("%d of %d lookups through node3 failed", failed, users)
	}
	keys := Keys(0, users)
	if n, err := c.UnderReplicated(c.Ring(), keys, 2); err != nil || n != 0 {
		t.Fatalf("%d records not on both replicas (%v)", n, err)
	}

	c.Shards[1].Kill()
	if failed := LookupMany(t, c.Nodes[2], 0, users, 32); failed != 0 {
		t.Fatalf("shard down: %d of %d lookups failed", failed, users)
	}
	if failed := RegisterMany(t, c.Nodes[1], users, users+500, 16); failed != 0 {
		t.Fatalf("shard down: %d of 500 registrations failed", failed)
	}
	if failed := LookupMany(t, c.Nodes[0], users, users+500, 16); failed != 0 {
		t.Fatalf("shard down: %d of 500 new users not found", failed)
	}

	c.Shards[1].Restart()
	restarted := time.Now()
	all := Keys(0, users+500)
	full := c.Ring()
	var left int
	WaitFor(t, 30*time.Second, "every record back on its 2 replicas", func() bool {
		n, err := c.UnderReplicated(full, all, 2)
		if n != left {
			t.Logf("+%v: %d records under-replicated (%v)", time.Since(restarted).Round(time.Millisecond), n, err)
			left = n
		}
		return err == nil && n == 0
	})
	t.Logf("R=2 restored for %d records %v after the shard came back empty", len(all), time.Since(restarted).Round(time.Millisecond))
	if failed := LookupMany(t, c.Nodes[1], 0, users+500, 32); failed != 0 {
		t.Fatalf("after repair: %d lookups failed", failed)
	}
	// A crash-and-restart faster than any health check (as under a
	// supervisor) is still seen, by the shard's new epoch, and repaired.
	c.Shards[0].Restart()
	restarted = time.Now()
	WaitFor(t, 30*time.Second, "every record back on its 2 replicas after a quick restart", func() bool {
		n, err := c.UnderReplicated(full, all, 2)
		return err == nil && n == 0
	})
	t.Logf("R=2 restored %v after a quick restart", time.Since(restarted).Round(time.Millisecond))

	st, err := c.Nodes[0].Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Repair.GetPasses() == 0 || st.Repair.GetKeysCopied() == 0 {
		t.Errorf("repair progress not reported: %v", st.Repair)
	}
}

// A fourth node joins: about a quarter of the copies move to it, and no
// lookup fails meanwhile. Then a node leaves by SIGTERM, as a deployment
// that scales down by SIGTERM runs (--leave-on-stop): it hands its records
// off, and nothing is lost.
func TestClusterJoinAndLeave(t *testing.T) {
	c := StartCluster(t, 3, "--leave-on-stop")
	const users = 4000
	if failed := RegisterMany(t, c.Nodes[0], 0, users, 32); failed != 0 {
		t.Fatalf("%d registrations failed", failed)
	}

	var lookups, lookupFailures atomic.Int64
	// Through node1 and node3: node2 is the one that leaves, and a node
	// that is shutting down refuses new calls.
	readers := []*Node{c.Nodes[0], c.Nodes[2]}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Should the test end early, the readers stop before the cluster is
	// torn down (cleanups run last-registered first): a reader logging
	// after the test ended panics the whole test binary.
	stopReaders := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopReaders)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(users)
				n := readers[rng.IntN(len(readers))]
				lookups.Add(1)
				if failed := LookupMany(t, n, i, i+1, 1); failed != 0 {
					lookupFailures.Add(1)
				}
			}
		}()
	}

	newNode := c.AddNode()
	c.WaitMembers(4)
	keys := Keys(0, users)
	four := c.Ring()
	WaitFor(t, 30*time.Second, "every record on its replicas in the 4-shard ring", func() bool {
		n, err := c.UnderReplicated(four, keys, 2)
		return err == nil && n == 0
	})
	onNew, err := c.Shards[3].Has(keys)
	if err != nil {
		t.Fatal(err)
	}
	moved := float64(len(onNew)) / float64(2*users)
	t.Logf("copies moved to the new shard: %d of %d = %.3f (optimum 0.25)", len(onNew), 2*users, moved)
	if moved < 0.225 || moved > 0.275 {
		t.Errorf("moved fraction %.3f is not within 10%% of the optimum 1/4", moved)
	}
	if failed := LookupMany(t, newNode, 0, users, 32); failed != 0 {
		t.Errorf("%d lookups through the new node failed", failed)
	}

	// SIGTERM node2: with --leave-on-stop it hands its records off and
	// leaves the ring for good.
	if err := c.Nodes[1].Stop(30 * time.Second); err != nil {
		t.Fatalf("node2 SIGTERM: %v\n%s", err, c.Nodes[1].Output())
	}
	c.WaitMembers(3)
	three := c.Ring()
	WaitFor(t, 30*time.Second, "every record on its replicas after node2 left", func() bool {
		n, err := c.UnderReplicated(three, keys, 2)
		return err == nil && n == 0
	})
	stopReaders()
	t.Logf("background lookups during join and leave: %d, failed: %d", lookups.Load(), lookupFailures.Load())
	if lookupFailures.Load() != 0 {
		t.Errorf("%d of %d lookups failed during join/leave", lookupFailures.Load(), lookups.Load())
	}
	if failed := LookupMany(t, c.Nodes[3], 0, users, 32); failed != 0 {
		t.Errorf("after node2 left: %d of %d users lost", failed, users)
	}
}

// Different contacts for one AoR registered at the same time through
// different nodes all survive: the gets/cas merge path loses no write.
func TestClusterConcurrentRegistersSameAoR(t *testing.T) {
	c := StartCluster(t, 3, "--max-contacts", "100")
	const writers = 60
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Nodes[i%3].Location.Register(context.Background(), &locsvcv1.RegisterRequest{
				Aor: "sip:shared@example.com", CallId: fmt.Sprintf("ua-%d", i), Cseq: 1, Expires: proto.Int64(600),
				Contacts: []*locsvcv1.Contact{{Uri: fmt.Sprintf("sip:shared@192.0.2.%d:5060", i+1)}},
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	m := Scrape(t, c.Nodes[0])
	for _, want := range []string{`locsvc_ring_shards{healthy="true"} 3`, `locsvc_ring_members{alive="true",state="active"} 3`,
		`locsvc_store_operations_total{kind="write"} 20`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics of node1 lacks %q", want)
		}
	}
	// The one record is on R=2 shards; each node reports the shard it fronts.
	records := 0
	for _, n := range c.Nodes {
		for _, line := range strings.Split(Scrape(t, n), "\n") {
			if v, ok := strings.CutPrefix(line, "locsvc_shard_records{"); ok {
				_, num, _ := strings.Cut(v, "} ")
				k, _ := strconv.Atoi(num)
				records += k
			}
		}
	}
	if records != 2 {
		t.Errorf("locsvc_shard_records sum to %d over the nodes, want 2 (one AoR, R=2)", records)
	}
	// node1 took 20 of the REGISTERs: each is a gets and a cas (or add) on
	// R=2 shards, at least.
	commands := 0
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, "locsvc_memcached_commands_total{"); ok {
			_, num, _ := strings.Cut(v, "} ")
			k, _ := strconv.Atoi(num)
			commands += k
		}
	}
	if commands < 20*2*2 {
		t.Errorf("locsvc_memcached_commands_total of node1 sum to %d, want at least %d", commands, 20*2*2)
	}
	for _, n := range c.Nodes {
		res, err := n.Location.Lookup(context.Background(), &locsvcv1.LookupRequest{Aor: "sip:shared@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Bindings) != writers {
			t.Fatalf("%s sees %d bindings, want %d", n.ID, len(res.Bindings), writers)
		}
	}

	// Removals replicate too (a peer complaint: contacts removed on one
	// node stay on the others): remove half through node2, by each UA's
	// own Call-ID, and look up through node3 and node1.
	for i := 0; i < writers; i += 2 {
		_, err := c.Nodes[1].Location.Register(context.Background(), &locsvcv1.RegisterRequest{
			Aor: "sip:shared@example.com", CallId: fmt.Sprintf("ua-%d", i), Cseq: 2, Expires: proto.Int64(0),
			Contacts: []*locsvcv1.Contact{{Uri: fmt.Sprintf("sip:shared@192.0.2.%d:5060", i+1)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{c.Nodes[2], c.Nodes[0]} {
		res, err := n.Location.Lookup(context.Background(), &locsvcv1.LookupRequest{Aor: "sip:shared@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Bindings) != writers/2 {
			t.Fatalf("%s sees %d bindings after removing half through node2, want %d", n.ID, len(res.Bindings), writers/2)
		}
		for _, b := range res.Bindings {
			var i int
			fmt.Sscanf(b.Uri, "sip:shared@192.0.2.%d:5060", &i)
			if (i-1)%2 == 0 {
				t.Errorf("%s still sees removed contact %s", n.ID, b.Uri)
			}
		}
	}
}
