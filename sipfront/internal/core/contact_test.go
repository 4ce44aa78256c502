package core

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/locsvc/locsvc/locsvc"
)

func TestParseContacts(t *testing.T) {
	inst := "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
	tests := []struct {
		name     string
		values   []string
		outbound bool
		want     []locsvc.Contact
		wildcard bool
		err      string
	}{
		{name: "bare addr-spec", values: []string{"sip:alice@192.0.2.1:5060"},
			want: []locsvc.Contact{{URI: "sip:alice@192.0.2.1:5060"}}},
		{name: "addr-spec params are header params", values: []string{"sip:alice@192.0.2.1;expires=60;q=0.5"},
			want: []locsvc.Contact{{URI: "sip:alice@192.0.2.1", Expires: 60, HasExpires: true, Q: 0.5, HasQ: true}}},
		{name: "name-addr keeps URI params", values: []string{`"Alice, Desk" <sip:alice@192.0.2.1;transport=tcp;lr>;EXPIRES=30`},
			want: []locsvc.Contact{{URI: "sip:alice@192.0.2.1;transport=tcp;lr", Expires: 30, HasExpires: true}}},
		{name: "list and headers", values: []string{"<sip:a@h1>, Bob <sip:b@h2>;q=1", " <sip:c@h3> "},
			want: []locsvc.Contact{{URI: "sip:a@h1"}, {URI: "sip:b@h2", Q: 1, HasQ: true}, {URI: "sip:c@h3"}}},
		{name: "outbound", outbound: true, values: []string{`<sip:a@h1;ob>;+sip.instance="` + inst + `";reg-id=2`},
			want: []locsvc.Contact{{URI: "sip:a@h1;ob", Instance: inst, RegID: 2}}},
		{name: "reg-id ignored without outbound", values: []string{`<sip:a@h1>;+sip.instance="` + inst + `";reg-id=2`},
			want: []locsvc.Contact{{URI: "sip:a@h1", Instance: inst}}},
		{name: "reg-id ignored without instance", outbound: true, values: []string{`<sip:a@h1>;reg-id=2`},
			want: []locsvc.Contact{{URI: "sip:a@h1"}}},
		{name: "wildcard", values: []string{"*"}, wildcard: true},
		{name: "wildcard among contacts is the registrar's to refuse", values: []string{"*, <sip:a@h1>"},
			wildcard: true, want: []locsvc.Contact{{URI: "sip:a@h1"}}},
		{name: "huge expires", values: []string{"<sip:a@h1>;expires=99999999999999999999"},
			want: []locsvc.Contact{{URI: "sip:a@h1", Expires: math.MaxUint32, HasExpires: true}}},
		{name: "unknown params ignored", values: []string{`<sip:a@h1>;+sip.ice;methods="INVITE, BYE";x=y`},
			want: []locsvc.Contact{{URI: "sip:a@h1"}}},
		{name: "missing >", values: []string{"<sip:a@h1;expires=3"}, err: "missing '>'"},
		{name: "empty", values: []string{""}, err: "empty element"},
		{name: "empty element", values: []string{"<sip:a@h1>,,<sip:b@h2>"}, err: "empty element"},
		{name: "trailing comma", values: []string{"<sip:a@h1>, "}, err: "empty element"},
		{name: "unterminated quote", values: []string{`"Alice <sip:a@h1>`}, err: "unterminated"},
		{name: "empty URI", values: []string{"<>"}, err: "empty URI"},
		{name: "bad expires", values: []string{"<sip:a@h1>;expires=-1"}, err: "expires"},
		{name: "bad q", values: []string{"<sip:a@h1>;q=high"}, err: "q:"},
		{name: "exponent q", values: []string{"<sip:a@h1>;q=1e-1"}, err: "q:"},
		{name: "bad reg-id", outbound: true, values: []string{`<sip:a@h1>;+sip.instance="x";reg-id=0`}, err: "reg-id"},
		{name: "junk after >", values: []string{"<sip:a@h1> junk"}, err: "unexpected"},
		{name: "empty param name", values: []string{"<sip:a@h1>;=3"}, err: "empty parameter name"},
		{name: "nested <", values: []string{"<sip:a@<h1>>"}, err: "'<' inside <>"},
		{name: "bad display name", values: []string{"Al@ice <sip:a@h1>"}, err: "display name"},
		{name: "space in URI", values: []string{"<sip:a @h1>"}, err: "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wildcard, err := parseContacts(tt.values, tt.outbound)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if wildcard != tt.wildcard || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v wildcard=%v, want %+v wildcard=%v", got, wildcard, tt.want, tt.wildcard)
			}
		})
	}
}

func TestFormatQ(t *testing.T) {
	for q, want := range map[int]string{1000: "1", 0: "0", 500: "0.5", 125: "0.125", 10: "0.01", 999: "0.999"} {
		if got := formatQ(q); got != want {
			t.Errorf("formatQ(%d) = %q, want %q", q, got, want)
		}
	}
}

func TestWithRoute(t *testing.T) {
	tests := []struct {
		uri  string
		path []string
		want string
	}{
		{"sip:a@h1", nil, "sip:a@h1"},
		{"sip:a@h1;transport=tcp", []string{"sip:10.0.0.1:5060;lr"}, "sip:a@h1;transport=tcp?Route=%3Csip:10.0.0.1:5060%3Blr%3E"},
		{"sip:a@h1?X=1", []string{"sip:n1;lr;ob", "sip:e@edge"}, "sip:a@h1?X=1&Route=%3Csip:n1%3Blr%3Bob%3E%2C%3Csip:e%40edge%3E"},
		{"sip:a@h1", []string{"sip:[::1]:5060;lr"}, "sip:a@h1?Route=%3Csip:[::1]:5060%3Blr%3E"},
	}
	for _, tt := range tests {
		if got := withRoute(tt.uri, tt.path); got != tt.want {
			t.Errorf("withRoute(%q, %q) = %q, want %q", tt.uri, tt.path, got, tt.want)
		}
	}
}

func TestSanitizeReason(t *testing.T) {
	for in, want := range map[string]string{
		"ok":                     "ok",
		"a\r\nVia: x":            "a  Via: x",
		"CSeq 2 is not higher":   "CSEQ 2 is not higher",
		"":                       "Unknown",
		"bad \xff byte":          "bad ? byte",
		strings.Repeat("x", 300): strings.Repeat("x", 160),
	} {
		if got := sanitizeReason(in); got != want {
			t.Errorf("sanitizeReason(%q) = %q, want %q", in, got, want)
		}
	}
}
