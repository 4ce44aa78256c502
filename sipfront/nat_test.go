package sipfront

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// NAT keepalives in process: a phone behind NAT registered here gets an
// OPTIONS once per interval, from this node's SIP port; one that stops
// answering is removed after Misses; a phone not behind NAT gets none.
func TestNATPing(t *testing.T) {
	for _, mode := range []string{ModeRegistrar, ModeProxy} {
		t.Run(mode, func(t *testing.T) {
			e := startEnv(t, func(c *Config) {
				c.Mode = mode
				c.NodeID = "n1"
				c.NATPing = NATPing{Interval: time.Second, Misses: 2}
			})
			natted, direct := e.udpClient(), e.udpClient()
			wantCode(t, natted.do(msg{from: "<sip:nat@example.com>;tag=n", to: "<sip:nat@example.com>", callID: "nat@test",
				hdrs: []string{"Contact: <sip:nat@10.9.9.9:5060>"}}), 200)
			wantCode(t, direct.do(msg{from: "<sip:direct@example.com>;tag=d", to: "<sip:direct@example.com>", callID: "direct@test",
				hdrs: []string{"Contact: <sip:direct@" + direct.local() + ">"}}), 200)

			// Answer every ping for 3.5 s: about one a second.
			pings := 0
			deadline := time.Now().Add(3500 * time.Millisecond)
			for time.Now().Before(deadline) {
				req := natted.recvRequest(time.Until(deadline))
				if req == nil {
					break
				}
				if req.Method != sip.OPTIONS || req.Recipient.String() != "sip:nat@10.9.9.9:5060" {
					t.Fatalf("natted phone got %s %s", req.Method, req.Recipient.String())
				}
				if v := req.Via(); v == nil {
					t.Error("keepalive without Via")
				} else if br, _ := v.Params.Get("branch"); !strings.HasPrefix(br, natBranch) {
					t.Errorf("keepalive Via %v", v)
				}
				natted.sendRaw(sip.NewResponseFromRequest(req, 200, "OK", nil).String())
				pings++
			}
			if pings < 2 || pings > 5 {
				t.Errorf("%d pings in 3.5 s at one a second", pings)
			}
			if req := direct.recvRequest(100 * time.Millisecond); req != nil {
				t.Errorf("a phone not behind NAT got %s", req.Method)
			}
			st := e.srv.Stats()
			if st.NATPinged != 1 || st.NATAnswers < uint64(pings)-1 || st.NATUnbound != 0 {
				t.Errorf("stats: pinged %d, answers %d of %d, unbound %d", st.NATPinged, st.NATAnswers, pings, st.NATUnbound)
			}

			// It stops answering: gone after two misses (the third turn).
			waitFor(t, "the silent phone to be removed", func() bool { return len(e.live("sip:nat@example.com")) == 0 })
			if n := e.srv.Stats().NATUnbound; n != 1 {
				t.Errorf("NATUnbound %d", n)
			}
			if n := len(e.live("sip:direct@example.com")); n != 1 {
				t.Errorf("the direct phone's binding: %d", n)
			}
		})
	}
}

// The round spreads the pings of many phones evenly over the interval:
// no tick carries more than its share (rounded up).
func TestNATPingSpread(t *testing.T) {
	p := &natPinger{cfg: NATPing{Interval: 2 * time.Second}, entries: make(map[flowKey]*natEntry),
		waiting: make(map[uint64]flowKey)}
	const n = 300
	for i := range n {
		k := flowKey{aor: fmt.Sprintf("sip:u%d@x", i), id: "b"}
		p.entries[k] = &natEntry{}
		p.added = append(p.added, k)
	}
	ticks := int(2 * time.Second / natTick)
	seen := make(map[flowKey]int)
	for range 3 * ticks {
		due := p.due()
		if len(due) > n/ticks+1 {
			t.Fatalf("a tick carries %d pings, share %d", len(due), n/ticks)
		}
		for _, k := range due {
			seen[k]++
		}
	}
	for k, c := range seen {
		if c < 2 || c > 4 {
			t.Errorf("%v pinged %d times in three intervals", k, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d phones pinged", len(seen), n)
	}
}

// A phone that registers again (its NAT gave it a new mapping) starts
// afresh: what its old mapping missed counts no more, and the new one is
// pinged.
func TestNATPingReRegister(t *testing.T) {
	e := startEnv(t, func(c *Config) {
		c.NodeID = "n1"
		c.NATPing = NATPing{Interval: time.Second, Misses: 2}
	})
	register := func(c *udpClient, cseq string) {
		wantCode(t, c.do(msg{from: "<sip:roam@example.com>;tag=r", to: "<sip:roam@example.com>", callID: "roam@test",
			cseq: cseq + " REGISTER", hdrs: []string{"Contact: <sip:roam@10.9.9.9:5060>"}}), 200)
	}
	old := e.udpClient()
	register(old, "1")
	// Two pings go unanswered: one miss counted, the second ping waiting
	// for its answer when the phone registers again.
	for range 2 {
		if req := old.recvRequest(3 * time.Second); req == nil || req.Method != sip.OPTIONS {
			t.Fatalf("old mapping got %v", req)
		}
	}
	moved := e.udpClient()
	register(moved, "2")
	answered := 0
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		req := moved.recvRequest(time.Until(deadline))
		if req == nil {
			break
		}
		moved.sendRaw(sip.NewResponseFromRequest(req, 200, "OK", nil).String())
		answered++
	}
	if answered < 2 {
		t.Errorf("the new mapping got %d pings in 3.5 s", answered)
	}
	if n := len(e.live("sip:roam@example.com")); n != 1 || e.srv.Stats().NATUnbound != 0 {
		t.Errorf("%d bindings, %d removed: a phone that registered again was taken for gone", n, e.srv.Stats().NATUnbound)
	}
}
