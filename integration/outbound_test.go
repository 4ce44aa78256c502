package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// RFC 5626 flows and RFC 5627 GRUUs across a farm of real nodes: two
// proxy nodes over two memcached, sharing a flow key. Phones register at
// A; calls come in through B and go home to A.

// startProxyFarm starts n proxy nodes over n memcached (R=2), sharing a
// --flow-key, and waits until they see each other.
func startProxyFarm(t *testing.T, n int, extra ...string) []*Node {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "flow.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t}
	for i := range n {
		c.Shards = append(c.Shards, StartMemcached(t))
		args := append([]string{"--memcached", c.Shards[i].Addr, "--sip-mode", "proxy", "--domain", "localhost",
			"--replicas", "2", "--gossip-profile", "local", "--register-rate", "0", "--flow-key", keyFile}, extra...)
		if i > 0 {
			args = append(args, "--join", c.Nodes[0].Gossip)
		}
		c.Nodes = append(c.Nodes, StartNode(t, NodeOptions{ID: fmt.Sprintf("node%c", 'A'+i), Args: args}))
	}
	c.WaitMembers(n)
	return c.Nodes
}

const instanceURN = "urn:uuid:0f7a3c1e-5d2b-4c9a-8e6f-1a2b3c4d5e6f"

// TestOutboundFlows: one phone instance keeps two flows (reg-id 1 and 2)
// to node A over TCP. A call through B reaches one of them, never both;
// once flow 1's connection closes, its binding is gone through every
// node and a call reaches flow 2. At A, a request routed by flow 1's
// token gets 430 (Flow Failed), one with a forged token 403.
func TestOutboundFlows(t *testing.T) {
	nodes := startProxyFarm(t, 2)
	a, b := nodes[0], nodes[1]
	const aor = "sip:dora@localhost"
	flows := []*goUA{tcpUA(t, a.SIP), tcpUA(t, a.SIP)}
	for i, f := range flows {
		contact := fmt.Sprintf(`<sip:dora%d@192.0.2.50;transport=tcp>;+sip.instance="<%s>";reg-id=%d`, i+1, instanceURN, i+1)
		res := f.register(aor, contact, fmt.Sprintf("flow%d@dora", i+1), 1, "Supported: outbound, path")
		if res.StatusCode != 200 || res.GetHeader("Require") == nil || res.GetHeader("Require").Value() != "outbound" {
			t.Fatalf("flow %d: %d %s, Require %v", i+1, res.StatusCode, res.Reason, res.GetHeader("Require"))
		}
	}
	var paths []string
	WaitFor(t, 10*time.Second, "B to see both flows, homed on A with flow tokens", func() bool {
		bs := b.Bindings(t, aor)
		paths = paths[:0]
		for _, x := range bs {
			if len(x.Path) != 1 || !strings.HasSuffix(x.Path[0], "@"+a.SIP+";lr;ob") || x.Node != "nodeA" {
				return false
			}
			paths = append(paths, x.Path[0])
		}
		return len(bs) == 2
	})

	caller := udpUA(t, b.SIP)
	call := func(callID string) {
		caller.send(caller.text("INVITE", "sip:dora@localhost", "sip:eve@localhost", aor, callID, 1))
	}
	// One flow at a time.
	call("flows-1@eve")
	got := -1
	for i, f := range flows {
		if inv := f.request(sip.INVITE, 2*time.Second); inv != nil {
			if got >= 0 {
				t.Fatalf("both flows of the instance got the INVITE")
			}
			got = i
			f.answer(inv, 486, "Busy Here")
		}
	}
	if got < 0 {
		t.Fatal("no flow got the INVITE")
	}
	if res := caller.final(5 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v, want the flow's 486", res)
	}

	// Flow 1 closes: its binding leaves the store, the call reaches flow 2.
	// (Both flows are closed before a token is tried below: either
	// binding's Path entry serves as the token of a flow that has gone.)
	goneFlowPath := paths[0]
	if userPart(goneFlowPath) == "" {
		t.Fatalf("Path %q carries no flow token", goneFlowPath)
	}
	flows[0].stream.Close()
	WaitFor(t, 10*time.Second, "flow 1's binding to be gone through B", func() bool {
		bs := b.Bindings(t, aor)
		return len(bs) == 1 && bs[0].RegId == 2
	})
	call("flows-2@eve")
	inv := flows[1].request(sip.INVITE, 5*time.Second)
	if inv == nil || !strings.Contains(inv.Recipient.String(), "dora2@") {
		t.Fatalf("flow 2 got %v", inv)
	}
	if n := len(inv.GetHeaders("Via")); n != 3 {
		t.Errorf("%d Vias: want the caller's, B's and A's", n)
	}
	flows[1].answer(inv, 486, "Busy Here")
	if res := caller.final(5 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}

	// At the home node: a request routed by the token of a flow that has
	// gone (430), and by a forged one (403).
	routed := func(route string) int {
		u := udpUA(t, a.SIP)
		u.send(u.text("INVITE", "sip:dora1@192.0.2.50;transport=tcp", "sip:eve@localhost", aor, "routed-"+route, 1, "Route: <"+route+">"))
		res := u.final(5 * time.Second)
		if res == nil {
			t.Fatalf("no answer to a request routed by %s", route)
		}
		return res.StatusCode
	}
	flows[1].stream.Close()
	WaitFor(t, 10*time.Second, "flow 2's binding to be gone", func() bool { return len(b.Bindings(t, aor)) == 0 })
	if code := routed(goneFlowPath); code != 430 {
		t.Errorf("token of a closed flow: %d, want 430", code)
	}
	tok := userPart(goneFlowPath)
	forged := strings.Replace(goneFlowPath, tok, tok[:len(tok)-3]+"xyz", 1)
	if code := routed(forged); code != 403 {
		t.Errorf("forged token: %d, want 403", code)
	}
	// Every flow gone: the user is away, through either node.
	for _, n := range nodes {
		u := udpUA(t, n.SIP)
		u.send(u.text("INVITE", "sip:dora@localhost", "sip:eve@localhost", aor, "away-"+n.ID, 1))
		if res := u.final(5 * time.Second); res == nil || res.StatusCode != 480 {
			t.Errorf("through %s: %v, want 480", n.ID, res)
		}
	}
	if got := metric(t, a, `locsvc_sip_events_total{kind="flow_unbound"}`); got != `locsvc_sip_events_total{kind="flow_unbound"} 2` {
		t.Errorf("metric %q", got)
	}
	for _, n := range nodes {
		stopProxyNode(t, n)
	}
}

