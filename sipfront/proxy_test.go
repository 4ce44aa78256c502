package sipfront

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Proxy mode in process: what the node answers itself, and one forwarded
// INVITE seen from the callee's socket. The sipp tests in integration/
// drive whole calls.

func startProxyEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	return startEnv(t, func(c *Config) {
		c.Mode = ModeProxy
		if mutate != nil {
			mutate(c)
		}
	})
}

// recvRequest reads one request off the client's socket (a UA being
// called), skipping responses.
func (c *udpClient) recvRequest(d time.Duration) *sip.Request {
	c.t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 65535)
	for {
		c.conn.SetReadDeadline(deadline)
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			c.t.Fatalf("unparseable message: %v\n%s", err, buf[:n])
		}
		if req, ok := m.(*sip.Request); ok {
			return req
		}
	}
}

// recvFinal reads responses until a final one.
func (c *udpClient) recvFinal(d time.Duration) *sip.Response {
	c.t.Helper()
	for {
		res := c.recv(d)
		if res == nil || !res.IsProvisional() {
			return res
		}
	}
}

func TestProxyAnswersItself(t *testing.T) {
	e := startProxyEnv(t, nil)
	c := e.udpClient()

	// REGISTER: the registrar, with this node as the binding's home.
	wantCode(t, c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}), 200)
	// The contact's IP is not the source's: behind NAT, so the Path entry
	// names the flow it came on.
	b := e.live("sip:alice@example.com")
	if len(b) != 1 || len(b[0].Path) != 1 || !strings.HasSuffix(b[0].Path[0], "@"+e.srv.Addr()+";lr") {
		t.Fatalf("stored %+v", b)
	}
	if f, err := e.srv.cfg.flows.Decode(userOf(b[0].Path[0])); err != nil || f.Transport != "udp" || f.Remote.String() != c.local() {
		t.Errorf("flow token names %+v (%v), want udp from %s", f, err, c.local())
	}
	wantCode(t, c.do(msg{callID: "same-host@test", hdrs: []string{"Contact: <sip:alice@127.0.0.1:5999>"}}), 200)
	for _, b := range e.live("sip:alice@example.com") {
		if b.URI == "sip:alice@127.0.0.1:5999" && (len(b.Path) != 1 || b.Path[0] != "sip:"+e.srv.Addr()+";lr") {
			t.Errorf("a contact at the source's IP: Path %q, want the node without a token", b.Path)
		}
	}
	res := c.do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr(), to: "<sip:" + e.srv.Addr() + ">"})
	wantCode(t, res, 200)
	if v := values(res, "Allow"); len(v) != 1 || !strings.Contains(v[0], "INVITE") {
		t.Errorf("Allow %q", v)
	}
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:nobody@example.com", to: "<sip:nobody@example.com>"}), 404)
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:bob@elsewhere.example", to: "<sip:bob@elsewhere.example>"}), 404)
	wantCode(t, c.do(msg{method: "MESSAGE", ruri: "sip:alice@example.com", maxFwd: "0"}), 483)
	wantCode(t, c.do(msg{method: "CANCEL", ruri: "sip:alice@example.com"}), 481)
	// An in-dialog request that was not record-routed here is refused.
	wantCode(t, c.do(msg{method: "BYE", ruri: "sip:alice@192.0.2.1", to: "<sip:alice@example.com>;tag=x"}), 403)
}

func TestProxyAuthAllChallengesWith407(t *testing.T) {
	creds, err := ParseCredentials(strings.NewReader(mustLine(t, "alice", "example.com", "pw", MD5) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := startProxyEnv(t, func(c *Config) { c.Credentials = creds; c.AuthAll = true })
	c := e.udpClient()
	res := c.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}})
	wantCode(t, res, 401)
	if len(values(res, "WWW-Authenticate")) == 0 {
		t.Error("REGISTER challenge without WWW-Authenticate")
	}
	res = c.do(msg{method: "INVITE", ruri: "sip:alice@example.com"})
	wantCode(t, res, 407)
	if len(values(res, "Proxy-Authenticate")) == 0 {
		t.Error("INVITE challenge without Proxy-Authenticate")
	}
}

