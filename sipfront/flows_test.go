package sipfront

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/flowtoken"
	"github.com/locsvc/locsvc/locsvc"
)

// RFC 5626 flows in proxy mode, in process: flow tokens in the Path
// entry, one flow of an instance at a time, the next when it fails, and
// tokens nobody can forge.

const instanceA = `"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"`

// registerFlow registers bob's instance A over c with reg-id id.
func registerFlow(t *testing.T, c *tcpClient, id string) {
	t.Helper()
	res := c.do(msg{from: "<sip:bob@example.com>;tag=r" + id, to: "<sip:bob@example.com>", callID: "flow-" + id + "@test",
		hdrs: []string{"Supported: outbound, path", "Contact: <sip:bob-" + id + "@192.0.2.9;transport=tcp>;+sip.instance=" + instanceA + ";reg-id=" + id}})
	wantCode(t, res, 200)
	if v := values(res, "Require"); len(v) != 1 || v[0] != "outbound" {
		t.Errorf("Require %q", v)
	}
}

// recvInvite reads requests off c until an INVITE; nil when none comes.
func (c *tcpClient) recvInvite(d time.Duration) *sip.Request {
	c.t.Helper()
	for {
		m := c.recvMsg(d)
		if m == nil {
			return nil
		}
		if req, ok := m.(*sip.Request); ok && req.Method == sip.INVITE {
			return req
		}
	}
}

func TestProxyInstanceFlows(t *testing.T) {
	e := startProxyEnv(t, nil)
	flow1, flow2 := e.tcpClient(), e.tcpClient()
	registerFlow(t, flow1, "1")
	time.Sleep(10 * time.Millisecond) // flow 2 is the newer
	registerFlow(t, flow2, "2")
	bs := e.live("sip:bob@example.com")
	if len(bs) != 2 {
		t.Fatalf("bindings %+v", bs)
	}
	for _, b := range bs {
		if len(b.Path) != 1 || !strings.HasSuffix(b.Path[0], ";lr;ob") || userOf(b.Path[0]) == "" {
			t.Errorf("Path %q: want this node with a flow token and ;ob", b.Path)
		}
	}

	// One flow at a time: the newest.
	caller := e.udpClient()
	call := func(callID string) {
		caller.sendRaw(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>", callID: callID}.text(caller.local(), "udp"))
	}
	call("flows-1@test")
	inv := flow2.recvInvite(3 * time.Second)
	if inv == nil || !strings.Contains(inv.Recipient.String(), "bob-2") {
		t.Fatalf("flow 2 got %v", inv)
	}
	if other := flow1.recvInvite(300 * time.Millisecond); other != nil {
		t.Fatalf("flow 1 got the INVITE too: the instance was forked to twice")
	}
	flow2.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}

	// Flow 2's connection closes: the call goes to flow 1 instead.
	flow2.conn.Close()
	waitFor(t, "flow 2 to leave the table", func() bool { return e.srv.conns.len() == 1 })
	call("flows-2@test")
	inv = flow1.recvInvite(3 * time.Second)
	if inv == nil || !strings.Contains(inv.Recipient.String(), "bob-1") {
		t.Fatalf("flow 1 got %v", inv)
	}
	flow1.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}
}

// A request that comes home by a flow token: a forged token is refused
// (403), a genuine one for a connection that has closed gets 430, one
// for a live connection reaches it.
func TestProxyFlowTokenRoute(t *testing.T) {
	e := startProxyEnv(t, nil)
	phone := e.tcpClient()
	registerFlow(t, phone, "1")
	b := e.live("sip:bob@example.com")
	if len(b) != 1 {
		t.Fatalf("bindings %+v", b)
	}
	good := b[0].Path[0]
	tok := userOf(good)
	forged := strings.Replace(good, tok, tok[:len(tok)-2]+"AA", 1)
	closed, err := e.srv.cfg.flows.Encode(flowtoken.Flow{Transport: "tcp", Remote: netip.MustParseAddrPort(phone.local()), Conn: 9999})
	if err != nil {
		t.Fatal(err)
	}
	other := e.udpClient()
	routed := func(route string) *sip.Response {
		other.sendRaw(msg{method: "INVITE", ruri: "sip:bob-1@192.0.2.9;transport=tcp", to: "<sip:bob@example.com>",
			callID: "routed-" + route + "@test", hdrs: []string{"Route: <" + route + ">"}}.text(other.local(), "udp"))
		return other.recvFinal(3 * time.Second)
	}
	if res := routed(forged); res == nil || res.StatusCode != 403 {
		t.Errorf("forged token: %v, want 403", res)
	}
	if res := routed("sip:" + closed + "@" + e.srv.Addr() + ";lr;ob"); res == nil || res.StatusCode != 430 {
		t.Errorf("token of a closed connection: %v, want 430", res)
	}
	other.sendRaw(msg{method: "INVITE", ruri: "sip:bob-1@192.0.2.9;transport=tcp", to: "<sip:bob@example.com>",
		callID: "routed-good@test", hdrs: []string{"Route: <" + good + ">"}}.text(other.local(), "udp"))
	inv := phone.recvInvite(3 * time.Second)
	if inv == nil {
		t.Fatal("the phone got nothing by its genuine token")
	}
	phone.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := other.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}
}

