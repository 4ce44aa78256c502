package sipfront

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/locsvc"
)

// Proxy mode over WebSocket, in process: a browser-style UA registers on
// its connection, is called over it, and calls out over it.

// recvMessage reads the next SIP message off the connection, skipping
// keep-alive pongs.
func (c *wsClient) recvMessage() sip.Message {
	c.t.Helper()
	for {
		_, b, err := c.read()
		if err != nil {
			c.t.Fatalf("nothing read: %v", err)
		}
		if string(b) == "\r\n" {
			continue
		}
		m, err := sip.ParseMessage(b)
		if err != nil {
			c.t.Fatalf("unparseable message (%v): %q", err, b)
		}
		return m
	}
}

func (c *wsClient) send(text string) { c.t.Helper(); c.write(websocket.MessageText, text) }

func TestProxyWebSocketCall(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) { c.WSAddr = "127.0.0.1:0" })
	bob := e.wsClient()
	contact := "sip:bob-ws@" + wsHost + ";transport=ws"
	res := bob.do(msg{from: "<sip:bob@example.com>;tag=r", to: "<sip:bob@example.com>",
		hdrs: []string{"Contact: <" + contact + ">"}})
	wantCode(t, res, 200)
	if b := e.live("sip:bob@example.com"); len(b) != 1 || b[0].Transport != "ws" {
		t.Fatalf("stored %+v", b)
	}

	// A caller over UDP reaches bob on his connection: the INVITE comes
	// with this node's Via naming WS and a Record-Route per side.
	caller := e.udpClient()
	caller.sendRaw(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>", callID: "ws-inv-1@test"}.text(caller.local(), "udp"))
	m := bob.recvMessage()
	inv, ok := m.(*sip.Request)
	if !ok || inv.Method != sip.INVITE || inv.Recipient.String() != contact {
		t.Fatalf("bob got %v", m)
	}
	if v := inv.Via(); v == nil || v.Transport != "WS" {
		t.Errorf("top Via %v, want the node's over WS", v)
	}
	rr := inv.GetHeaders("Record-Route")
	if len(rr) != 2 || !strings.Contains(rr[0].Value(), "transport=ws") || strings.Contains(rr[1].Value(), "transport") {
		t.Errorf("Record-Route %v, want the WS side then the UDP side", rr)
	}
	bob.send(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}
	if ack, ok := bob.recvMessage().(*sip.Request); !ok || ack.Method != sip.ACK {
		t.Fatalf("bob got %v, want the proxy's ACK", ack)
	}

	// bob calls a UDP user: the answer comes back on his connection.
	carol := e.udpClient()
	wantCode(t, carol.do(msg{from: "<sip:carol@example.com>;tag=c", to: "<sip:carol@example.com>",
		hdrs: []string{"Contact: <sip:carol@" + carol.local() + ">"}}), 200)
	bob.send(msg{method: "INVITE", ruri: "sip:carol@example.com", from: "<sip:bob@example.com>;tag=b",
		to: "<sip:carol@example.com>", callID: "ws-inv-2@test"}.text(wsHost, "ws"))
	inv2 := carol.recvRequest(3 * time.Second)
	if inv2 == nil || inv2.Method != sip.INVITE {
		t.Fatalf("carol got %v", inv2)
	}
	carol.sendRaw(sip.NewResponseFromRequest(inv2, 603, "Decline", nil).String())
	for {
		m := bob.recvMessage()
		if r, ok := m.(*sip.Response); ok && r.StatusCode >= 200 {
			if r.StatusCode != 603 {
				t.Fatalf("bob got %d", r.StatusCode)
			}
			break
		}
	}
	// The connection is a flow in the table while it lasts.
	if n := e.srv.conns.len(); n != 1 {
		t.Errorf("%d connections in the table, want 1", n)
	}
	bob.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the connection to leave the table", func() bool { return e.srv.conns.len() == 0 })
}