func mustLine(t *testing.T, user, realm, pw string, alg Algorithm) string {
	t.Helper()
	l, err := CredentialLine(user, realm, pw, alg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// An INVITE forked to a registered contact: the callee sees the proxy's
// Via on top of the caller's, Max-Forwards decremented, the node's
// Record-Route and the contact as Request-URI; its 486 reaches the caller
// and the proxy ACKs it.
func TestProxyForwardsInvite(t *testing.T) {
	e := startProxyEnv(t, nil)
	callee := e.udpClient()
	wantCode(t, callee.do(msg{from: "<sip:bob@example.com>;tag=r", to: "<sip:bob@example.com>",
		hdrs: []string{"Contact: <sip:bob@" + callee.local() + ">"}}), 200)

	caller := e.udpClient()
	caller.sendRaw(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>", callID: "inv-1@test"}.text(caller.local(), "udp"))
	inv := callee.recvRequest(3 * time.Second)
	if inv == nil {
		t.Fatal("callee got no INVITE")
	}
	if inv.Method != sip.INVITE || inv.Recipient.String() != "sip:bob@"+callee.local() {
		t.Fatalf("callee got %s", inv.StartLine())
	}
	vias := inv.GetHeaders("Via")
	if len(vias) != 2 || !strings.Contains(vias[0].Value(), e.srv.Addr()) || !strings.Contains(vias[1].Value(), caller.local()) {
		t.Errorf("Vias %v", vias)
	}
	if mf := inv.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("Max-Forwards %v", mf)
	}
	if rr := inv.GetHeaders("Record-Route"); len(rr) != 1 || !strings.Contains(rr[0].Value(), "sip:"+e.srv.Addr()+";lr") {
		t.Errorf("Record-Route %v", rr)
	}
	busy := sip.NewResponseFromRequest(inv, 486, "Busy Here", nil)
	callee.sendRaw(busy.String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 || len(res.GetHeaders("Via")) != 1 {
		t.Fatalf("caller got %v", res)
	}
	if ack := callee.recvRequest(3 * time.Second); ack == nil || ack.Method != sip.ACK {
		t.Fatalf("callee got %v, want the proxy's ACK", ack)
	}
}

// Calls that end in a non-2xx answer leave no goroutine behind them once
// answered and ACKed: not the branch's, not the handler's, not sipgo's
// ACK goroutine (the handler takes the ACK).
func TestProxyNoGoroutineGrowth(t *testing.T) {
	e := startProxyEnv(t, nil)
	callee := e.udpClient()
	wantCode(t, callee.do(msg{from: "<sip:bob@example.com>;tag=r", to: "<sip:bob@example.com>",
		hdrs: []string{"Contact: <sip:bob@" + callee.local() + ">"}}), 200)
	caller := e.udpClient()
	call := func(i int) {
		t.Helper()
		via := fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK-growth-%d", caller.local(), i)
		callID := fmt.Sprintf("growth-%d@test", i)
		caller.sendRaw(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>", via: via, callID: callID}.text(caller.local(), "udp"))
		inv := callee.recvRequest(3 * time.Second)
		if inv == nil || inv.Method != sip.INVITE {
			t.Fatalf("call %d: callee got %v", i, inv)
		}
		callee.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
		res := caller.recvFinal(3 * time.Second)
		if res == nil || res.StatusCode != 486 {
			t.Fatalf("call %d: caller got %v", i, res)
		}
		tag, _ := res.To().Params.Get("tag")
		caller.sendRaw(msg{method: "ACK", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>;tag=" + tag, via: via,
			callID: callID, cseq: "1 ACK"}.text(caller.local(), "udp"))
		if ack := callee.recvRequest(3 * time.Second); ack == nil || ack.Method != sip.ACK {
			t.Fatalf("call %d: callee got %v, want ACK", i, ack)
		}
	}
	call(0) // warm up sipgo's pools
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	const calls = 40
	for i := 1; i <= calls; i++ {
		call(i)
	}
	var after int
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		if after = runtime.NumGoroutine(); after <= before+calls/10 {
			return
		}
	}
	t.Errorf("goroutines: %d before %d calls, %d after", before, calls, after)
}

func TestProxyIsSelfAndPop(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) { c.Advertise = "198.51.100.7:5060" })
	p := e.srv.front.(*proxy)
	for uri, want := range map[string]bool{
		"sip:" + e.srv.Addr() + ";lr":             true,
		"sip:198.51.100.7;lr":                     true,
		"sip:198.51.100.7:5060;lr;ob":             true,
		"sip:TOKEN@198.51.100.7:5060;lr;ob":       true,
		"sip:198.51.100.7:5061;lr":                false,
		"sip:198.51.100.8;lr":                     false,
		"sip:bob@198.51.100.7:5060;transport=tcp": true,
		"not a uri": false,
	} {
		if got := p.isSelf(uri); got != want {
			t.Errorf("isSelf(%q) = %v", uri, got)
		}
	}
	req := sip.NewRequest(sip.ACK, sip.Uri{Scheme: "sip", User: "bob", Host: "10.1.1.1"})
	req.AppendHeader(sip.NewHeader("Route", "<sip:198.51.100.7;lr>, <sip:TOKEN@198.51.100.7:5060;lr;ob>"))
	popped, flow := p.popOwnRoutes(req)
	if !popped || flow != "TOKEN" || len(routeSet(req)) != 0 {
		t.Errorf("popped %v, flow %q, left %q", popped, flow, routeSet(req))
	}
	// A token followed by another hop is not this node's to follow.
	req.AppendHeader(sip.NewHeader("Route", "<sip:TOKEN@198.51.100.7;lr>"))
	req.AppendHeader(sip.NewHeader("Route", "<sip:edge.example;lr>"))
	popped, flow = p.popOwnRoutes(req)
	if !popped || flow != "" || len(routeSet(req)) != 1 {
		t.Errorf("popped %v, flow %q, left %q", popped, flow, routeSet(req))
	}
}

// Overload control in proxy mode: a new REGISTER or INVITE read over UDP
// already too late is refused by the reader with a 503 and a
// Retry-After, before sipgo parses it (a retransmission gets the same
// answer, To tag included); the server's own OPTIONS and requests over
// TCP are not refused. Target and interval of a nanosecond make every
// UDP request late.
func TestProxyOverload(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) {
		c.Overload = Overload{Target: time.Nanosecond, Interval: time.Nanosecond, RetryAfterMin: 2, RetryAfterMax: 9}
	})
	c := e.udpClient()
	register := msg{hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}.text(c.local(), "udp")
	var tags []string
	for i := range 2 { // the REGISTER, then its retransmission
		c.sendRaw(register)
		res := c.recv(3 * time.Second)
		if res == nil {
			t.Fatalf("no answer to REGISTER %d", i)
		}
		wantCode(t, res, 503)
		ra := res.GetHeader("Retry-After")
		if ra == nil {
			t.Fatalf("503 without Retry-After:\n%s", res)
		}
		if n, err := strconv.Atoi(ra.Value()); err != nil || n < 2 || i == 0 && n > 9 {
			t.Errorf("Retry-After %q outside 2-9", ra.Value())
		}
		tag, _ := res.To().Params.Get("tag")
		tags = append(tags, tag)
	}
	if tags[0] == "" || tags[0] != tags[1] {
		t.Errorf("To tags %q: a retransmission must get the same answer", tags)
	}
	wantCode(t, c.do(msg{method: "INVITE", ruri: "sip:bob@example.com", hdrs: []string{"Contact: <sip:alice@192.0.2.1>"}}), 503)
	if n := e.srv.core.Stats.ShedQueueDelay.Load(); n != 3 {
		t.Errorf("%d refusals counted, want 3", n)
	}
	wantCode(t, c.do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr(), cseq: "1 OPTIONS"}), 200)
	tc := e.tcpClient()
	wantCode(t, tc.do(msg{hdrs: []string{"Contact: <sip:alice@192.0.2.3>"}}), 200)
	// Of alice's two REGISTERs only the one over TCP was stored.
	if b := e.live("sip:alice@example.com"); len(b) != 1 || b[0].URI != "sip:alice@192.0.2.3" {
		t.Errorf("alice's bindings %+v, want the TCP contact alone", b)
	}
}

