package integration

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// The "HTTP style" Kamailio integration: Kamailio edges running
// kamailio/http-style.cfg answer REGISTER and route calls, storing and
// looking up bindings through locsvc's HTTP/JSON API; locsvc runs as a
// cluster on real memcached. See docs/kamailio.md.

const kamDomain = "example.com"

// kamSetup starts a 2-node cluster and one edge talking to node 1.
func kamSetup(t *testing.T) (*Cluster, *Kamailio) {
	t.Helper()
	c := kamCluster(t)
	return c, kamEdge(t, "kamailio-edge1", c, c.Nodes[0])
}

// kamCluster is a 2-node cluster whose API requires a token, as one
// reached by edges on other machines would.
func kamCluster(t *testing.T) *Cluster {
	t.Helper()
	return StartClusterWith(t, 2, ClusterOptions{APIToken: NewAPIToken()})
}

// kamEdge starts an edge talking to node of c, with c's token.
func kamEdge(t *testing.T, name string, c *Cluster, node *Node) *Kamailio {
	t.Helper()
	return StartKamailio(t, KamailioOptions{Name: name, LocsvcHTTP: node.HTTP, APIToken: c.APIToken(), Domain: kamDomain})
}

// kamRegister registers user through edge with sipp from port (which
// becomes the contact), expecting 200 with the contact listed.
func kamRegister(t *testing.T, edge *Kamailio, user string, port int) *kamSipp {
	t.Helper()
	return kamRunSipp(t, kamSippOptions{Name: "register-" + user, Scenario: "register.xml", Port: port,
		Service: user, Remote: edge.Addr, Keys: map[string]string{"domain": kamDomain, "expires": "3600"}})
}

// kamLookup is a gRPC Lookup on node.
// kamRegisterSeen registers user through edge from a fresh port and
// returns the one binding node's Lookup then shows, and the port.
func kamRegisterSeen(t *testing.T, edge *Kamailio, node *Node, user string) (*locsvcv1.Binding, int) {
	t.Helper()
	port := FreePort(t)
	kamRegister(t, edge, user, port)
	bs := kamLookup(t, node, "sip:"+user+"@"+kamDomain)
	want := fmt.Sprintf("sip:%s@127.0.0.1:%d", user, port)
	if len(bs) != 1 || bs[0].Uri != want {
		t.Fatalf("%s Lookup: got %v, want one binding %s\n--- kamailio:\n%s", node.ID, bs, want, edge.Output())
	}
	return bs[0], port
}

func kamLookup(t *testing.T, node *Node, aor string) []*locsvcv1.Binding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := node.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: aor})
	if err != nil {
		t.Fatalf("Lookup %s on %s: %v", aor, node.ID, err)
	}
	return res.Bindings
}

// kamCall registers a sipp UAS as user through regEdge, then calls it with a
// sipp UAC through callEdge, and returns the UAS (its INVITE is in its
// message log).
func kamCall(t *testing.T, regEdge, callEdge *Kamailio, user string) *kamSipp {
	t.Helper()
	port := FreePort(t)
	kamRegister(t, regEdge, user, port)
	uas := kamStartSipp(t, kamSippOptions{Name: "uas-" + user, Scenario: "uas.xml", Port: port, Service: user})
	uas.WaitListening(t)
	kamRunSipp(t, kamSippOptions{Name: "uac-" + user, Scenario: "uac.xml", Service: user, Remote: callEdge.Addr,
		Keys: map[string]string{"domain": kamDomain}})
	uas.WaitOK(t, 10*time.Second)
	return uas
}

// kamReceived is the first message of a sipp message log that starts with
// start (e.g. "INVITE "), as received.
func kamReceived(log, start string) string {
	for _, block := range strings.Split(log, "message received") {
		body := block
		if i := strings.Index(body, "\n"); i >= 0 {
			body = strings.TrimLeft(body[i+1:], "\r\n")
		}
		if strings.HasPrefix(body, start) {
			return body
		}
	}
	return ""
}

