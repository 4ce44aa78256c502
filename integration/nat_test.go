package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NAT keepalives (--nat-ping) across a proxy farm, with sipp as the
// phones. Each node's phones are one sipp process (nat_ua.xml) whose calls
// each hold their own UDP socket (-t un) and register a Contact on a
// private address that is not the source, so every node sees NAT. The
// keepalive OPTIONS arrive with Call-IDs no call of sipp knows, so sipp
// hands them to the out-of-call scenario (nat_ping_answer.xml, -oocsf),
// which answers 200 from the socket they reached and logs each one; the
// log tells the phone (Request-URI), the node (Via sent-by) and the time.

// natUsers is one sipp process: phones [first, first+n), all registered
// through one node.
type natUsers struct {
	proc     *Proc
	home     *Node
	first, n int
	logFile  string // -log_file: the REG and PING lines
	errFile  string // -error_file
}

func natUser(i int) string { return fmt.Sprintf("nat%03d", i) }

func natAoR(i int) string { return "sip:" + natUser(i) + "@localhost" }

// natContact is phone i's Contact: 10.1.<its node>.x, never contacted,
// since keepalives go to the address the REGISTER came from.
func natContact(i int) string {
	return fmt.Sprintf("sip:%s@10.1.%d.%d:5060", natUser(i), i/100, i%100+1)
}

// startNATUsers starts sipp registering phones [first, first+n) through
// home and answering its keepalives.
func startNATUsers(t *testing.T, home *Node, first, n int) *natUsers {
	t.Helper()
	dir := t.TempDir()
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := first; i < first+n; i++ {
		c := natContact(i)
		fmt.Fprintf(&inf, "%s;%s\n", natUser(i), c[strings.IndexByte(c, '@')+1:])
	}
	users := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(users, []byte(inf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ua, err := filepath.Abs(filepath.Join("sipp", "nat_ua.xml"))
	if err != nil {
		t.Fatal(err)
	}
	ooc, err := filepath.Abs(filepath.Join("sipp", "nat_ping_answer.xml"))
	if err != nil {
		t.Fatal(err)
	}
	u := &natUsers{home: home, first: first, n: n,
		logFile: filepath.Join(dir, "ua.log"), errFile: filepath.Join(dir, "errors.log")}
	// -max_socket: sipp refuses to start when its default (50000) exceeds
	// the open-files limit. -l and -m: all n phones at once, each one
	// call that lasts the whole test.
	u.proc = Start(t, "sipp phones of "+home.ID, "sipp", nil,
		"-sf", ua, "-oocsf", ooc, "-inf", users, "-key", "domain", "localhost",
		"-t", "un", "-max_socket", strconv.Itoa(n+64), "-m", strconv.Itoa(n), "-l", strconv.Itoa(n), "-r", "50",
		"-i", "127.0.0.1", "-p", strconv.Itoa(FreePort(t)), "-nostdin",
		"-trace_logs", "-log_file", u.logFile, "-trace_err", "-error_file", u.errFile,
		home.SIP)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(u.errFile)
			t.Logf("--- end of the sipp error log of %s:\n%s", u.proc.Name, tail(string(b), 3000))
		}
	})
	return u
}

// natPing is one keepalive OPTIONS a phone answered.
type natPing struct {
	at     time.Time
	user   string // the Request-URI's user: the phone
	uri    string // the Request-URI
	sentBy string // the top Via's sent-by: the node that pinged
	branch string
	to     string
	from   string
}

// read parses the sipp log: each phone's source port (from its REG line)
// and the keepalives answered. Only whole lines count: sipp may be
// writing the last one.
func (u *natUsers) read(t *testing.T) (ports map[string]int, pings []natPing) {
	t.Helper()
	b, err := os.ReadFile(u.logFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	text := string(b)
	text = text[:strings.LastIndexByte(text, '\n')+1]
	ports = map[string]int{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Split(l, "|")
		switch {
		case f[0] == "REG" && len(f) == 3:
			p, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("sipp log line %q: %v", l, err)
			}
			ports[f[1]] = p
		case f[0] == "PING" && len(f) == 6:
			pings = append(pings, parseNATPing(t, f))
		case l != "":
			t.Fatalf("sipp log line not understood: %q", l)
		}
	}
	return ports, pings
}

