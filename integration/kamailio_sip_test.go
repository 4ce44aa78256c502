package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The "SIP style" Kamailio integration: Kamailio edges running
// kamailio/sip-style.cfg forward REGISTERs to locsvc's SIP front end (with
// their own Path) and send initial requests to it in redirect mode,
// following the 302. locsvc runs as a cluster on real memcached, its front
// ends in redirect mode trusting loopback (the edges). See docs/kamailio.md.

// kamSIPCluster starts n memcached servers and n nodes (R=2, fast gossip)
// with their SIP front ends in redirect mode for kamDomain, trusting
// 127.0.0.0/8, all joined through the first node.
func kamSIPCluster(t *testing.T, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for i := range n {
		m := StartMemcached(t)
		args := []string{"--memcached", m.Addr, "--replicas", "2", "--gossip-profile", "local",
			"--sip-mode", "redirect", "--trusted", "127.0.0.0/8", "--domain", kamDomain}
		if i > 0 {
			args = append(args, "--join", c.Nodes[0].Gossip)
		}
		node := StartNode(t, NodeOptions{ID: fmt.Sprintf("node%d", i+1), Args: args})
		c.Shards = append(c.Shards, m)
		c.Nodes = append(c.Nodes, node)
	}
	c.WaitMembers(n)
	return c
}

// kamSIPEdge starts an edge (sip-style.cfg) talking to node's SIP front end.
func kamSIPEdge(t *testing.T, name string, node *Node) *Kamailio {
	t.Helper()
	return StartKamailio(t, KamailioOptions{Name: name, LocsvcSIP: node.SIP, Domain: kamDomain})
}

// A REGISTER through Kamailio (forwarded to node 1's front end) is visible
// through node 2's gRPC Lookup, with the edge's Path stored (and no entry
// of the redirect server's own).
func TestKamailioSIPRegister(t *testing.T) {
	c := kamSIPCluster(t, 2)
	edge := kamSIPEdge(t, "kamailio-sip-edge1", c.Nodes[0])
	b, port := kamRegisterSeen(t, edge, c.Nodes[1], "alice")
	wantPath := fmt.Sprintf("sip:%s;lr;received=sip:127.0.0.1:%d;pt=", edge.Addr, port)
	if len(b.Path) != 1 || !strings.HasPrefix(b.Path[0], wantPath) {
		t.Errorf("path %q, want the edge only, %s...", b.Path, wantPath)
	}
	// locsvc saw the REGISTER come from the edge.
	if b.Received != edge.Addr || b.Transport != "udp" {
		t.Errorf("received %q transport %q, want the edge %s udp", b.Received, b.Transport, edge.Addr)
	}
	if b.UserAgent != "sipp-locsvc-test" {
		t.Errorf("user agent %q", b.UserAgent)
	}
	if b.Expires < 3500 || b.Expires > 3600 {
		t.Errorf("expires %d, want about 3600", b.Expires)
	}
	if b.Node != "node1" {
		t.Errorf("written by %q, want node1 (the edge's node)", b.Node)
	}
}

// A call through Kamailio: the edge asks locsvc, gets a 302 whose contact
// routes through the edge itself (its Path), and sends the call straight
// to the phone; INVITE/200/ACK/BYE complete at the sipp UAS.
func TestKamailioSIPCall(t *testing.T) {
	c := kamSIPCluster(t, 2)
	edge := kamSIPEdge(t, "kamailio-sip-edge1", c.Nodes[0])
	uas := kamCall(t, edge, edge, "bob")
	inv := kamReceived(uas.Messages(), "INVITE ")
	if rr := kamHeaders(inv, "Record-Route"); len(rr) != 1 || !strings.Contains(rr[0], edge.Addr) {
		t.Errorf("INVITE at the UAS has Record-Route %q, want the edge %s once\n--- kamailio:\n%s", rr, edge.Addr, edge.Output())
	}
	if r := kamHeaders(inv, "Route"); len(r) != 0 {
		t.Errorf("INVITE at the UAS has Route %q", r)
	}
	if !strings.HasPrefix(inv, "INVITE sip:bob@127.0.0.1:") || strings.Contains(strings.SplitN(inv, "\n", 2)[0], "?") {
		t.Errorf("request line %q, want the contact without headers", strings.SplitN(inv, "\n", 2)[0])
	}
	if !strings.Contains(edge.Output(), "locsvc redirected") {
		t.Errorf("the edge did not follow a 302 from locsvc\n--- kamailio:\n%s", edge.Output())
	}
}