// A REGISTER through Kamailio (talking to node 1) is visible through
// node 2's gRPC Lookup, with the contact, the source address and the edge
// as Path.
func TestKamailioRegister(t *testing.T) {
	c, edge := kamSetup(t)
	b, port := kamRegisterSeen(t, edge, c.Nodes[1], "alice")
	if rcv := fmt.Sprintf("127.0.0.1:%d", port); b.Received != rcv || b.Transport != "udp" {
		t.Errorf("received %q transport %q, want %q udp", b.Received, b.Transport, rcv)
	}
	if b.UserAgent != "sipp-locsvc-test" {
		t.Errorf("user agent %q", b.UserAgent)
	}
	if b.Expires < 3500 || b.Expires > 3600 {
		t.Errorf("expires %d, want about 3600", b.Expires)
	}
	if len(b.Path) != 1 || !strings.HasPrefix(b.Path[0], "sip:"+edge.Addr+";lr;received=sip:127.0.0.1:") {
		t.Errorf("path %q, want the edge sip:%s;lr;received=...", b.Path, edge.Addr)
	}
	if b.Node != "node1" {
		t.Errorf("written by %q, want node1 (the edge's node)", b.Node)
	}
}

// A call through Kamailio reaches the registered sipp UAS; ACK and BYE
// follow the Record-Route set.
func TestKamailioCall(t *testing.T) {
	_, edge := kamSetup(t)
	uas := kamCall(t, edge, edge, "bob")
	inv := kamReceived(uas.Messages(), "INVITE ")
	if rr := kamHeaders(inv, "Record-Route"); len(rr) != 1 || !strings.Contains(rr[0], edge.Addr) {
		t.Errorf("INVITE at the UAS has Record-Route %q, want the edge %s once", rr, edge.Addr)
	}
}

// Two edges share one cluster: a user registered through edge 1 (node 1)
// is called through edge 2 (node 2). The binding's Path names edge 1, so
// the call goes home through edge 1 (both edges record-route).
func TestKamailioTwoEdges(t *testing.T) {
	c := kamCluster(t)
	edge1 := kamEdge(t, "kamailio-edge1", c, c.Nodes[0])
	edge2 := kamEdge(t, "kamailio-edge2", c, c.Nodes[1])
	uas := kamCall(t, edge1, edge2, "carol")
	inv := kamReceived(uas.Messages(), "INVITE ")
	rr := strings.Join(kamHeaders(inv, "Record-Route"), ",")
	if !strings.Contains(rr, edge1.Addr) || !strings.Contains(rr, edge2.Addr) {
		t.Errorf("INVITE at the UAS has Record-Route %q, want both edges %s and %s", rr, edge1.Addr, edge2.Addr)
	}
	if !strings.Contains(edge1.Output(), "home hop") {
		t.Errorf("edge 1 did not route the call home\n--- edge1:\n%s", edge1.Output())
	}
}

// kamRefusals checks, through edge, that an unknown user gets one 404 and
// that a REGISTER below the minimum expiry gets 423 with Min-Expires,
// relayed from locsvc's error, and stores nothing (looked up on node).
// uac404Timeout bounds the 404 scenario (0: sipp's default here).
func kamRefusals(t *testing.T, edge *Kamailio, node *Node, uac404Timeout time.Duration) {
	t.Helper()
	s404 := kamRunSipp(t, kamSippOptions{Name: "uac-404", Scenario: "uac_404.xml", Service: "nobody", Remote: edge.Addr,
		Keys: map[string]string{"domain": kamDomain}, Timeout: uac404Timeout})
	// The 404 is sent statefully: a second copy would mean the edge did not
	// match the ACK to its transaction.
	if n := strings.Count(s404.Messages(), "\nSIP/2.0 404"); n != 1 {
		t.Errorf("UAC received %d copies of the 404, want 1\n%s\n--- kamailio:\n%s", n, s404.Logs(), edge.Output())
	}

	s := kamRunSipp(t, kamSippOptions{Name: "register-423", Scenario: "register_423.xml", Service: "dave",
		Remote: edge.Addr, Keys: map[string]string{"domain": kamDomain, "expires": "30"}})
	resp := kamReceived(s.Messages(), "SIP/2.0 423")
	if me := kamHeaders(resp, "Min-Expires"); len(me) != 1 || me[0] != "60" {
		t.Errorf("423 has Min-Expires %q, want 60\n%s", me, s.Logs())
	}
	if bs := kamLookup(t, node, "sip:dave@"+kamDomain); len(bs) != 0 {
		t.Errorf("refused REGISTER stored %v", bs)
	}
}