// parseNATPing reads a PING line's fields: [timestamp] is "date\ttime\t
// epoch.micros", then the Request-URI and the Via, To and From headers
// as received.
func parseNATPing(t *testing.T, f []string) natPing {
	t.Helper()
	ts := strings.Fields(f[1])
	sec, frac, ok := strings.Cut(ts[len(ts)-1], ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("sipp timestamp %q", f[1])
	}
	p := natPing{at: time.Unix(s, us*1000), uri: f[2],
		to: strings.TrimPrefix(f[4], "To: "), from: strings.TrimPrefix(f[5], "From: ")}
	if user, _, ok := strings.Cut(strings.TrimPrefix(p.uri, "sip:"), "@"); ok {
		p.user = user
	}
	// Via: SIP/2.0/UDP host:port;branch=...;rport
	via := strings.TrimPrefix(f[3], "Via: SIP/2.0/UDP ")
	p.sentBy, _, _ = strings.Cut(via, ";")
	for _, param := range strings.Split(via, ";")[1:] {
		if v, ok := strings.CutPrefix(param, "branch="); ok {
			p.branch = v
		}
	}
	return p
}

// natMetrics reads the node's keepalive figures from one scrape, so that
// they agree with each other: "pinged" (the gauge) and the counters by
// kind ("nat_ping", "nat_ping_answered", ...). A missing one fails the
// test.
func natMetrics(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, l := range strings.Split(Scrape(t, n), "\n") {
		name, v, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if name == "locsvc_sip_nat_pinged" {
			name = "pinged"
		} else if kind, ok := strings.CutPrefix(name, `locsvc_sip_events_total{kind="nat_`); ok {
			name = "nat_" + strings.TrimSuffix(kind, `"}`)
		} else {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("node %s: %q: %v", n.ID, l, err)
		}
		out[name] = f
	}
	for _, name := range []string{"pinged", "nat_ping", "nat_ping_answered", "nat_ping_missed", "nat_unbound"} {
		if _, ok := out[name]; !ok {
			t.Fatalf("node %s: no %s on /metrics", n.ID, name)
		}
	}
	return out
}