// A connection's flows end with it: the bindings only it reaches are
// removed from the store (every node stops using them), in both front
// ends; a plain TCP binding (no reg-id) stays, and so does a flow
// registered again over another connection.
func TestFlowClosedUnbinds(t *testing.T) {
	for _, mode := range []string{ModeProxy, ModeRegistrar} {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, func(c *Config) { c.Mode = mode; c.WSAddr = "127.0.0.1:0" })
			ws := e.wsClient()
			wantCode(t, ws.do(msg{from: "<sip:bob@example.com>;tag=w", to: "<sip:bob@example.com>", callID: "ws@test",
				hdrs: []string{"Contact: <sip:bob-ws@" + wsHost + ";transport=ws>"}}), 200)
			flow := e.tcpClient()
			registerFlow(t, flow, "1")
			plain := e.tcpClient()
			wantCode(t, plain.do(msg{from: "<sip:bob@example.com>;tag=p", to: "<sip:bob@example.com>", callID: "plain@test",
				hdrs: []string{"Contact: <sip:bob-plain@192.0.2.9;transport=tcp>"}}), 200)
			if n := len(e.live("sip:bob@example.com")); n != 3 {
				t.Fatalf("%d bindings, want 3", n)
			}
			ws.c.CloseNow()
			flow.conn.Close()
			plain.conn.Close()
			waitFor(t, "the flows' bindings to be removed", func() bool { return len(e.live("sip:bob@example.com")) == 1 })
			if b := e.live("sip:bob@example.com"); b[0].URI != "sip:bob-plain@192.0.2.9;transport=tcp" {
				t.Errorf("left %+v, want the plain TCP binding", b)
			}
			if n := e.srv.Stats().FlowsUnbound; n != 2 {
				t.Errorf("FlowsUnbound %d, want 2", n)
			}

			// The phone comes back on a new connection before the old one
			// is seen closed: its new registration is kept.
			old, fresh := e.tcpClient(), e.tcpClient()
			res := old.do(msg{from: "<sip:carol@example.com>;tag=o", to: "<sip:carol@example.com>", callID: "carol@test", cseq: "1 REGISTER",
				hdrs: []string{"Supported: outbound", "Contact: <sip:carol@192.0.2.9;transport=tcp>;+sip.instance=" + instanceA + ";reg-id=1"}})
			wantCode(t, res, 200)
			res = fresh.do(msg{from: "<sip:carol@example.com>;tag=o", to: "<sip:carol@example.com>", callID: "carol@test", cseq: "2 REGISTER",
				hdrs: []string{"Supported: outbound", "Contact: <sip:carol@192.0.2.9;transport=tcp>;+sip.instance=" + instanceA + ";reg-id=1"}})
			wantCode(t, res, 200)
			old.conn.Close()
			waitFor(t, "the old connection to be gone", func() bool { return e.srv.conns.len() == 1 })
			time.Sleep(100 * time.Millisecond)
			if n := len(e.live("sip:carol@example.com")); n != 1 {
				t.Errorf("carol has %d bindings after her old connection closed, want 1", n)
			}
		})
	}
}

// goneHome is Peers for a farm whose node A has left: its phones are B's.
type goneHome struct{}

func (goneHome) Pinger(aor, home string) string {
	if home == "A" {
		return "B"
	}
	return home
}

// When a phone's home node is gone, another node opens the flow token of
// its Path entry (the farm shares the key) and reaches a phone behind NAT
// at its address directly.
func TestProxyHomeGone(t *testing.T) {
	store := locsvc.NewMemStore(nil, 0)
	t.Cleanup(func() { store.Close() })
	key := []byte("a farm's flow key, 32 bytes long")
	node := func(name string, peers Peers) *env {
		svc, err := locsvc.NewService(store, testLimits(), name)
		if err != nil {
			t.Fatal(err)
		}
		return startEnvWith(t, svc, store, func(c *Config) { c.Mode, c.FlowKey, c.Peers = ModeProxy, key, peers })
	}
	a, b := node("A", nil), node("B", goneHome{})
	phone := a.udpClient()
	wantCode(t, phone.do(msg{from: "<sip:hal@example.com>;tag=h", to: "<sip:hal@example.com>",
		hdrs: []string{"Contact: <sip:hal@10.7.7.7:5060>"}}), 200)
	a.srv.Close()
	caller := b.udpClient()
	caller.sendRaw(msg{method: "INVITE", ruri: "sip:hal@example.com", to: "<sip:hal@example.com>", callID: "home-gone@test"}.text(caller.local(), "udp"))
	inv := phone.recvRequest(3 * time.Second)
	if inv == nil || inv.Method != sip.INVITE {
		t.Fatalf("the phone got %v", inv)
	}
	if vias := inv.GetHeaders("Via"); len(vias) != 2 || !strings.Contains(vias[0].Value(), b.srv.Addr()) {
		t.Errorf("Vias %v: want B's on the caller's, A skipped", vias)
	}
	// The phone answers where the request came from: B.
	phone.srv, _ = net.ResolveUDPAddr("udp", b.srv.Addr())
	phone.sendRaw(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}
}
