package sipfront

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

func TestTxCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxCache(3, func() time.Time { return now })

	if _, _, fresh := c.begin("a"); !fresh {
		t.Fatal("first sight not fresh")
	}
	if resp, _, fresh := c.begin("a"); fresh || resp != nil {
		t.Fatal("pending entry not reported")
	}
	c.finish("a", []byte("200"), 200)
	if resp, code, fresh := c.begin("a"); fresh || string(resp) != "200" || code != 200 {
		t.Fatalf("final answer: %q %d %v", resp, code, fresh)
	}

	// abandon frees a pending key only.
	c.begin("b")
	c.abandon("b")
	if _, _, fresh := c.begin("b"); !fresh {
		t.Error("abandoned key still held")
	}
	c.abandon("a")
	if c.has("a") == false {
		t.Error("abandon dropped a final answer")
	}

	// Size bound: the oldest goes first.
	c.mark("c")
	c.mark("d")
	if c.len() != 3 || c.has("a") || !c.has("d") {
		t.Errorf("after overflow: len %d, a %v, d %v", c.len(), c.has("a"), c.has("d"))
	}

	// Sweep after the lifetime.
	now = now.Add(txLifetime - time.Second)
	c.mark("e")
	now = now.Add(2 * time.Second)
	c.sweep()
	if c.len() != 1 || !c.has("e") {
		t.Errorf("after sweep: len %d, e %v", c.len(), c.has("e"))
	}
}

func TestTxCacheFIFOCompacts(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxCache(100, func() time.Time { return now })
	for i := range 10000 {
		c.mark(fmt.Sprint(i))
	}
	if c.len() != 100 || len(c.fifo)-c.head != 100 || cap(c.fifo) > 4096 {
		t.Errorf("len %d, fifo %d (head %d, cap %d)", c.len(), len(c.fifo), c.head, cap(c.fifo))
	}
}

func TestTxKey(t *testing.T) {
	parse := func(s string) (*sip.Request, *sip.ViaHeader) {
		m, err := core.NewParser().ParseSIP([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		r := m.(*sip.Request)
		return r, core.TopVia(r)
	}
	inv, invVia := parse(msg{method: "INVITE", ruri: "sip:a@example.com", via: "SIP/2.0/UDP h:5060;branch=z9hG4bKabc"}.text("", "udp"))
	cancel, cancelVia := parse(msg{method: "CANCEL", ruri: "sip:a@example.com", via: "SIP/2.0/UDP h:5060;branch=z9hG4bKabc"}.text("", "udp"))
	if txKey(inv, invVia, sip.INVITE) != txKey(cancel, cancelVia, sip.INVITE) {
		t.Error("CANCEL does not find its INVITE")
	}
	if txKey(inv, invVia, sip.INVITE) == txKey(cancel, cancelVia, sip.CANCEL) {
		t.Error("CANCEL and INVITE share a key")
	}
	other, otherVia := parse(msg{method: "INVITE", ruri: "sip:a@example.com", via: "SIP/2.0/UDP h2:5060;branch=z9hG4bKabc"}.text("", "udp"))
	if txKey(inv, invVia, sip.INVITE) == txKey(other, otherVia, sip.INVITE) {
		t.Error("same branch from another sent-by shares a key")
	}
	// RFC 2543 branches fall back to the dialog identifiers.
	old1, v1 := parse(msg{via: "SIP/2.0/UDP h:5060;branch=1", cseq: "1 REGISTER"}.text("", "udp"))
	old2, v2 := parse(msg{via: "SIP/2.0/UDP h:5060;branch=1", cseq: "2 REGISTER"}.text("", "udp"))
	if txKey(old1, v1, sip.REGISTER) == txKey(old2, v2, sip.REGISTER) {
		t.Error("RFC 2543 requests with different CSeq share a key")
	}
	// The sent-by's host compares without case, and the key the early
	// refusal builds from a scan's bytes is the parsed request's.
	upper, upperVia := parse(msg{method: "INVITE", ruri: "sip:a@example.com", via: "SIP/2.0/UDP H:5060;branch=z9hG4bKabc"}.text("", "udp"))
	if txKey(inv, invVia, sip.INVITE) != txKey(upper, upperVia, sip.INVITE) {
		t.Error("a host in capitals gives another key")
	}
	scanned := appendTxKeyRFC3261(nil, []byte("z9hG4bKabc"), []byte("H"), 5060, sip.INVITE)
	if string(scanned) != txKey(inv, invVia, sip.INVITE) {
		t.Errorf("key from bytes %q, from the parsed request %q", scanned, txKey(inv, invVia, sip.INVITE))
	}
	c := newTxCache(8, time.Now)
	c.mark(txKey(inv, invVia, sip.INVITE))
	if !c.hasBytes(scanned) {
		t.Error("hasBytes misses a marked key")
	}
	if n := testing.AllocsPerRun(100, func() {
		var kb [160]byte
		c.hasBytes(appendTxKeyRFC3261(kb[:0], []byte("z9hG4bKabc"), []byte("H"), 5060, sip.INVITE))
	}); n != 0 {
		t.Errorf("%v allocations per lookup from bytes, want 0", n)
	}
}
