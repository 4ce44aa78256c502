package integration

import (
	be "encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestSTUNKeepalive: a STUN Binding request on the SIP UDP port (RFC 5626
// §4.4.2, a UDP flow's keepalive) gets a Binding success response with
// the same transaction ID whose XOR-MAPPED-ADDRESS is the address the
// request came from.
func TestSTUNKeepalive(t *testing.T) {
	n := StartNode(t, NodeOptions{ID: "stun", Args: []string{"--sip-mode", "registrar"}})
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
