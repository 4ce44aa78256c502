package sipfront

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The reader's batch of early answers reaches every destination intact
// and in order, past a full batch (an implicit flush) and from a
// dual-stack socket to an IPv4 client, where sendmmsg is handed a v4
// address on a v6 socket.
func TestUDPSendBatch(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", "[::]:0"} {
		t.Run(bind, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(bind)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fe := overloaded(t, memService(t))
			tr := newUDPTransport(fe, conn, 1)
			var clients [2]*net.UDPConn
			for i := range clients {
				if clients[i], err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
					t.Fatal(err)
				}
				defer clients[i].Close()
			}
			b := newUDPSendBatch(tr)
			const each = udpBatch + 5
			for i := range each {
				for c, cl := range clients {
					if err := b.send(fmt.Appendf(nil, "answer %d to %d", i, c), cl.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
						t.Fatal(err)
					}
				}
			}
			b.flush()
			buf := make([]byte, 100)
			for c, cl := range clients {
				cl.SetReadDeadline(time.Now().Add(5 * time.Second))
				for i := range each {
					n, err := cl.Read(buf)
					if err != nil {
						t.Fatalf("client %d, answer %d: %v", c, i, err)
					}
					if want := fmt.Sprintf("answer %d to %d", i, c); string(buf[:n]) != want {
						t.Fatalf("client %d got %q, want %q", c, buf[:n], want)
					}
				}
			}
		})
	}
}
