package siphead

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func request(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\nbody")
}

var register = request(
	"REGISTER sip:example.com SIP/2.0",
	"Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-1;rport",
	"Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-0",
	"Max-Forwards: 70",
	"From: <sip:alice@example.com>;tag=f1",
	"To: <sip:alice@example.com>",
	"Call-ID: c1@192.0.2.1",
	"CSeq: 7 REGISTER",
	"Content-Length: 4",
)

func TestScan(t *testing.T) {
	cases := []struct {
		name  string
		msg   []byte
		ok    bool
		check func(t *testing.T, h Head)
	}{
		{"register", register, true, func(t *testing.T, h Head) {
			if string(h.Method) != "REGISTER" || len(h.Vias) != 2 || string(h.Host) != "192.0.2.1" || h.Port != 5062 ||
				string(h.Branch) != "z9hG4bK-1" || !h.Rport || h.ToTag || h.OC || string(h.CSeq) != "7 REGISTER" {
				t.Errorf("%+v", h)
			}
		}},
		{"compact forms, two Vias on a line, IPv6, oc", request(
			"INVITE sip:bob@example.com SIP/2.0",
			`v: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK-2;oc;oc-algo="loss,rate" , SIP/2.0/UDP 192.0.2.9`,
			"f: Alice <sip:alice@example.com>;tag=x",
			"t: sip:bob@example.com",
			"i: c2",
			"CSeq: 1 INVITE",
		), true, func(t *testing.T, h Head) {
			if string(h.Host) != "2001:db8::1" || h.Port != 5070 || !h.OC || string(h.TopRest) != "SIP/2.0/UDP 192.0.2.9" ||
				string(h.Transport) != "TCP" || h.ToTag {
				t.Errorf("%+v", h)
			}
		}},
		{"in a dialog", request(
			"INVITE sip:bob@192.0.2.4 SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-3",
			"From: <sip:alice@example.com>;tag=f1",
			"To: <sip:bob@example.com>;TAG=t9",
			"Call-ID: c3",
			"CSeq: 2 INVITE",
		), true, func(t *testing.T, h Head) {
			if !h.ToTag {
				t.Error("a To tag in capitals not seen")
			}
		}},
		{"a response", request("SIP/2.0 200 OK", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-4"), false, nil},
		{"folded header", request(
			"REGISTER sip:example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1",
			" ;branch=z9hG4bK-5",
			"From: <sip:a@example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c", "CSeq: 1 REGISTER",
		), false, nil},
		{"no Call-ID", request(
			"REGISTER sip:example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-6",
			"From: <sip:a@example.com>;tag=1", "To: <sip:a@example.com>", "CSeq: 1 REGISTER",
		), false, nil},
		{"two From", request(
			"REGISTER sip:example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-7",
			"From: <sip:a@example.com>;tag=1", "From: <sip:b@example.com>;tag=2",
			"To: <sip:a@example.com>", "Call-ID: c", "CSeq: 1 REGISTER",
		), false, nil},
		{"bad port", request(
			"REGISTER sip:example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1:99999;branch=z9hG4bK-8",
			"From: <sip:a@example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c", "CSeq: 1 REGISTER",
		), false, nil},
		{"not SIP/2.0", request(
			"REGISTER sip:example.com SIP/3.0",
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-9",
			"From: <sip:a@example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c", "CSeq: 1 REGISTER",
		), false, nil},
		{"unclosed quote in the Via", request(
			"REGISTER sip:example.com SIP/2.0",
			`Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-10;x="a`,
			"From: <sip:a@example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c", "CSeq: 1 REGISTER",
		), false, nil},
		{"a quote in a bare To URI", request(
			"INVITE sip:b@example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-11",
			"From: sip:a@example.com;tag=1", `To: sip:"b@example.com`, "Call-ID: c", "CSeq: 1 INVITE",
		), false, nil},
		{"a space in a bracketed From URI", request(
			"REGISTER sip:example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-12",
			"From: <sip:a @example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c", "CSeq: 1 REGISTER",
		), false, nil},
		{"no end of headers", []byte("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK"), false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, ok := Scan(c.msg)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if ok && c.check != nil {
				c.check(t, h)
			}
		})
	}
}

// The refusal is what sipgo, standing for the client, reads back as the
// answer to its request: the same Vias (the top one with received and
// rport), From, Call-ID and CSeq, a To tag, and the Retry-After.
func TestRefusal(t *testing.T) {
	h, ok := Scan(register)
	if !ok {
		t.Fatal("not scanned")
	}
	src := netip.MustParseAddrPort("203.0.113.5:40000")
	b := h.Refusal(nil, src, 3, []byte("tg1"), "")
	m, err := sip.ParseMessage(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	res := m.(*sip.Response)
	if res.StatusCode != 503 {
		t.Fatalf("status %d", res.StatusCode)
	}
	via := res.Via()
	if r, _ := via.Params.Get("received"); r != "203.0.113.5" {
		t.Errorf("received %q", r)
	}
	if r, _ := via.Params.Get("rport"); r != "40000" {
		t.Errorf("rport %q", r)
	}
	if br, _ := via.Params.Get("branch"); br != "z9hG4bK-1" || via.Port != 5062 {
		t.Errorf("top Via %s", via)
	}
	if n := len(res.GetHeaders("Via")); n != 2 {
		t.Errorf("%d Vias", n)
	}
	if tag, _ := res.To().Params.Get("tag"); tag != "tg1" {
		t.Errorf("To %s", res.To())
	}
	if res.CallID().Value() != "c1@192.0.2.1" || res.CSeq().Value() != "7 REGISTER" {
		t.Errorf("Call-ID %s CSeq %s", res.CallID(), res.CSeq())
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "3" {
		t.Errorf("Retry-After %v", ra)
	}

	oc, _ := Scan(request(
		"INVITE sip:bob@example.com SIP/2.0",
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;oc",
		"From: <sip:a@example.com>;tag=1", "To: <sip:b@example.com>", "Call-ID: c", "CSeq: 1 INVITE",
	))
	b = oc.Refusal(nil, netip.MustParseAddrPort("192.0.2.1:5060"), 2, []byte("t"), `20;oc-algo="loss";oc-validity=500;oc-seq=1`)
	if !strings.Contains(string(b), "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;oc=20;oc-algo=\"loss\";oc-validity=500;oc-seq=1\r\n") {
		t.Errorf("oc parameters not on the top Via:\n%s", b)
	}
	if _, err := sip.ParseMessage(b); err != nil {
		t.Errorf("%v\n%s", err, b)
	}
}

func BenchmarkScanRefusal(b *testing.B) {
	src := netip.MustParseAddrPort("203.0.113.5:40000")
	buf := make([]byte, 0, 1024)
	var h Head
	b.ReportAllocs()
	for b.Loop() {
		if !h.Scan(register) {
			b.Fatal("not scanned")
		}
		buf = h.Refusal(buf[:0], src, 3, []byte("tg1"), "")
	}
}

// FuzzScan: Scan never panics, and for a request sipgo reads too, the
// refusal parses and answers the same transaction.
func FuzzScan(f *testing.F) {
	f.Add(register)
	f.Add(request("INVITE sip:b@example.com SIP/2.0", `v: SIP/2.0/TCP [::1]:5;branch=z9hG4bK;oc="a,b",SIP/2.0/UDP x`,
		"f: <sip:a@x>;tag=1", "t: b <sip:b@x>", "i: 1", "CSeq: 1 INVITE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := Scan(b)
		if !ok {
			return
		}
		req, err := sip.ParseMessage(b)
		if err != nil {
			return
		}
		if _, isReq := req.(*sip.Request); !isReq {
			t.Fatalf("scanned a response:\n%q", b)
		}
		out := h.Refusal(nil, netip.MustParseAddrPort("192.0.2.1:5060"), 1, []byte("t"), "")
		m, err := sip.ParseMessage(out)
		if err != nil {
			return // the client's own headers, echoed: not ours to fix
		}
		res, isRes := m.(*sip.Response)
		if !isRes || res.StatusCode != 503 {
			t.Fatalf("not a 503:\n%q", out)
		}
	})
}

// sentFrom: the text of the address is the usual case; another spelling
// of the same address still counts, a name or another address does not.
func TestSentFrom(t *testing.T) {
	for _, c := range []struct {
		host, ip string
		want     bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"2001:db8::1", "2001:db8::1", true},
		{"2001:DB8:0::1", "2001:db8::1", true},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"pc.example.com", "192.0.2.1", false},
		{"", "192.0.2.1", false},
	} {
		if got := sentFrom([]byte(c.host), netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("sentFrom(%q, %s) = %v, want %v", c.host, c.ip, got, c.want)
		}
	}
}