// The proxy's handlers judge a new REGISTER or INVITE over UDP on its
// wait since it reached the host, as its reader noted it: one that waited
// past the limit is refused; one whose arrival is unknown (a stream, or
// not noted), and a request inside a dialog, are taken.
func TestProxyAdmitsOnArrival(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) {
		c.Overload = Overload{Target: 20 * time.Millisecond, Interval: 100 * time.Millisecond, RetryAfterMin: 1, RetryAfterMax: 4}
	})
	p := e.srv.front.(*proxy)
	if p.arrivals == nil {
		t.Fatal("no arrivals noted: receive timestamps off")
	}
	inbound := func(m msg, transport string) *core.Inbound {
		parsed, err := sip.ParseMessage([]byte(m.text("192.0.2.10:5062", transport)))
		if err != nil {
			t.Fatal(err)
		}
		return &core.Inbound{Req: parsed.(*sip.Request), Transport: transport, Arrived: time.Now()}
	}
	register := func(branch string) msg {
		return msg{via: "SIP/2.0/UDP 192.0.2.10:5062;branch=" + branch, hdrs: []string{"Contact: <sip:alice@192.0.2.10>"}}
	}
	p.arrivals.note("z9hG4bK-waited", time.Now().Add(-time.Second))
	p.arrivals.note("z9hG4bK-fresh", time.Now())
	if p.admitted(inbound(register("z9hG4bK-waited"), "udp")) {
		t.Error("a REGISTER that waited a second was taken")
	}
	if !p.admitted(inbound(register("z9hG4bK-fresh"), "udp")) {
		t.Error("a REGISTER that did not wait was refused")
	}
	if !p.admitted(inbound(register("z9hG4bK-unknown"), "udp")) {
		t.Error("a REGISTER of unknown arrival was refused")
	}
	bye := msg{method: "BYE", ruri: "sip:alice@192.0.2.10", cseq: "2 BYE", to: "<sip:alice@example.com>;tag=x",
		via: "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-bye"}
	p.arrivals.note("z9hG4bK-bye", time.Now().Add(-time.Second))
	if !p.admitted(inbound(bye, "udp")) {
		t.Error("a BYE was refused")
	}
}