// TestNATPing: three proxy nodes over three memcached shards (R=2), 100
// sipp phones behind "NAT" registered through each. Over three whole
// intervals every phone is pinged only by its home node, two to four
// times; no second carries more than twice the mean; each node keeps 100
// phones alive. Then one node's phones go silent (their sipp is killed):
// after --nat-ping-misses unanswered pings their bindings are gone through
// every node, that node counts 100 removals, and the other 200 phones
// stay.
func TestNATPing(t *testing.T) {
	const (
		interval = 3 * time.Second
		misses   = 2
		perNode  = 100
		victim   = 1 // the node whose phones go silent
	)
	began := time.Now()
	shards := make([]*Memcached, 3)
	nodes := make([]*Node, 3)
	for k := range nodes {
		shards[k] = StartMemcached(t)
		args := []string{"--memcached", shards[k].Addr, "--replicas", "2", "--gossip-profile", "local",
			"--sip-mode", "proxy", "--domain", "localhost", "--register-rate", "0",
			"--nat-ping", interval.String(), "--nat-ping-misses", strconv.Itoa(misses)}
		if k > 0 {
			args = append(args, "--join", nodes[0].Gossip)
		}
		nodes[k] = StartNode(t, NodeOptions{ID: fmt.Sprintf("node%d", k+1), Args: args})
	}
	(&Cluster{t: t, Shards: shards, Nodes: nodes}).WaitMembers(3)
	home := map[string]*Node{} // sent-by -> node
	for _, n := range nodes {
		home[n.SIP] = n
	}

	uas := make([]*natUsers, len(nodes))
	for k, n := range nodes {
		uas[k] = startNATUsers(t, n, k*perNode, perNode)
	}
	ports := map[string]int{}
	WaitFor(t, 30*time.Second, "every phone registered", func() bool {
		for _, u := range uas {
			if u.proc.Exited() {
				t.Fatalf("%s exited before its phones registered", u.proc.Name)
			}
		}
		clear(ports)
		for _, u := range uas {
			p, _ := u.read(t)
			for k, v := range p {
				ports[k] = v
			}
		}
		return len(ports) == len(uas)*perNode
	})
	// Every node has taken the REGISTERs it accepted by now, so a round
	// that starts from here holds all of its phones; the one under way
	// ends within an interval.
	registered := time.Now()
	t.Logf("%d phones registered %v after the start", len(ports), registered.Sub(began).Round(time.Millisecond))

	// Each binding, read through another node than its home: NAT seen
	// (the received address is the phone's socket, not its Contact), home
	// recorded.
	for k, u := range uas {
		other := nodes[(k+1)%len(nodes)]
		for i := u.first; i < u.first+u.n; i++ {
			bs := other.Bindings(t, natAoR(i))
			want := fmt.Sprintf("127.0.0.1:%d", ports[natUser(i)])
			if len(bs) != 1 || bs[0].Uri != natContact(i) || bs[0].Received != want || bs[0].Node != u.home.ID {
				t.Fatalf("%s through %s: bindings %v, want %s received from %s, home %s", natAoR(i), other.ID, bs, natContact(i), want, u.home.ID)
			}
		}
	}
	WaitFor(t, 10*time.Second, "every node keeps its 100 phones alive", func() bool {
		for _, n := range nodes {
			if natMetrics(t, n)["pinged"] != perNode {
				return false
			}
		}
		return true
	})

	// Three whole intervals, from the first round that holds every phone.
	start := registered.Add(interval + interval/2)
	end := start.Add(3 * interval)
	time.Sleep(time.Until(end) + time.Second) // and let sipp log the last ones
	secs := int(3 * interval / time.Second)
	hist := make([]int, secs)
	byNode := make([][]int, len(nodes))
	for k := range byNode {
		byNode[k] = make([]int, secs)
	}
	count := map[string]int{}
	total, early := 0, 0
	for k, u := range uas {
		_, pings := u.read(t)
		for _, p := range pings {
			i, err := strconv.Atoi(strings.TrimPrefix(p.user, "nat"))
			switch {
			case err != nil || i < u.first || i >= u.first+u.n || p.uri != natContact(i):
				t.Errorf("%s answered a ping for %q, not one of its phones", u.proc.Name, p.uri)
				continue
			case p.sentBy != u.home.SIP:
				from := "an unknown node"
				if n := home[p.sentBy]; n != nil {
					from = n.ID
				}
				t.Errorf("%s (home %s) pinged by %s (Via %s) at %v", p.user, u.home.ID, from, p.sentBy, p.at.Format(time.StampMicro))
				continue
			case !strings.HasPrefix(p.branch, "z9hG4bK-lsvcnat-") || p.to != "<"+p.uri+">" ||
				!strings.HasPrefix(p.from, "<sip:keepalive@127.0.0.1>;tag="):
				t.Errorf("%s: ping of an unexpected form: branch %q, To %q, From %q", p.user, p.branch, p.to, p.from)
			}
			if p.at.Before(start) {
				early++
			}
			if p.at.Before(start) || !p.at.Before(end) {
				continue
			}
			count[p.user]++
			s := int(p.at.Sub(start) / time.Second)
			hist[s]++
			byNode[k][s]++
			total++
		}
	}
	mean := float64(total) / float64(secs)
	t.Logf("pings answered before the window: %d; in the window [%v, %v): %d, a mean of %.1f a second",
		early, start.Sub(began).Round(time.Millisecond), end.Sub(began).Round(time.Millisecond), total, mean)
	for s := range hist {
		t.Logf("  second %d: %3d pings (%s %d, %s %d, %s %d)", s, hist[s],
			nodes[0].ID, byNode[0][s], nodes[1].ID, byNode[1][s], nodes[2].ID, byNode[2][s])
		if float64(hist[s]) > 2*mean {
			t.Errorf("second %d of the window carries %d pings, more than twice the mean %.1f", s, hist[s], mean)
		}
	}
	spread := map[int]int{} // pings in the window -> phones
	for i := range len(uas) * perNode {
		c := count[natUser(i)]
		spread[c]++
		if c < 2 || c > 4 {
			t.Errorf("%s: %d pings in three intervals, want 2 to 4", natUser(i), c)
		}
	}
	t.Logf("phones by pings received in the window: %v", spread)
	if t.Failed() {
		t.FailNow()
	}

	// One node's phones go silent.
	silent := uas[victim]
	silent.proc.Kill()
	killed := time.Now()
	deadline := killed.Add((misses+2)*interval + 10*time.Second)
	gone := map[string]time.Duration{} // node + AoR -> when it was seen gone
	var last time.Duration
	for len(gone) < len(nodes)*silent.n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lookups still find a silent phone %v after the kill (misses %d, interval %v)",
				len(nodes)*silent.n-len(gone), len(nodes)*silent.n, time.Since(killed).Round(time.Millisecond), misses, interval)
		}
		for _, n := range nodes {
			for i := silent.first; i < silent.first+silent.n; i++ {
				key := n.ID + " " + natAoR(i)
				if _, ok := gone[key]; ok {
					continue
				}
				if len(n.Bindings(t, natAoR(i))) == 0 {
					last = time.Since(killed)
					gone[key] = last
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	first := last
	for _, d := range gone {
		first = min(first, d)
	}
	t.Logf("silent phones gone through every node from %v to %v after the kill (misses %d, interval %v)",
		first.Round(time.Millisecond), last.Round(time.Millisecond), misses, interval)
	// The first ping a silent phone ignores left at the kill at the
	// earliest (the one before may have been on its way), and its miss is
	// counted an interval later: no phone may go before misses intervals.
	if soonest := misses*interval - interval/4; first < soonest {
		t.Errorf("a silent phone was gone %v after the kill, before %d misses could be counted (%v)", first, misses, soonest)
	}

	for k, n := range nodes {
		m := natMetrics(t, n)
		t.Logf("node %s: pinged %v; pings %v, answered %v, missed %v, unbound %v", n.ID,
			m["pinged"], m["nat_ping"], m["nat_ping_answered"], m["nat_ping_missed"], m["nat_unbound"])
		unbound := 0.0
		if k == victim {
			unbound = perNode
		}
		if m["nat_unbound"] != unbound || m["pinged"] != perNode-unbound {
			t.Errorf("node %s: nat_unbound %v, pinged %v; want %v and %v", n.ID, m["nat_unbound"], m["pinged"], unbound, perNode-unbound)
		}
	}
	// The phones that kept answering keep their bindings, on every node.
	for k, u := range uas {
		if k == victim {
			continue
		}
		for _, n := range nodes {
			for i := u.first; i < u.first+u.n; i++ {
				if bs := n.Bindings(t, natAoR(i)); len(bs) != 1 || bs[0].Uri != natContact(i) {
					t.Errorf("%s through %s: bindings %v, want %s", natAoR(i), n.ID, bs, natContact(i))
				}
			}
		}
	}

	for k := len(nodes) - 1; k >= 0; k-- {
		stopSIPNode(t, nodes[k])
	}
	t.Logf("test body took %v", time.Since(began).Round(time.Millisecond))
}
