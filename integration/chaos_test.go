package integration

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/ring"
)

var (
	chaosLongFlag = flag.Bool("chaos.long", false, "run the long chaos test (also LOCSVC_CHAOS=long)")
	chaosOut      = flag.String("chaos.out", "", "also write the chaos table (markdown) to this file")
)

// chaosPlan sizes a chaos run. Rates are per node and second.
type chaosPlan struct {
	name             string
	bench            bool // nodes run the binary built without -race
	regRate, invRate int
	round            time.Duration
	warmup           time.Duration // load before the shard dies
	shardDown        time.Duration
	beforeNodeKill   time.Duration // load between R restored and the node's kill
	nodeDown         time.Duration // after the others saw the node dead
	tail             time.Duration // load after the node is back
}

var (
	// The short run is part of `make test` (2 cores, race-built nodes).
	chaosShort = chaosPlan{name: "short", regRate: 15, invRate: 15, round: 2 * time.Second,
		warmup: 6 * time.Second, shardDown: 8 * time.Second, beforeNodeKill: 4 * time.Second,
		nodeDown: 2 * time.Second, tail: 6 * time.Second}
	chaosLong = chaosPlan{name: "long", bench: true, regRate: 100, invRate: 100, round: 3 * time.Second,
		warmup: 30 * time.Second, shardDown: 30 * time.Second, beforeNodeKill: 20 * time.Second,
		nodeDown: 15 * time.Second, tail: 30 * time.Second}
)

// maxTimeToR is how long after an emptied shard's return every confirmed
// record may take to be on R shards again.
const maxTimeToR = 30 * time.Second

