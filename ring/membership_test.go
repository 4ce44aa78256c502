package ring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// testNode starts a member on 127.0.0.1 with a free port and one fake shard
// address (nothing dials it) named after the node.
func testNode(t *testing.T, id string, join []string, edit ...func(*Config)) *Membership {
	t.Helper()
	cfg := Config{
		NodeID:   id,
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Meta: Meta{
			GRPC:   "127.0.0.1:7070",
			State:  StateActive,
			Shards: []ShardStatus{{Addr: "mc-" + id + ":11211", Healthy: true}},
		},
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	for _, e := range edit {
		e(&cfg)
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func shardIDs(r *Ring) []string { return ids(r.Shards()) }

func cluster(t *testing.T, n int) []*Membership {
	t.Helper()
	nodes := []*Membership{testNode(t, "n0", nil)}
	for i := 1; i < n; i++ {
		// Chain the seeds so membership has to spread by gossip.
		nodes = append(nodes, testNode(t, fmt.Sprint("n", i), []string{nodes[i-1].LocalAddr()}))
	}
	waitFor(t, 5*time.Second, "every node to see every shard", func() bool {
		for _, m := range nodes {
			if m.Ring().Len() != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func TestThreeNodesSameRing(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 3)
	want := []string{"mc-n0:11211", "mc-n1:11211", "mc-n2:11211"}
	for _, m := range nodes {
		if got := shardIDs(m.Ring()); !slices.Equal(got, want) {
			t.Errorf("%s: ring %v, want %v", m.cfg.NodeID, got, want)
		}
		if !m.Ring().Equal(nodes[0].Ring()) {
			t.Errorf("%s: ring differs from n0's", m.cfg.NodeID)
		}
		mem := m.Members()
		if len(mem) != 3 || mem[0].NodeID != "n0" || mem[2].NodeID != "n2" {
			t.Fatalf("%s: members %+v", m.cfg.NodeID, mem)
		}
		for _, x := range mem {
			if !x.Alive || x.GRPC != "127.0.0.1:7070" || x.State != StateActive || x.GossipAddr == "" {
				t.Errorf("%s sees %+v", m.cfg.NodeID, x)
			}
		}
	}
	// Same placement everywhere, which is the point.
	buf := make([]Shard, 0, 2)
	for _, k := range testKeys(100) {
		first := ids(nodes[0].Ring().ReplicaSet(k, 2, buf))
		for _, m := range nodes[1:] {
			if got := ids(m.Ring().ReplicaSet(k, 2, buf)); !slices.Equal(got, first) {
				t.Fatalf("%q: %v on %s, %v on n0", k, got, m.cfg.NodeID, first)
			}
		}
	}
	if st := nodes[0].Stats(); st.AliveMembers != 3 || st.RingChanges == 0 || st.Rebuilds < st.RingChanges {
		t.Errorf("stats: %+v", st)
	}
}

func TestHealthChangeReachesPeers(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var epoch atomic.Uint64
	epoch.Store(1)
	check := func(ctx context.Context, addr string) (uint64, error) {
		if down.Load() {
			return 0, errors.New("connection refused")
		}
		return epoch.Load(), nil
	}
	a := testNode(t, "a", nil, func(c *Config) {
		c.HealthCheck, c.HealthInterval = check, 50*time.Millisecond
	})
	b := testNode(t, "b", []string{a.LocalAddr()})
	health := func(m *Membership) bool {
		s, ok := m.Ring().Shard("mc-a:11211")
		return ok && s.Healthy
	}
	waitFor(t, 5*time.Second, "b to see a's healthy shard", func() bool { return health(b) })

	ch, cancel := b.Subscribe()
	defer cancel()
	down.Store(true)
	waitFor(t, 5*time.Second, "b to see a's shard down", func() bool { return !health(b) })
	if health(a) {
		t.Error("a's own ring still has its shard healthy")
	}
	// The subscriber holds the newest snapshot, with the shard down.
	waitFor(t, time.Second, "subscriber to get the newest snapshot", func() bool {
		select {
		case r := <-ch:
			s, _ := r.Shard("mc-a:11211")
			return !s.Healthy
		default:
			return false
		}
	})
	if got := b.Ring().ReplicaSet("k", 2, nil); len(got) != 1 || got[0].ID != "mc-b:11211" {
		t.Errorf("replica set with a's shard down: %v", ids(got))
	}
	down.Store(false)
	waitFor(t, 5*time.Second, "b to see a's shard back", func() bool { return health(b) })
	if st := a.Stats(); st.HealthChanges < 2 || st.HealthChecks == 0 {
		t.Errorf("stats: %+v", st)
	}

	// A restart no check saw (new epoch, never unhealthy) still makes a
	// new snapshot everywhere, so every node repairs the emptied shard.
	before := b.Ring()
	epoch.Store(2)
	waitFor(t, 5*time.Second, "b to see a's shard restarted", func() bool {
		s, _ := b.Ring().Shard("mc-a:11211")
		return s.Epoch == 2 && s.Healthy
	})
	if b.Ring().Equal(before) {
		t.Error("a restart left the ring snapshot equal")
	}
}

func TestSetStateLeavingMarksShardsUnhealthy(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 2)
	if err := nodes[1].SetState(StateLeaving); err != nil {
		t.Fatal(err)
	}
	// At once on its own ring: the hand-off reads it next.
	if s, ok := nodes[1].Ring().Shard("mc-n1:11211"); !ok || s.Healthy {
		t.Errorf("n1's own ring right after SetState: %+v", s)
	}
	waitFor(t, 5*time.Second, "n0 to see n1's shard unhealthy", func() bool {
		s, ok := nodes[0].Ring().Shard("mc-n1:11211")
		return ok && !s.Healthy
	})
	mem := nodes[0].Members()
	if mem[1].State != StateLeaving {
		t.Errorf("n1 announced as %v", mem[1].State)
	}
	if err := nodes[1].SetState(State(9)); err == nil {
		t.Error("unknown state accepted")
	}
}

func TestLeaveRemovesShardsQuickly(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 3)
	start := time.Now()
	if err := nodes[2].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, m := range nodes[:2] {
		waitFor(t, 2*time.Second, m.cfg.NodeID+" to drop n2's shard", func() bool {
			_, ok := m.Ring().Shard("mc-n2:11211")
			return !ok
		})
	}
	t.Logf("shard gone from both peers %v after Leave began", time.Since(start))
	mem := nodes[0].Members()
	if len(mem) != 3 || mem[2].Alive {
		t.Errorf("n2 should be listed as not alive: %+v", mem)
	}
	if err := nodes[2].Close(); err != nil {
		t.Errorf("Close after Leave: %v", err)
	}
	if err := nodes[2].SetState(StateActive); err == nil {
		t.Error("SetState after Leave succeeded")
	}
}

func TestHardStopDetected(t *testing.T) {
	t.Parallel()
	nodes := cluster(t, 3)
	start := time.Now()
	nodes[2].Close()
	for _, m := range nodes[:2] {
		waitFor(t, 9*time.Second, m.cfg.NodeID+" to detect n2's failure", func() bool {
			_, ok := m.Ring().Shard("mc-n2:11211")
			return !ok
		})
	}
	t.Logf("failure detected after %v", time.Since(start))
}

func TestWrongSecretKeyCannotJoin(t *testing.T) {
	t.Parallel()
	keyA := []byte("0123456789abcdef")
	keyB := []byte("fedcba9876543210")
	a := testNode(t, "a", nil, func(c *Config) { c.SecretKey = keyA })
	_, err := Start(Config{NodeID: "b", BindAddr: "127.0.0.1:0", Join: []string{a.LocalAddr()}, SecretKey: keyB, RequireJoin: true})
	if err == nil {
		t.Fatal("join with the wrong key succeeded")
	}
	// Without RequireJoin it starts, keeps retrying, and never gets in.
	b := testNode(t, "b", []string{a.LocalAddr()}, func(c *Config) { c.SecretKey = keyB })
	c := testNode(t, "c", []string{a.LocalAddr()}) // no key at all
	time.Sleep(1500 * time.Millisecond)            // covers a rejoin attempt
	if a.Ring().Len() != 1 || len(a.Members()) != 1 {
		t.Errorf("a let in a node with another key: %v", shardIDs(a.Ring()))
	}
	if b.Ring().Len() != 1 || c.Ring().Len() != 1 {
		t.Errorf("b or c joined: %v, %v", shardIDs(b.Ring()), shardIDs(c.Ring()))
	}
	if b.Stats().JoinFailures == 0 {
		t.Error("failed join not counted")
	}
	// The right key still works.
	d := testNode(t, "d", []string{a.LocalAddr()}, func(c *Config) { c.SecretKey = keyA })
	waitFor(t, 5*time.Second, "d with the right key to join", func() bool { return a.Ring().Len() == 2 && d.Ring().Len() == 2 })
}

// TestSeedStartsLater: a node whose seed is not up yet starts alone and joins
// once the seed appears.
func TestSeedStartsLater(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := l.Addr().String()
	l.Close()
	a := testNode(t, "a", []string{seedAddr})
	if a.Ring().Len() != 1 {
		t.Fatalf("ring %v", shardIDs(a.Ring()))
	}
	seed := testNode(t, "seed", nil, func(c *Config) { c.BindAddr = seedAddr })
	waitFor(t, 6*time.Second, "a to join the late seed", func() bool {
		return a.Ring().Len() == 2 && seed.Ring().Len() == 2
	})
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{NodeID: "x", Profile: "fast"},
		{NodeID: "x", BindAddr: "nonsense"},
		{NodeID: "x", BindAddr: "127.0.0.1:0", SecretKey: []byte("short")},
	} {
		if m, err := Start(cfg); err == nil {
			m.Close()
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	m := testNode(t, "solo", nil)
	ch, _ := m.Subscribe()
	if r := <-ch; r.Len() != 1 {
		t.Fatalf("first snapshot has %d shards", r.Len())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Error("subscription not closed")
	}
	if m.Ring().Len() != 1 || m.Members()[0].Alive {
		t.Error("state after Close")
	}
}

// restartCluster is cluster(t, 3) whose members announce grace.
func restartCluster(t *testing.T, grace time.Duration) []*Membership {
	t.Helper()
	withGrace := func(c *Config) { c.RestartGrace = grace }
	nodes := []*Membership{testNode(t, "n0", nil, withGrace)}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, testNode(t, fmt.Sprint("n", i), []string{nodes[0].LocalAddr()}, withGrace))
	}
	waitFor(t, 5*time.Second, "every node to see every shard", func() bool {
		for _, m := range nodes {
			if m.Ring().Len() != 3 {
				return false
			}
		}
		return true
	})
	return nodes
}

func memberOf(m *Membership, id string) (Member, bool) {
	for _, x := range m.Members() {
		if x.NodeID == id {
			return x, true
		}
	}
	return Member{}, false
}

// A node that leaves for a restart and comes back (same id, address and
// shard) never changes its peers' ring: no snapshot is published, so
// nothing wakes repair.
func TestRestartKeepsRing(t *testing.T) {
	t.Parallel()
	nodes := restartCluster(t, time.Minute)
	before := nodes[0].Ring()
	changes := [2]uint64{nodes[0].Stats().RingChanges, nodes[1].Stats().RingChanges}
	addr := nodes[2].LocalAddr()

	if err := nodes[2].LeaveForRestart(time.Second); err != nil {
		t.Fatal(err)
	}
	for _, m := range nodes[:2] {
		waitFor(t, 5*time.Second, m.cfg.NodeID+" to see n2 gone for a restart", func() bool {
			x, ok := memberOf(m, "n2")
			return ok && !x.Alive && x.State == StateRestarting && x.RestartGrace == time.Minute
		})
	}
	time.Sleep(300 * time.Millisecond) // let a (wrong) rebuild happen
	for i, m := range nodes[:2] {
		if !m.Ring().Equal(before) {
			t.Errorf("%s: ring changed while n2 restarts: %v", m.cfg.NodeID, shardIDs(m.Ring()))
		}
		if got := m.Stats().RingChanges; got != changes[i] {
			t.Errorf("%s: %d ring changes while n2 restarts", m.cfg.NodeID, got-changes[i])
		}
	}

	back := testNode(t, "n2", []string{nodes[0].LocalAddr()}, func(c *Config) {
		c.BindAddr, c.RestartGrace = addr, time.Minute
	})
	for _, m := range nodes[:2] {
		waitFor(t, 5*time.Second, m.cfg.NodeID+" to see n2 back", func() bool {
			x, ok := memberOf(m, "n2")
			return ok && x.Alive && x.State == StateActive
		})
	}
	time.Sleep(300 * time.Millisecond)
	for i, m := range append(nodes[:2:2], back) {
		if !m.Ring().Equal(before) {
			t.Errorf("%s: ring after n2's return differs: %v", m.cfg.NodeID, shardIDs(m.Ring()))
		}
		if i < 2 && m.Stats().RingChanges != changes[i] {
			t.Errorf("%s: %d ring changes over n2's restart", m.cfg.NodeID, m.Stats().RingChanges-changes[i])
		}
	}
}

// A node that does not come back within its grace is dropped as a failed
// one would be; a node that leaves for good is dropped at once.
func TestRestartGraceEnds(t *testing.T) {
	t.Parallel()
	const grace = 1500 * time.Millisecond
	nodes := restartCluster(t, grace)
	went := time.Now()
	if err := nodes[2].LeaveForRestart(time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "n0 to see n2 gone", func() bool {
		x, _ := memberOf(nodes[0], "n2")
		return !x.Alive
	})
	if _, ok := nodes[0].Ring().Shard("mc-n2:11211"); !ok && time.Since(went) < grace {
		t.Fatal("n2's shard dropped before its grace ended")
	}
	for _, m := range nodes[:2] {
		waitFor(t, grace+3*time.Second, m.cfg.NodeID+" to drop n2's shard after the grace", func() bool {
			_, ok := m.Ring().Shard("mc-n2:11211")
			return !ok
		})
	}
	if d := time.Since(went); d < grace {
		t.Errorf("shard dropped %v after n2 left, before its grace of %v", d, grace)
	}
	if x, ok := memberOf(nodes[0], "n2"); !ok || x.Alive {
		t.Errorf("n2 should still be listed as gone: %+v", x)
	}
}

// While a node is away for a restart, its peers probe its shard: a
// memcached found down is marked unhealthy (the keys route around it,
// repair restores their copies), one back with a new epoch (restarted,
// empty) changes the ring so that repair refills it.
func TestAwayShardProbedByPeers(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var epoch atomic.Uint64
	epoch.Store(1)
	check := func(ctx context.Context, addr string) (uint64, error) {
		if addr == "mc-b:11211" && down.Load() {
			return 0, errors.New("connection refused")
		}
		if addr == "mc-b:11211" {
			return epoch.Load(), nil
		}
		return 5, nil
	}
	withCheck := func(c *Config) {
		c.HealthCheck, c.HealthInterval, c.RestartGrace = check, 50*time.Millisecond, time.Minute
	}
	a := testNode(t, "a", nil, withCheck)
	b := testNode(t, "b", []string{a.LocalAddr()}, withCheck)
	shard := func() Shard { s, _ := a.Ring().Shard("mc-b:11211"); return s }
	waitFor(t, 5*time.Second, "a to see b's shard", func() bool { return shard().Healthy && shard().Epoch == 1 })
	before := a.Ring()
	if err := b.LeaveForRestart(time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a to see b gone", func() bool {
		x, _ := memberOf(a, "b")
		return !x.Alive
	})
	time.Sleep(200 * time.Millisecond) // several probes, all agreeing with b's word
	if !a.Ring().Equal(before) {
		t.Fatalf("probes that found what b announced changed the ring: %+v", shard())
	}
	down.Store(true)
	waitFor(t, 5*time.Second, "a to mark b's shard unhealthy", func() bool {
		s, ok := a.Ring().Shard("mc-b:11211")
		return ok && !s.Healthy
	})
	epoch.Store(2)
	down.Store(false)
	waitFor(t, 5*time.Second, "a to see b's shard back with a new epoch", func() bool {
		s := shard()
		return s.Healthy && s.Epoch == 2
	})
}