// A WebSocket peer is reached only on its connection: once it is gone,
// the call to it fails without the node dialling anything.
func TestProxyWebSocketGone(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) { c.WSAddr = "127.0.0.1:0" })
	bob := e.wsClient()
	wantCode(t, bob.do(msg{from: "<sip:bob@example.com>;tag=r", to: "<sip:bob@example.com>",
		hdrs: []string{"Contact: <sip:bob-ws@" + wsHost + ";transport=ws>"}}), 200)
	bob.c.CloseNow()
	waitFor(t, "the connection to leave the table", func() bool { return e.srv.conns.len() == 0 })
	caller := e.udpClient()
	caller.sendRaw(msg{method: "INVITE", ruri: "sip:bob@example.com", to: "<sip:bob@example.com>", callID: "ws-gone@test"}.text(caller.local(), "udp"))
	res := caller.recvFinal(3 * time.Second)
	if res == nil || res.StatusCode < 400 {
		t.Fatalf("caller got %v, want a failure", res)
	}
}

// Keep-alives (RFC 5626 §4.4) in proxy mode: a double CRLF gets a CRLF
// over TCP and WebSocket, a STUN Binding request on the UDP port gets its
// response naming the source address.
func TestProxyKeepAlives(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) { c.WSAddr = "127.0.0.1:0" })
	tc := e.tcpClient()
	tc.sendRaw("\r\n\r\n")
	tc.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	pong := make([]byte, 8)
	if n, err := tc.conn.Read(pong); err != nil || string(pong[:n]) != "\r\n" {
		t.Errorf("TCP pong %q, %v", pong[:n], err)
	}
	// The connection still carries SIP afterwards.
	wantCode(t, tc.do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr()}), 200)

	ws := e.wsClient()
	ws.send("\r\n\r\n")
	if _, b, err := ws.read(); err != nil || string(b) != "\r\n" {
		t.Errorf("WebSocket pong %q, %v", b, err)
	}
	wantCode(t, ws.do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr()}), 200)

	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:2], 0x0001)
	binary.BigEndian.PutUint32(req[4:8], 0x2112A442)
	copy(req[8:], "transaction!")
	srv, _ := net.ResolveUDPAddr("udp", e.srv.Addr())
	if _, err := u.WriteToUDP(req, srv); err != nil {
		t.Fatal(err)
	}
	u.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, err := u.Read(buf)
	if err != nil || n < 32 || binary.BigEndian.Uint16(buf[0:2]) != 0x0101 || string(buf[8:20]) != "transaction!" {
		t.Fatalf("STUN answer %x, %v", buf[:n], err)
	}
	port := binary.BigEndian.Uint16(buf[26:28]) ^ 0x2112
	var ip [4]byte
	binary.BigEndian.PutUint32(ip[:], binary.BigEndian.Uint32(buf[28:32])^0x2112A442)
	got := netip.AddrPortFrom(netip.AddrFrom4(ip), port)
	if got != netip.MustParseAddrPort(u.LocalAddr().String()) {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want %v", got, u.LocalAddr())
	}
}