// Three nodes in redirect mode, each fronting its own memcached (R=2),
// under sipp REGISTER and INVITE load through all of them. A memcached is
// killed (-9) and comes back empty; later a node is killed (-9) and a new
// process takes its place over the same shard. No user whose REGISTER got
// 200 OK may be lost, every INVITE to such a user must get a 302 with the
// user's contact, and R copies must be back within 30 s of the shard's
// return.
func TestChaos(t *testing.T) {
	plan := chaosShort
	if *chaosLongFlag || os.Getenv("LOCSVC_CHAOS") == "long" {
		plan = chaosLong
	}
	const shardVictim, nodeVictim = 2, 1 // node3's memcached; node2
	var specs []NodeOptions
	c := &Cluster{t: t}
	for i := range 3 {
		m := StartMemcached(t)
		args := []string{"--memcached", m.Addr, "--replicas", "2", "--gossip-profile", "local",
			"--sip-mode", "redirect", "--domain", "localhost",
			// sipp plays thousands of phones from one address; as a
			// trusted source it is exempt from the per-source REGISTER
			// rate limit, which would otherwise answer most of the long
			// run's REGISTERs 503.
			"--trusted", "127.0.0.1/32"}
		if i > 0 {
			args = append(args, "--join", specs[0].Gossip)
		}
		s := newChaosNodeSpec(t, fmt.Sprintf("node%d", i+1), plan.bench, args...)
		specs = append(specs, s)
		c.Shards = append(c.Shards, m)
		c.Nodes = append(c.Nodes, StartNode(t, s))
	}
	c.WaitMembers(3)
	full := c.Ring()

	var sip, reserved []string
	for i, s := range specs {
		sip = append(sip, s.SIP)
		reserved = append(reserved, s.SIP, s.GRPC, s.HTTP, s.Gossip, c.Shards[i].Addr)
	}
	var events []string
	load := startChaosLoad(t, sip, reserved, plan.regRate, plan.invRate, plan.round)
	event := func(format string, a ...any) {
		e := fmt.Sprintf("+%5.1fs ", time.Since(load.began).Seconds()) + fmt.Sprintf(format, a...)
		events = append(events, e)
		t.Log(e)
	}
	event("load: REGISTER %d/s and INVITE %d/s per node, rounds of %v", plan.regRate, plan.invRate, plan.round)

	time.Sleep(plan.warmup)
	load.Phase("shard down")
	c.Shards[shardVictim].Kill()
	event("kill -9 memcached %s (node3's shard)", c.Shards[shardVictim].Addr)

	time.Sleep(plan.shardDown)
	c.Shards[shardVictim].Restart()
	restarted := time.Now()
	load.Phase("shard back")
	event("memcached %s restarted, empty", c.Shards[shardVictim].Addr)
	timeToR, ok := chaosWaitR(t, c, full, load, restarted, maxTimeToR)
	if ok {
		event("every confirmed record on R=2 shards again, %v after the restart", timeToR.Round(time.Millisecond))
	} else {
		t.Errorf("records still under-replicated %v after the shard came back", maxTimeToR)
		event("R=2 NOT restored within %v", maxTimeToR)
	}

	time.Sleep(plan.beforeNodeKill)
	load.Pause(nodeVictim)
	load.Phase("node down")
	c.Nodes[nodeVictim].Kill()
	killed := time.Now()
	event("sipp to node2 stopped; kill -9 node2")
	WaitFor(t, 30*time.Second, "node1 and node3 to see node2 dead", func() bool {
		for _, i := range []int{0, 2} {
			st, err := c.Nodes[i].Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
			if err != nil {
				return false
			}
			for _, m := range st.Members {
				if m.NodeId == "node2" && m.Alive {
					return false
				}
			}
		}
		return true
	})
	event("node1 and node3 see node2 dead (%v after the kill)", time.Since(killed).Round(time.Millisecond))
	time.Sleep(plan.nodeDown)
	procs := append([]*Node(nil), c.Nodes...) // the killed node2 too, for the race check
	c.Nodes[nodeVictim] = StartNode(t, specs[nodeVictim])
	procs = append(procs, c.Nodes[nodeVictim])
	c.WaitMembers(3)
	load.Phase("node back")
	load.Resume(nodeVictim)
	event("node2 restarted over its shard and rejoined; sipp to node2 again")

	time.Sleep(plan.tail)
	load.Stop()
	event("load stopped")

	users := load.Confirmed()
	missing, failed := chaosLookupAll(t, c.Nodes, users)
	lost := map[int]bool{}
	var perNode []string
	for i, n := range c.Nodes {
		for _, u := range append(missing[i], failed[i]...) {
			lost[u] = true
		}
		perNode = append(perNode, fmt.Sprintf("%s %d missing, %d errors", n.ID, len(missing[i]), len(failed[i])))
	}
	event("looked up %d confirmed users through each node: %s", len(users), strings.Join(perNode, "; "))
	timeToR2, ok2 := chaosWaitR(t, c, c.Ring(), load, time.Now(), maxTimeToR)

	table := chaosTable(plan, load, len(lost), timeToR, ok, timeToR2, ok2, events)
	t.Log("\n" + table)
	fmt.Print(table)
	if *chaosOut != "" {
		if err := os.MkdirAll(filepath.Dir(*chaosOut), 0o755); err != nil {
			t.Error(err)
		} else if err := os.WriteFile(*chaosOut, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}

	for _, err := range load.harness {
		t.Errorf("sipp did not run: %v", err)
	}
	if len(lost) > 0 {
		some := slices.Sorted(maps.Keys(lost))
		t.Errorf("%d of %d users whose REGISTER got 200 OK are lost (first: %v)", len(lost), len(users), some[:min(10, len(some))])
	}
	total := load.total()
	if total.InvFailed > 0 {
		t.Errorf("%d of %d INVITEs to registered users did not get a 302 with the user's contact; first:\n%s",
			total.InvFailed, total.InvSent, strings.Join(load.failures, "\n"))
	}
	for _, n := range procs {
		out := n.Output()
		for _, bad := range []string{"DATA RACE", "panic"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s (pid %d) reported %q:\n%s", n.ID, n.PID(), bad, excerpt(out, bad))
			}
		}
	}
	// A run that sent (almost) nothing proves nothing.
	if total.Reg200 < total.RegSent/2 || total.InvSent < total.Reg200/2 {
		t.Errorf("too little load got through: %d of %d REGISTERs answered 200, %d INVITEs", total.Reg200, total.RegSent, total.InvSent)
	}
	for _, p := range load.phases {
		if p.InvSent == 0 && p.Name != "steady" {
			t.Errorf("no INVITE was sent during phase %q", p.Name)
		}
	}
}

