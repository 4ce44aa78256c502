package integration

import (
	"context"
	be "encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestKeepalives: in the stateless front end (registrar mode) and in
// proxy mode (sipgo's transports behind locsvc's sockets), a double CRLF
// over TCP and over WebSocket gets a CRLF back, and a STUN Binding
// request on the SIP UDP port gets its Binding response (RFC 5626 §4.4).
func TestKeepalives(t *testing.T) {
	for _, mode := range []string{"registrar", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			ws := FreeAddr(t)
			n := StartNode(t, NodeOptions{ID: "keepalive-" + mode, Args: []string{"--sip-mode", mode, "--sip-ws", ws}})
			stunKeepalive(t, n)

			c, err := net.Dial("tcp", n.SIP)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			pong := make([]byte, 16)
			if k, err := c.Read(pong); err != nil || string(pong[:k]) != "\r\n" {
				t.Errorf("TCP: %q, %v; want a CRLF", pong[:k], err)
			}

			u := dialWS(t, ws)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := u.c.Write(ctx, websocket.MessageText, []byte("\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if _, b, err := u.c.Read(ctx); err != nil || string(b) != "\r\n" {
				t.Errorf("WebSocket: %q, %v; want a CRLF", b, err)
			}
			// The connections still carry SIP after their keep-alives.
			if res := u.exchange(u.request("OPTIONS", "", 1, "")); res.StatusCode != 200 {
				t.Errorf("OPTIONS over ws after a keep-alive: %d", res.StatusCode)
			}
		})
	}
}

// stunKeepalive: a STUN Binding request on the SIP UDP port (RFC 5626
// §4.4.2, a UDP flow's keepalive) gets a Binding success response with
// the same transaction ID whose XOR-MAPPED-ADDRESS is the address the
// request came from.
func stunKeepalive(t *testing.T, n *Node) {
	t.Helper()
	conn, err := net.Dial("udp", n.SIP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := make([]byte, 20)
	be.BigEndian.PutUint16(req[0:2], 0x0001)
	be.BigEndian.PutUint32(req[4:8], 0x2112A442)
	copy(req[8:20], "locsvc-stun!")
	var res []byte
	WaitFor(t, 10*time.Second, "a Binding response", func() bool {
		_, _ = conn.Write(req)
		buf := make([]byte, 1500)
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, err := conn.Read(buf)
		res = buf[:k]
		return err == nil
	})
	if len(res) != 32 || be.BigEndian.Uint16(res[0:2]) != 0x0101 || string(res[8:20]) != "locsvc-stun!" {
		t.Fatalf("response %x", res)
	}
	if be.BigEndian.Uint16(res[20:22]) != 0x0020 || res[25] != 0x01 {
		t.Fatalf("attribute %x, want XOR-MAPPED-ADDRESS of an IPv4 address", res[20:])
	}
	port := be.BigEndian.Uint16(res[26:28]) ^ 0x2112
	var ip [4]byte
	for i := range ip {
		ip[i] = res[28+i] ^ res[4+i]
	}
	want := netip.MustParseAddrPort(conn.LocalAddr().String())
	if got := netip.AddrPortFrom(netip.AddrFrom4(ip), port); got != want {
		t.Errorf("XOR-MAPPED-ADDRESS %v, want %v (the request's source)", got, want)
	}
}