// A WebSocket message without Content-Length (optional over WebSocket)
// gets one before sipgo's stream parser sees it; a wrong one is refused.
func TestStreamFramed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"OPTIONS sip:x SIP/2.0\r\nVia: v\r\n\r\n", "OPTIONS sip:x SIP/2.0\r\nVia: v\r\nContent-Length: 0\r\n\r\n"},
		{"MESSAGE sip:x SIP/2.0\r\nVia: v\r\n\r\nhello", "MESSAGE sip:x SIP/2.0\r\nVia: v\r\nContent-Length: 5\r\n\r\nhello"},
		{"MESSAGE sip:x SIP/2.0\r\nl: 5\r\n\r\nhello", "MESSAGE sip:x SIP/2.0\r\nl: 5\r\n\r\nhello"},
		{"MESSAGE sip:x SIP/2.0\r\ncontent-length :  2\r\n\r\nhi", "MESSAGE sip:x SIP/2.0\r\ncontent-length :  2\r\n\r\nhi"},
		{"MESSAGE sip:x SIP/2.0\r\nContent-Length: 9\r\n\r\nhello", ""},
		{"MESSAGE sip:x SIP/2.0\r\nContent-Length: x\r\n\r\n", ""},
		{"OPTIONS sip:x SIP/2.0\r\nVia: v\r\n", ""},
	} {
		got, err := streamFramed([]byte(tc.in))
		if string(got) != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("streamFramed(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Two proxy nodes over one store, as a farm: a WebSocket phone registers
// at A; a call through B goes home to A, which sends it on the phone's
// connection.
func TestProxyFarmWebSocket(t *testing.T) {
	store := locsvc.NewMemStore(nil, 0)
	t.Cleanup(func() { store.Close() })
	key := []byte("a farm's flow key, 32 bytes long")
	node := func(name string, ws bool) *env {
		svc, err := locsvc.NewService(store, testLimits(), name)
		if err != nil {
			t.Fatal(err)
		}
		return startEnvWith(t, svc, store, func(c *Config) {
			c.Mode, c.FlowKey = ModeProxy, key
			if ws {
				c.WSAddr = "127.0.0.1:0"
			}
		})
	}
	a, b := node("A", true), node("B", true)
	alice := a.wsClient()
	wantCode(t, alice.do(msg{from: "<sip:alice@example.com>;tag=a", to: "<sip:alice@example.com>",
		hdrs: []string{"Supported: outbound", "Contact: <sip:alice-ws@" + wsHost + `;transport=ws>;+sip.instance="<urn:uuid:a>";reg-id=1`}}), 200)
	caller := b.udpClient()
	caller.sendRaw(msg{method: "INVITE", ruri: "sip:alice@example.com", to: "<sip:alice@example.com>", callID: "farm-ws@test"}.text(caller.local(), "udp"))
	inv, ok := alice.recvMessage().(*sip.Request)
	if !ok || inv.Method != sip.INVITE {
		t.Fatalf("alice got %v", inv)
	}
	if n := len(inv.GetHeaders("Via")); n != 3 {
		t.Errorf("%d Vias, want caller, B, A", n)
	}
	alice.send(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	if res := caller.recvFinal(3 * time.Second); res == nil || res.StatusCode != 486 {
		t.Fatalf("caller got %v", res)
	}
	alice.recvMessage() // A's ACK

	// A caller on a WebSocket of its own, at B.
	bob := b.wsClient()
	bob.send(msg{method: "INVITE", ruri: "sip:alice@example.com", from: "<sip:bob@example.com>;tag=b",
		to: "<sip:alice@example.com>", callID: "farm-ws-2@test"}.text(wsHost, "ws"))
	inv, ok = alice.recvMessage().(*sip.Request)
	if !ok || inv.Method != sip.INVITE {
		t.Fatalf("alice got %v", inv)
	}
	alice.send(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String())
	for {
		if r, ok := bob.recvMessage().(*sip.Response); ok && r.StatusCode >= 200 {
			if r.StatusCode != 486 {
				t.Fatalf("bob got %d", r.StatusCode)
			}
			break
		}
	}
}

// MaxTCPConns bounds each listener apart: WebSocket connections do not
// use up the TCP listener's.
func TestProxyConnBoundPerListener(t *testing.T) {
	e := startProxyEnv(t, func(c *Config) { c.WSAddr, c.MaxTCPConns = "127.0.0.1:0", 2 })
	ws1, ws2 := e.wsClient(), e.wsClient()
	wantCode(t, ws1.do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr()}), 200)
	wantCode(t, ws2.do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr()}), 200)
	for i := range 2 {
		if res := e.tcpClient().do(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr()}); res.StatusCode != 200 {
			t.Fatalf("TCP connection %d: %d", i, res.StatusCode)
		}
	}
	third := e.tcpClient()
	third.sendRaw(msg{method: "OPTIONS", ruri: "sip:" + e.srv.Addr()}.text(third.local(), "tcp"))
	if res := third.recv(time.Second); res != nil {
		t.Errorf("a third TCP connection was served: %d", res.StatusCode)
	}
}
