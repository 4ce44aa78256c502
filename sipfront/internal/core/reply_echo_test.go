package core

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// The fast path of echoable never accepts what the slow one refuses, and
// it takes the everyday forms.
func TestEchoableFastPathAgrees(t *testing.T) {
	for _, tc := range []struct {
		from  string
		plain bool // want the fast path to take it
	}{
		{"<sip:alice@example.com>;tag=1928301774", true},
		{"sip:alice@example.com;tag=a", true},
		{"<sip:+15551234567@10.0.0.1:5060;user=phone>;tag=x-y_z", true},
		{"<sips:bob@example.org>", true},
		{"<sip:example.com>;tag=1", true},
		{`"Alice" <sip:alice@example.com>;tag=1`, false},
		{"Alice <sip:alice@example.com>;tag=1", false},
		{"<sip:alice@[2001:db8::1]>;tag=1", false},
		{"<sip:alice:secret@example.com>;tag=1", false},
		{"<sip:alice@example.com?subject=x>;tag=1", false},
		{"<tel:+15551234567>;tag=1", false},
		{"<sip:al%20ice@example.com>;tag=1", true},
		{"<sip:alice@example.com;lr>;tag", true},
		{"<sip:@example.com>;tag=1", true},
	} {
		msg := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n" +
			"From: " + tc.from + "\r\nTo: " + tc.from + "\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
		m, err := NewParser().ParseSIP([]byte(msg))
		if err != nil {
			if tc.plain {
				t.Errorf("%q: %v", tc.from, err)
			}
			continue // sipgo refuses it before any answer is built
		}
		req := m.(*sip.Request)
		for _, h := range []sip.Header{req.From(), req.To()} {
			if h == nil {
				continue
			}
			var plain bool
			switch h := h.(type) {
			case *sip.FromHeader:
				plain = plainAddress(h.DisplayName, &h.Address, h.Params)
			case *sip.ToHeader:
				plain = plainAddress(h.DisplayName, &h.Address, h.Params)
			}
			if plain && !reparses(h) {
				t.Errorf("%q: fast path accepts what does not parse back (%q)", tc.from, h.Value())
			}
			if plain != tc.plain {
				t.Errorf("%q: fast path %v, want %v", tc.from, plain, tc.plain)
			}
		}
	}
}

// A wildcard URI, which sipgo's address parser reads but its message
// parser refuses in From and To, is never echoed.
func TestWildcardNotEchoed(t *testing.T) {
	from := &sip.FromHeader{Params: sip.NewParams()}
	if _, err := sip.ParseAddressValue("sip:*>", &from.Address, &from.Params); err != nil {
		t.Fatalf("sipgo no longer reads it (the test needs another case): %v", err)
	}
	if echoable(from) {
		t.Errorf("%q is echoed", from.Value())
	}
}