// Two edges share one cluster: a user registered through edge 1 (node 1)
// is called through edge 2 (node 2). Node 2's 302 carries edge 1's Path as
// ?Route=, so edge 2 routes the call to edge 1, which relays it to the
// phone (both edges record-route).
func TestKamailioSIPTwoEdges(t *testing.T) {
	c := kamSIPCluster(t, 2)
	edge1 := kamSIPEdge(t, "kamailio-sip-edge1", c.Nodes[0])
	edge2 := kamSIPEdge(t, "kamailio-sip-edge2", c.Nodes[1])
	uas := kamCall(t, edge1, edge2, "carol")
	logs := "\n--- edge1:\n" + edge1.Output() + "\n--- edge2:\n" + edge2.Output()
	inv := kamReceived(uas.Messages(), "INVITE ")
	rr := strings.Join(kamHeaders(inv, "Record-Route"), ",")
	if !strings.Contains(rr, edge1.Addr) || !strings.Contains(rr, edge2.Addr) {
		t.Errorf("INVITE at the UAS has Record-Route %q, want both edges %s and %s%s", rr, edge1.Addr, edge2.Addr, logs)
	}
	if !strings.Contains(edge1.Output(), "home hop") {
		t.Errorf("edge 1 did not route the call home%s", logs)
	}
	if !strings.Contains(edge2.Output(), "locsvc redirected") {
		t.Errorf("edge 2 did not follow a 302 from locsvc%s", logs)
	}
}

// Refusals: an unknown user gets locsvc's 404, once (the edge matches the
// caller's ACK to its transaction); a REGISTER below the minimum expiry gets
// locsvc's 423 with Min-Expires and stores nothing; a preloaded Route with a
// Path token the edge did not write gets 403; an edge whose locsvc does not
// answer says 503 with Retry-After.
func TestKamailioSIPRefusals(t *testing.T) {
	c := kamSIPCluster(t, 2)
	edge := kamSIPEdge(t, "kamailio-sip-edge1", c.Nodes[0])

	kamRefusals(t, edge, c.Nodes[1], 15*time.Second)

	route := "<sip:" + edge.Addr + ";lr;received=sip:192.0.2.99:5060;pt=0123456789abcdef>"
	resp, err := kamExchange(edge.Addr, "INVITE sip:victim@192.0.2.99 SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP {local};branch=z9hG4bK-sip-relay-1\r\n"+
		"Route: "+route+"\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:mallory@"+kamDomain+">;tag=m1\r\n"+
		"To: <sip:victim@192.0.2.99>\r\n"+
		"Call-ID: sip-relay-1\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Content-Length: 0\r\n\r\n", 5*time.Second)
	if err != nil || kamStatus(resp) != 403 {
		t.Errorf("INVITE with Route %s: %q, %v; want 403", route, resp, err)
	}

	dead := StartKamailio(t, KamailioOptions{Name: "kamailio-sip-dead", LocsvcSIP: FreeAddr(t), Domain: kamDomain})
	for _, m := range []string{"REGISTER", "INVITE"} {
		ruri := "sip:" + kamDomain
		if m == "INVITE" {
			ruri = "sip:gina@" + kamDomain
		}
		resp, err := kamExchange(dead.Addr, m+" "+ruri+" SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP {local};branch=z9hG4bK-sip-dead-"+m+"\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:gina@"+kamDomain+">;tag=g1\r\n"+
			"To: <sip:gina@"+kamDomain+">\r\n"+
			"Call-ID: sip-dead-"+m+"\r\n"+
			"CSeq: 1 "+m+"\r\n"+
			"Contact: <sip:gina@192.0.2.7>\r\n"+
			"Content-Length: 0\r\n\r\n", 8*time.Second)
		if err != nil || kamStatus(resp) != 503 || len(kamHeaders(resp, "Retry-After")) != 1 {
			t.Errorf("%s with locsvc down: %q, %v; want 503 with Retry-After\n--- kamailio:\n%s", m, resp, err, dead.Output())
		}
	}
}