// chaosWaitR polls until every user confirmed so far (the set grows while
// the load runs) is on its R=2 replicas under r, and reports how long after
// since that took; false if it took longer than limit.
func chaosWaitR(t *testing.T, c *Cluster, r *ring.Ring, load *chaosLoad, since time.Time, limit time.Duration) (time.Duration, bool) {
	t.Helper()
	last := -1
	for {
		n, err := chaosUnderReplicated(c, r, load.Confirmed(), 2)
		if err == nil && n == 0 {
			return time.Since(since), true
		}
		if n != last || err != nil {
			t.Logf("+%v after %v: %d confirmed records under-replicated (%v)", time.Since(since).Round(time.Millisecond), since.Format("15:04:05.000"), n, err)
			last = n
		}
		if time.Since(since) > limit {
			return time.Since(since), false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// chaosTable is the run's outcome as markdown.
func chaosTable(p chaosPlan, l *chaosLoad, lost int, timeToR time.Duration, okR bool, timeToR2 time.Duration, okR2 bool, events []string) string {
	var b strings.Builder
	bin := "race-built"
	if p.bench {
		bin = "plain"
	}
	fmt.Fprintf(&b, "\n## locsvc chaos test (%s): 3 nodes (%s binary, --sip-mode redirect), 3 memcached shards, R=2\n\n", p.name, bin)
	fmt.Fprintf(&b, "sipp over UDP, per live node: REGISTER %d/s of distinct users, INVITE %d/s to users already registered (200 OK).\n\n", p.regRate, p.invRate)
	b.WriteString("| phase | from | REGISTER sent | 200 OK | other answer | no answer | INVITE sent | 302 with contact | failed lookups |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(ph chaosPhase, from string) {
		other := strconv.Itoa(ph.RegOther)
		if len(ph.RegCodes) > 0 {
			var codes []string
			for _, code := range slices.Sorted(maps.Keys(ph.RegCodes)) {
				codes = append(codes, fmt.Sprintf("%s: %d", code, ph.RegCodes[code]))
			}
			other += " (" + strings.Join(codes, ", ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %d | %d | %d | %d |\n", ph.Name, from,
			ph.RegSent, ph.Reg200, other, ph.RegSilent, ph.InvSent, ph.InvOK, ph.InvFailed)
	}
	for _, ph := range l.phases {
		row(*ph, fmt.Sprintf("+%.1fs", ph.Start.Seconds()))
	}
	tot := l.total()
	tot.Name = "**total**"
	row(tot, "")
	r := func(d time.Duration, ok bool) string {
		if !ok {
			return fmt.Sprintf("not within %v", d.Round(time.Second))
		}
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	b.WriteString("\n| result | value | required |\n| --- | ---: | ---: |\n")
	fmt.Fprintf(&b, "| registrations sent / 200 OK | %d / %d | |\n", tot.RegSent, tot.Reg200)
	fmt.Fprintf(&b, "| lost registrations (200 OK, then not found through some node) | %d | 0 |\n", lost)
	fmt.Fprintf(&b, "| failed lookups for registered users (INVITE not answered 302 with the contact) | %d of %d | 0 |\n", tot.InvFailed, tot.InvSent)
	fmt.Fprintf(&b, "| time to R=2 after the killed shard came back empty | %s | <= %v |\n", r(timeToR, okR), maxTimeToR)
	fmt.Fprintf(&b, "| time to R=2 after the load ended (node2 restarted) | %s | |\n", r(timeToR2, okR2))
	b.WriteString("\nEvents:\n\n")
	for _, e := range events {
		b.WriteString("    " + e + "\n")
	}
	return b.String()
}

// total sums the phases.
func (l *chaosLoad) total() chaosPhase {
	var s chaosPhase
	for _, p := range l.phases {
		s.RegSent += p.RegSent
		s.Reg200 += p.Reg200
		s.RegOther += p.RegOther
		for code, n := range p.RegCodes {
			if s.RegCodes == nil {
				s.RegCodes = map[string]int{}
			}
			s.RegCodes[code] += n
		}
		s.RegSilent += p.RegSilent
		s.InvSent += p.InvSent
		s.InvOK += p.InvOK
		s.InvFailed += p.InvFailed
	}
	return s
}