// An unknown user gets 404; a REGISTER below the minimum expiry gets 423
// with Min-Expires, relayed from locsvc's error, and stores nothing.
func TestKamailioRefusals(t *testing.T) {
	c, edge := kamSetup(t)

	kamRefusals(t, edge, c.Nodes[1], 0)

	// Preloaded Routes: to a foreign host, or naming the edge with a Path
	// token it did not write: refused, the edge is no open relay.
	for _, route := range []string{"<sip:192.0.2.99;lr>",
		"<sip:" + edge.Addr + ";lr;received=sip:192.0.2.99:5060;pt=0123456789abcdef>"} {
		resp, err := kamExchange(edge.Addr, "INVITE sip:victim@192.0.2.99 SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP {local};branch=z9hG4bK-relay-"+fmt.Sprint(len(route))+"\r\n"+
			"Route: "+route+"\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:mallory@"+kamDomain+">;tag=m1\r\n"+
			"To: <sip:victim@192.0.2.99>\r\n"+
			"Call-ID: relay-"+fmt.Sprint(len(route))+"\r\n"+
			"CSeq: 1 INVITE\r\n"+
			"Content-Length: 0\r\n\r\n", 5*time.Second)
		if err != nil || kamStatus(resp) != 403 {
			t.Errorf("INVITE with Route %s: %q, %v; want 403", route, resp, err)
		}
	}

	// An edge whose locsvc does not answer says so with 503 + Retry-After.
	dead := StartKamailio(t, KamailioOptions{Name: "kamailio-dead", LocsvcHTTP: FreeAddr(t), Domain: kamDomain})
	resp, err := kamExchange(dead.Addr, "REGISTER sip:"+kamDomain+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP {local};branch=z9hG4bK-dead-1\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:gina@"+kamDomain+">;tag=g1\r\n"+
		"To: <sip:gina@"+kamDomain+">\r\n"+
		"Call-ID: gina-1\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:gina@192.0.2.7>\r\n"+
		"Content-Length: 0\r\n\r\n", 5*time.Second)
	if err != nil || kamStatus(resp) != 503 || len(kamHeaders(resp, "Retry-After")) != 1 {
		t.Errorf("REGISTER with locsvc down: %q, %v; want 503 with Retry-After\n--- kamailio:\n%s", resp, err, dead.Output())
	}

	// An edge without the node's token is refused by the API (401): the
	// phone gets 503, and nothing is stored.
	stranger := StartKamailio(t, KamailioOptions{Name: "kamailio-no-token", LocsvcHTTP: c.Nodes[0].HTTP, Domain: kamDomain})
	resp, err = kamExchange(stranger.Addr, "REGISTER sip:"+kamDomain+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP {local};branch=z9hG4bK-stranger-1\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:hank@"+kamDomain+">;tag=h1\r\n"+
		"To: <sip:hank@"+kamDomain+">\r\n"+
		"Call-ID: hank-1\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:hank@192.0.2.8>\r\n"+
		"Content-Length: 0\r\n\r\n", 5*time.Second)
	if err != nil || kamStatus(resp) != 503 || !strings.Contains(stranger.Output(), "code 401") {
		t.Errorf("REGISTER through an edge without the token: %q, %v; want 503 after a 401\n--- kamailio:\n%s", resp, err, stranger.Output())
	}
	if bs := kamLookup(t, c.Nodes[0], "sip:hank@"+kamDomain); len(bs) != 0 {
		t.Errorf("a REGISTER without the token stored %v", bs)
	}
}

