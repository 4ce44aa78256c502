package node_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/node"
)

// TestNATTakeover: a phone behind NAT registered at node a is pinged by
// a alone; once a has left for good, b, which holds the phone's record and
// finds it by walking its shard, pings it instead. (A restart leaves the
// ring as it was, so nothing is taken over until a is back, or its grace
// ends: see natWalks.)
func TestNATTakeover(t *testing.T) {
	mcA, mcB := integration.StartMemcached(t), integration.StartMemcached(t)
	cfg := func(id, shard string) node.Config {
		c := testConfig(id, shard)
		c.SIP, c.SIPMode, c.Domains, c.RegisterRate = "127.0.0.1:0", "proxy", []string{"localhost"}, 0
		c.NATPing, c.RepairInterval = time.Second, time.Minute
		return c
	}
	b := start(t, cfg("b", mcB.Addr))
	cfgA := cfg("a", mcA.Addr)
	cfgA.Join, cfgA.LeaveOnStop = []string{b.GossipAddr()}, true
	a := start(t, cfgA)
	integration.WaitFor(t, 10*time.Second, "both shards healthy on both nodes", func() bool {
		return healthyShards(a) == 2 && healthyShards(b) == 2
	})

	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	send := func(to, text string) {
		ua, _ := net.ResolveUDPAddr("udp", to)
		if _, err := phone.WriteToUDP([]byte(text), ua); err != nil {
			t.Fatal(err)
		}
	}
	send(a.SIPAddr(), fmt.Sprintf("REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-nat-reg;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:ivy@localhost>;tag=i\r\nTo: <sip:ivy@localhost>\r\nCall-ID: nat-takeover@ivy\r\n"+
		"CSeq: 1 REGISTER\r\nContact: <sip:ivy@10.5.5.5:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n", phone.LocalAddr()))
	// pingedBy answers pings until one comes from want, and fails on one
	// from anybody else.
	pingedBy := func(want, other string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		buf := make([]byte, 65535)
		for time.Now().Before(deadline) {
			phone.SetReadDeadline(deadline)
			n, src, err := phone.ReadFromUDP(buf)
			if err != nil {
				break
			}
			m, err := sip.ParseMessage(buf[:n])
			req, ok := m.(*sip.Request)
			if err != nil || !ok || req.Method != sip.OPTIONS {
				continue // the REGISTER's 200
			}
			send(src.String(), sip.NewResponseFromRequest(req, 200, "OK", nil).String())
			switch {
			case src.String() == want && req.Via().Host+":"+fmt.Sprint(req.Via().Port) == want:
				return
			case src.String() == other:
				t.Fatalf("pinged by %s, which is not the phone's pinger now", other)
			}
		}
		t.Fatalf("no ping from %s within %v", want, within)
	}
	pingedBy(a.SIPAddr(), b.SIPAddr(), 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a.Stop(ctx)
	pingedBy(b.SIPAddr(), a.SIPAddr(), 15*time.Second)
}
