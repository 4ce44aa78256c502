package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locsvc/locsvc/api"
	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/node"
)

// testConfig is a node on free loopback ports with fast gossip, fronting
// the shards given.
func testConfig(id string, shards ...string) node.Config {
	cfg := node.DefaultConfig()
	cfg.NodeID = id
	cfg.GRPC, cfg.HTTP, cfg.Gossip, cfg.SIP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.GossipProfile = "local"
	cfg.Memcached = shards
	return cfg
}

func start(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.Start(context.Background(), cfg, log.With("node", cfg.NodeID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

// client is a gRPC Locator on n.
func client(t *testing.T, n *node.Node) *api.Client {
	t.Helper()
	conn, err := grpc.NewClient(n.Info().GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewClient(conn)
}

func healthyShards(n *node.Node) int {
	st, err := n.Status(context.Background())
	if err != nil {
		return 0
	}
	h := 0
	for _, s := range st.Shards {
		if s.Healthy {
			h++
		}
	}
	return h
}

// pair is two nodes, a and b, each fronting its own memcached, R=1, so
// that a record on a's shard exists nowhere else; edit adjusts a's
// config. 200 AoRs are registered through a.
type pair struct {
	mcA, mcB *integration.Memcached
	cfgA     node.Config
	a, b     *node.Node
	cb       *api.Client
}

const pairAoRs = 200

func startPair(t *testing.T, ctx context.Context, edit func(*node.Config)) *pair {
	t.Helper()
	p := &pair{mcA: integration.StartMemcached(t), mcB: integration.StartMemcached(t)}
	cfgB := testConfig("b", p.mcB.Addr)
	cfgB.Replicas = 1
	p.b = start(t, cfgB)
	p.cfgA = testConfig("a", p.mcA.Addr)
	p.cfgA.Replicas, p.cfgA.Join = 1, []string{p.b.GossipAddr()}
	if edit != nil {
		edit(&p.cfgA)
	}
	p.a = start(t, p.cfgA)
	integration.WaitFor(t, 10*time.Second, "both shards healthy on both nodes", func() bool {
		return healthyShards(p.a) == 2 && healthyShards(p.b) == 2
	})
	ca := client(t, p.a)
	p.cb = client(t, p.b)
	for i := range pairAoRs {
		req := locsvc.Request{AoR: fmt.Sprintf("sip:user%d@example.com", i), CallID: "c", CSeq: 1,
			Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:user%d@192.0.2.1:5060", i)}}, Expires: 3600, HasExpires: true}
		if _, err := ca.Register(ctx, req); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}
	if onA := p.mcA.StatInt(t, "", "curr_items"); onA == 0 || onA == pairAoRs {
		t.Fatalf("%d of %d records on a's shard: the ring should spread them over both", onA, pairAoRs)
	}
	return p
}

// lost counts the AoRs b cannot find.
func (p *pair) lost(t *testing.T, ctx context.Context) int {
	t.Helper()
	lost := 0
	for i := range pairAoRs {
		res, err := p.cb.Lookup(ctx, fmt.Sprintf("sip:user%d@example.com", i))
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if len(res.Bindings) != 1 {
			lost++
		}
	}
	return lost
}

// With --leave-on-stop, the records on the shard of a node that stops exist
// nowhere else (R=1); after Stop the remaining node must find every one of
// them, which only the hand-off (run while the stopping node is still a
// member) can have brought to its shard.
func TestHandOffOnStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := startPair(t, ctx, func(c *node.Config) { c.LeaveOnStop = true })
	p.a.Stop(ctx)
	integration.WaitFor(t, 10*time.Second, "b's ring to drop a's shard", func() bool {
		st, err := p.b.Status(ctx)
		return err == nil && len(st.Shards) == 1
	})
	if lost := p.lost(t, ctx); lost > 0 {
		t.Fatalf("%d records lost when a left", lost)
	}
	if got := p.mcB.StatInt(t, "", "curr_items"); got != pairAoRs {
		t.Errorf("b's shard holds %d records, want all %d", got, pairAoRs)
	}
}

// Leave (AdminService.Drain) hands off while the node still serves,
// reports what it copied, and closes Left; the Stop that follows leaves
// gossip without a second hand-off.
func TestLeaveHandsOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := startPair(t, ctx, nil)
	onA := uint64(p.mcA.StatInt(t, "", "curr_items"))
	res, err := p.a.Leave(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.NodeId != "a" || res.KeysScanned != onA || res.KeysCopied != onA || res.Failures != 0 || !res.Complete {
		t.Errorf("drain answered %v; want %d scanned and copied, complete", res, onA)
	}
	select {
	case <-p.a.Left():
	default:
		t.Fatal("Left not closed after Leave returned")
	}
	if again, err := p.a.Leave(ctx); err != nil || again.KeysCopied != res.KeysCopied {
		t.Errorf("second Leave: %v, %v; want the same result", again, err)
	}
	p.a.Stop(ctx)
	integration.WaitFor(t, 10*time.Second, "b's ring to drop a's shard", func() bool {
		st, err := p.b.Status(ctx)
		return err == nil && len(st.Shards) == 1
	})
	if lost := p.lost(t, ctx); lost > 0 {
		t.Fatalf("%d records lost when a was drained", lost)
	}
}

// By default Stop is a restart: nothing is handed off, b keeps a's shard
// in its ring and finds a's records there (it dials a's memcached itself);
// a started again over the same memcached and gossip address finds the
// ring unchanged, and no record has been copied anywhere.
func TestStopIsARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A fixed gossip address: memberlist takes a member back at the
	// address it had.
	gossip := integration.FreeAddr(t)
	p := startPair(t, ctx, func(c *node.Config) { c.Gossip = gossip })
	onB := p.mcB.StatInt(t, "", "curr_items")
	before, err := p.b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.a.Stop(ctx)
	integration.WaitFor(t, 10*time.Second, "b to see a away for a restart", func() bool {
		st, err := p.b.Status(ctx)
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.NodeId == "a" {
				return !m.Alive && m.State == "restarting"
			}
		}
		return false
	})
	if st, _ := p.b.Status(ctx); len(st.Shards) != 2 {
		t.Fatalf("b dropped a's shard while a restarts: %v", st.Shards)
	}
	if lost := p.lost(t, ctx); lost > 0 {
		t.Errorf("%d records not found through b while a restarts", lost)
	}

	a2 := start(t, p.cfgA)
	integration.WaitFor(t, 10*time.Second, "b to see a back", func() bool {
		st, err := p.b.Status(ctx)
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.NodeId == "a" {
				return m.Alive && m.State == "active"
			}
		}
		return false
	})
	after, err := p.b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every pass b ran saw a ring with a's shard in it: none copied.
	if got := after.Repair.GetKeysCopied(); got != before.Repair.GetKeysCopied() {
		t.Errorf("b's repair copied %d records over a's restart", got-before.Repair.GetKeysCopied())
	}
	integration.WaitFor(t, 10*time.Second, "a's start-up repair pass", func() bool {
		st, err := a2.Status(ctx)
		return err == nil && st.Repair.GetPasses() > 0
	})
	if st, _ := a2.Status(ctx); st.Repair.GetKeysCopied() != 0 {
		t.Errorf("a's start-up pass copied %d records that were in place", st.Repair.GetKeysCopied())
	}
	if got := p.mcB.StatInt(t, "", "curr_items"); got != onB {
		t.Errorf("b's shard holds %d records, had %d: something was copied", got, onB)
	}
}

// A node whose shards are the only ones in the ring cannot leave for good:
// its records would have nowhere to go. The refusal changes nothing: the
// node stays ready and a SIGTERM later is still a restart.
func TestLeaveRefusedWhenAlone(t *testing.T) {
	mc := integration.StartMemcached(t)
	n := start(t, testConfig("solo", mc.Addr))
	integration.WaitFor(t, 10*time.Second, "the shard healthy", func() bool { return healthyShards(n) == 1 })
	_, err := n.Leave(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nowhere to go") {
		t.Fatalf("Leave of the only storage node: %v", err)
	}
	if err := n.Ready(); err != nil {
		t.Errorf("not ready after a refused Leave: %v", err)
	}
	select {
	case <-n.Left():
		t.Error("Left closed after a refused Leave")
	default:
	}
	if st, err := n.Status(context.Background()); err != nil || st.Members[0].State != "active" {
		t.Errorf("state after a refused Leave: %v %v", st.GetMembers(), err)
	}
}