// Several contacts over several Contact headers, with expires and q
// parameters, then removal of all of them with "Contact: *".
func TestKamailioContacts(t *testing.T) {
	c, edge := kamSetup(t)
	register := func(cseq int, contacts, expires string) string {
		t.Helper()
		req := "REGISTER sip:" + kamDomain + " SIP/2.0\r\n" +
			fmt.Sprintf("Via: SIP/2.0/UDP {local};branch=z9hG4bK-reg-%d-%d\r\n", cseq, time.Now().UnixNano()) +
			"Max-Forwards: 70\r\n" +
			"From: <sip:erin@" + kamDomain + ">;tag=e1\r\n" +
			"To: <sip:erin@" + kamDomain + ">\r\n" +
			"Call-ID: erin-contacts-1\r\n" +
			fmt.Sprintf("CSeq: %d REGISTER\r\n", cseq) +
			contacts + expires +
			"User-Agent: test \"quoted\" \\ agent\r\n" +
			"Content-Length: 0\r\n\r\n"
		resp, err := kamExchange(edge.Addr, req, 5*time.Second)
		if err != nil {
			t.Fatalf("REGISTER: %v\n--- kamailio:\n%s", err, edge.Output())
		}
		return resp
	}

	resp := register(1, "Contact: \"Erin, Desk\" <sip:erin@192.0.2.1:5060;transport=udp>;expires=120, <sip:erin@192.0.2.2>;q=0.5\r\n"+
		"Contact: <sip:erin@192.0.2.3:5070>;q=1.0\r\n", "Expires: 600\r\n")
	if kamStatus(resp) != 200 {
		t.Fatalf("REGISTER: %q\n--- kamailio:\n%s", resp, edge.Output())
	}
	if got := kamHeaders(resp, "Contact"); len(got) != 3 {
		t.Errorf("200 OK Contacts %q, want 3", got)
	}
	want := map[string]struct {
		expires int64
		q       float64
	}{
		"sip:erin@192.0.2.1:5060;transport=udp": {120, 1},
		"sip:erin@192.0.2.2":                    {600, 0.5},
		"sip:erin@192.0.2.3:5070":               {600, 1},
	}
	bs := kamLookup(t, c.Nodes[1], "sip:erin@"+kamDomain)
	if len(bs) != len(want) {
		t.Fatalf("node2 Lookup: %v, want %d bindings", bs, len(want))
	}
	for _, b := range bs {
		w, ok := want[b.Uri]
		if !ok || b.Q != w.q || b.Expires > w.expires || b.Expires < w.expires-60 {
			t.Errorf("binding %s expires %d q %v; want %+v (known: %v)", b.Uri, b.Expires, b.Q, w, ok)
		}
		if b.UserAgent != `test "quoted" \ agent` {
			t.Errorf("user agent %q", b.UserAgent)
		}
	}

	// Refused by the edge itself, before locsvc (CSeq 2 is not used up).
	if resp := register(2, "Contact: <sip:erin@192.0.2.9>;q=2\r\n", ""); kamStatus(resp) != 400 {
		t.Errorf("q=2: %q, want 400", resp)
	}
	if resp := register(3, "Contact: *, <sip:erin@192.0.2.5>\r\n", "Expires: 0\r\n"); kamStatus(resp) != 400 {
		t.Errorf("Contact: * with another contact: %q, want 400", resp)
	}
	if resp := register(3, "Contact: *\r\n", "Expires: 0\r\n"); kamStatus(resp) != 200 || len(kamHeaders(resp, "Contact")) != 0 {
		t.Errorf("Contact: *: %q, want 200 without Contact", resp)
	}
	if bs := kamLookup(t, c.Nodes[1], "sip:erin@"+kamDomain); len(bs) != 0 {
		t.Errorf("after Contact: * node2 still has %v", bs)
	}
	// A delayed REGISTER (CSeq 2, after the removal at CSeq 3) for a removed
	// contact is out of order: locsvc refuses it, the edge relays the answer.
	if resp := register(2, "Contact: <sip:erin@192.0.2.2>\r\n", ""); kamStatus(resp) != 500 {
		t.Errorf("CSeq 2 after 3: %q, want 500", resp)
	}
	if bs := kamLookup(t, c.Nodes[1], "sip:erin@"+kamDomain); len(bs) != 0 {
		t.Errorf("out-of-order REGISTER stored %v", bs)
	}
}

// kamUA is a bare SIP endpoint on a UDP socket, for exchanges sipp
// scenarios cannot express (replying to an INVITE after a CANCEL arrived).
type kamUA struct {
	t    *testing.T
	c    net.PacketConn
	Addr string
}

func newKamUA(t *testing.T) *kamUA {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &kamUA{t: t, c: c, Addr: c.LocalAddr().String()}
}