func userPart(uri string) string {
	u, err := sipuri.Parse(uri)
	if err != nil {
		return ""
	}
	return u.User
}

// gruuParams returns the pub-gruu and temp-gruu the 200 gave contact.
func gruuParams(t *testing.T, res *sip.Response, contact string) (pub, temp string) {
	t.Helper()
	for _, h := range res.GetHeaders("Contact") {
		elems, err := sipuri.ParseNameAddrs(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range elems {
			if e.URI == contact {
				p, _ := e.Param("pub-gruu")
				tp, _ := e.Param("temp-gruu")
				return p.Value, tp.Value
			}
		}
	}
	return "", ""
}

// TestGRUUFarm: two instances of one user, registered at A and at B. An
// INVITE through B to instance 1's pub-gruu or temp-gruu reaches
// instance 1 only; one to a tampered temp-gruu gets 404; a UA that does
// not ask for GRUUs gets none.
func TestGRUUFarm(t *testing.T) {
	nodes := startProxyFarm(t, 2)
	a, b := nodes[0], nodes[1]
	const aor = "sip:fay@localhost"
	ua1, ua2 := udpUA(t, a.SIP), udpUA(t, b.SIP)
	c1 := "sip:fay@" + ua1.local()
	res := ua1.register(aor, `<`+c1+`>;+sip.instance="<urn:uuid:11111111-2222-3333-4444-000000000001>"`, "gr1@fay", 1, "Supported: gruu")
	pub1, temp1 := gruuParams(t, res, c1)
	if res.StatusCode != 200 || pub1 != "sip:fay@localhost;gr=urn:uuid:11111111-2222-3333-4444-000000000001" ||
		!strings.HasPrefix(temp1, "sip:tgruu.") || !strings.HasSuffix(temp1, "@localhost;gr") {
		t.Fatalf("200 %d: pub-gruu %q, temp-gruu %q", res.StatusCode, pub1, temp1)
	}
	c2 := "sip:fay@" + ua2.local()
	ua2.register(aor, `<`+c2+`>;+sip.instance="<urn:uuid:11111111-2222-3333-4444-000000000002>"`, "gr2@fay", 1, "Supported: gruu")
	WaitFor(t, 10*time.Second, "B to see both instances", func() bool { return len(b.Bindings(t, aor)) == 2 })

	caller := udpUA(t, b.SIP)
	for _, ruri := range []string{pub1, temp1} {
		caller.send(caller.text("INVITE", ruri, "sip:gus@localhost", aor, "gruu-"+ruri, 1))
		inv := ua1.request(sip.INVITE, 5*time.Second)
		if inv == nil {
			t.Fatalf("instance 1 got no INVITE to %s", ruri)
		}
		if other := ua2.request(sip.INVITE, 300*time.Millisecond); other != nil {
			t.Fatalf("instance 2 got the INVITE to instance 1's GRUU %s", ruri)
		}
		ua1.answer(inv, 486, "Busy Here")
		if res := caller.final(5 * time.Second); res == nil || res.StatusCode != 486 {
			t.Fatalf("caller got %v", res)
		}
	}
	tok := strings.TrimSuffix(strings.TrimPrefix(temp1, "sip:"), "@localhost;gr")
	tampered := "sip:" + tok[:len(tok)-4] + "AAAA@localhost;gr"
	caller.send(caller.text("INVITE", tampered, "sip:gus@localhost", aor, "gruu-tampered", 1))
	if res := caller.final(5 * time.Second); res == nil || res.StatusCode != 404 {
		t.Errorf("tampered temp-gruu: %v, want 404", res)
	}

	ua3 := udpUA(t, a.SIP)
	c3 := "sip:fay@" + ua3.local()
	res = ua3.register(aor, `<`+c3+`>;+sip.instance="<urn:uuid:11111111-2222-3333-4444-000000000003>"`, "gr3@fay", 1, "Supported: path")
	for _, h := range res.GetHeaders("Contact") {
		if strings.Contains(h.Value(), "gruu") {
			t.Errorf("GRUU given to a UA without Supported: gruu: %s", h.Value())
		}
	}
	for _, n := range nodes {
		stopProxyNode(t, n)
	}
}
