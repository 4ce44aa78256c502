package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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

// TestHandOffOnStop: with one replica, the records on the shard of a node
// that stops exist nowhere else; after Stop the remaining node must find
// every one of them, which only the hand-off (run while the stopping node
// is still a member) can have brought to its shard.
func TestHandOffOnStop(t *testing.T) {
	mcA, mcB := integration.StartMemcached(t), integration.StartMemcached(t)
	cfgB := testConfig("b", mcB.Addr)
	cfgB.Replicas = 1
	b := start(t, cfgB)
	cfgA := testConfig("a", mcA.Addr)
	cfgA.Replicas, cfgA.Join = 1, []string{b.GossipAddr()}
	a := start(t, cfgA)
	integration.WaitFor(t, 10*time.Second, "both shards healthy on both nodes", func() bool {
		return healthyShards(a) == 2 && healthyShards(b) == 2
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cb := client(t, a), client(t, b)
	const aors = 200
	for i := range aors {
		req := locsvc.Request{AoR: fmt.Sprintf("sip:user%d@example.com", i), CallID: "c", CSeq: 1,
			Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:user%d@192.0.2.1:5060", i)}}, Expires: 3600, HasExpires: true}
		if _, err := ca.Register(ctx, req); err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}
	onA := mcA.StatInt(t, "", "curr_items")
	if onA == 0 || onA == aors {
		t.Fatalf("%d of %d records on a's shard: the ring should spread them over both", onA, aors)
	}

	a.Stop(ctx)
	integration.WaitFor(t, 10*time.Second, "b's ring to drop a's shard", func() bool {
		st, err := b.Status(ctx)
		return err == nil && len(st.Shards) == 1
	})
	lost := 0
	for i := range aors {
		res, err := cb.Lookup(ctx, fmt.Sprintf("sip:user%d@example.com", i))
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if len(res.Bindings) != 1 {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of the %d records that were on a's shard were lost when a stopped", lost, onA)
	}
	if got := mcB.StatInt(t, "", "curr_items"); got != aors {
		t.Errorf("b's shard holds %d records, want all %d", got, aors)
	}
}