func (u *kamUA) send(to, msg string) {
	u.t.Helper()
	a, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.c.WriteTo([]byte(msg), a); err != nil {
		u.t.Fatal(err)
	}
}

// recv returns the next message starting with start, skipping others
// (retransmissions, 100 Trying); "" if none came within d.
func (u *kamUA) recv(start string, d time.Duration) string {
	buf := make([]byte, 65536)
	deadline := time.Now().Add(d)
	for {
		_ = u.c.SetReadDeadline(deadline)
		n, _, err := u.c.ReadFrom(buf)
		if err != nil {
			return ""
		}
		if m := string(buf[:n]); strings.HasPrefix(m, start) {
			return m
		}
	}
}

// kamReply builds a response to req copying Via, Record-Route, From, To,
// Call-ID and CSeq; toTag is added to a To without one.
func kamReply(req, status, toTag string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, h := range []string{"Via", "Record-Route", "From", "To", "Call-ID", "CSeq"} {
		for _, v := range kamHeaders(req, h) {
			if h == "To" && toTag != "" && !strings.Contains(v, ";tag=") {
				v += ";tag=" + toTag
			}
			b.WriteString(h + ": " + v + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// A caller cancels a ringing call: the edge answers the CANCEL, cancels the
// branch towards the callee, relays its 487, and takes the caller's ACK.
func TestKamailioCancel(t *testing.T) {
	_, edge := kamSetup(t)
	uas, uac := newKamUA(t), newKamUA(t)
	const wait = 5 * time.Second

	uas.send(edge.Addr, "REGISTER sip:"+kamDomain+" SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP "+uas.Addr+";branch=z9hG4bK-frank-reg\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:frank@"+kamDomain+">;tag=f1\r\n"+
		"To: <sip:frank@"+kamDomain+">\r\n"+
		"Call-ID: frank-reg\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:frank@"+uas.Addr+">\r\n"+
		"Content-Length: 0\r\n\r\n")
	if r := uas.recv("SIP/2.0 ", wait); kamStatus(r) != 200 {
		t.Fatalf("REGISTER: %q\n--- kamailio:\n%s", r, edge.Output())
	}

	common := "Via: SIP/2.0/UDP " + uac.Addr + ";branch=z9hG4bK-frank-inv\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:caller@" + kamDomain + ">;tag=c1\r\n" +
		"Call-ID: frank-call\r\n"
	uac.send(edge.Addr, "INVITE sip:frank@"+kamDomain+" SIP/2.0\r\n"+common+
		"To: <sip:frank@"+kamDomain+">\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:caller@"+uac.Addr+">\r\n"+
		"Content-Length: 0\r\n\r\n")
	inv := uas.recv("INVITE ", wait)
	if inv == "" {
		t.Fatalf("INVITE did not reach the callee\n--- kamailio:\n%s", edge.Output())
	}
	uas.send(edge.Addr, kamReply(inv, "180 Ringing", "u1"))
	if r := uac.recv("SIP/2.0 180", wait); r == "" {
		t.Fatalf("no 180 at the caller\n--- kamailio:\n%s", edge.Output())
	}

	uac.send(edge.Addr, "CANCEL sip:frank@"+kamDomain+" SIP/2.0\r\n"+common+
		"To: <sip:frank@"+kamDomain+">\r\n"+
		"CSeq: 1 CANCEL\r\n"+
		"Content-Length: 0\r\n\r\n")
	if r := uac.recv("SIP/2.0 200", wait); !strings.Contains(r, "CANCEL") {
		t.Fatalf("no 200 to the CANCEL: %q\n--- kamailio:\n%s", r, edge.Output())
	}
	can := uas.recv("CANCEL ", wait)
	if can == "" {
		t.Fatalf("CANCEL did not reach the callee\n--- kamailio:\n%s", edge.Output())
	}
	uas.send(edge.Addr, kamReply(can, "200 OK", "u1"))
	uas.send(edge.Addr, kamReply(inv, "487 Request Terminated", "u1"))

	r487 := uac.recv("SIP/2.0 487", wait)
	if r487 == "" {
		t.Fatalf("no 487 at the caller\n--- kamailio:\n%s", edge.Output())
	}
	uac.send(edge.Addr, "ACK sip:frank@"+kamDomain+" SIP/2.0\r\n"+common+
		"To: "+kamHeaders(r487, "To")[0]+"\r\n"+
		"CSeq: 1 ACK\r\n"+
		"Content-Length: 0\r\n\r\n")
	if ack := uas.recv("ACK ", wait); ack == "" {
		t.Errorf("the edge did not acknowledge the callee's 487\n--- kamailio:\n%s", edge.Output())
	}
	// A retransmitted 487 would mean the caller's ACK did not match.
	if r := uac.recv("SIP/2.0 487", 1200*time.Millisecond); r != "" {
		t.Errorf("487 retransmitted after the ACK\n--- kamailio:\n%s", edge.Output())
	}
}

// Two bindings for one user, registered through edge 1; a call through
// edge 2 forks to both, each branch through edge 1 (its Path). Both callees
// answer busy; the caller gets one 486 and acknowledges it.
func TestKamailioForking(t *testing.T) {
	c := kamCluster(t)
	edge1 := kamEdge(t, "kamailio-edge1", c, c.Nodes[0])
	edge2 := kamEdge(t, "kamailio-edge2", c, c.Nodes[1])
	const wait = 5 * time.Second
	logs := func() string { return "\n--- edge1:\n" + edge1.Output() + "\n--- edge2:\n" + edge2.Output() }

	phones := []*kamUA{newKamUA(t), newKamUA(t)}
	for i, p := range phones {
		p.send(edge1.Addr, "REGISTER sip:"+kamDomain+" SIP/2.0\r\n"+
			fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-hank-reg-%d\r\n", p.Addr, i)+
			"Max-Forwards: 70\r\n"+
			"From: <sip:hank@"+kamDomain+">;tag=h1\r\n"+
			"To: <sip:hank@"+kamDomain+">\r\n"+
			fmt.Sprintf("Call-ID: hank-phone-%d\r\n", i)+
			"CSeq: 1 REGISTER\r\n"+
			fmt.Sprintf("Contact: <sip:hank@%s>;q=%.1f\r\n", p.Addr, 1-0.5*float64(i))+
			"Content-Length: 0\r\n\r\n")
		if r := p.recv("SIP/2.0 ", wait); kamStatus(r) != 200 {
			t.Fatalf("REGISTER phone %d: %q%s", i, r, logs())
		}
	}

	caller := newKamUA(t)
	common := "Via: SIP/2.0/UDP " + caller.Addr + ";branch=z9hG4bK-hank-inv\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:caller@" + kamDomain + ">;tag=c1\r\n" +
		"Call-ID: hank-call\r\n"
	caller.send(edge2.Addr, "INVITE sip:hank@"+kamDomain+" SIP/2.0\r\n"+common+
		"To: <sip:hank@"+kamDomain+">\r\n"+
		"CSeq: 1 INVITE\r\n"+
		"Contact: <sip:caller@"+caller.Addr+">\r\n"+
		"Content-Length: 0\r\n\r\n")
	for i, p := range phones {
		inv := p.recv("INVITE ", wait)
		if inv == "" {
			t.Fatalf("INVITE did not reach phone %d%s", i, logs())
		}
		if rr := strings.Join(kamHeaders(inv, "Record-Route"), ","); !strings.Contains(rr, edge1.Addr) || !strings.Contains(rr, edge2.Addr) {
			t.Errorf("phone %d: Record-Route %q, want both edges", i, rr)
		}
		p.send(edge1.Addr, kamReply(inv, "486 Busy Here", fmt.Sprintf("p%d", i)))
		if ack := p.recv("ACK ", wait); ack == "" {
			t.Errorf("phone %d: no ACK to its 486%s", i, logs())
		}
	}
	r := caller.recv("SIP/2.0 486", wait)
	if r == "" {
		t.Fatalf("no 486 at the caller%s", logs())
	}
	caller.send(edge2.Addr, "ACK sip:hank@"+kamDomain+" SIP/2.0\r\n"+common+
		"To: "+kamHeaders(r, "To")[0]+"\r\n"+
		"CSeq: 1 ACK\r\n"+
		"Content-Length: 0\r\n\r\n")
	if r := caller.recv("SIP/2.0 486", 1200*time.Millisecond); r != "" {
		t.Errorf("486 retransmitted after the ACK%s", logs())
	}
}
