package sipfront

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/locsvc"
)

func TestForkGroups(t *testing.T) {
	ts := []target{{uri: "a", q: 500}, {uri: "b", q: 1000}, {uri: "c", q: 500}, {uri: "d", q: 0}, {uri: "e", q: 1000}}
	var got [][]string
	for _, g := range forkGroups(ts) {
		var uris []string
		for _, t := range g {
			uris = append(uris, t.uri)
		}
		got = append(got, uris)
	}
	want := [][]string{{"b", "e"}, {"a", "c"}, {"d"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	if g := forkGroups(nil); len(g) != 0 {
		t.Errorf("no targets: %v", g)
	}
}

func TestTargetFor(t *testing.T) {
	const self = "sip:10.0.0.1:5060;lr"
	isSelf := func(u string) bool { return strings.Contains(u, "10.0.0.1:5060;lr") }
	tests := []struct {
		name string
		b    locsvc.Binding
		want target
	}{
		{"no path: the contact",
			locsvc.Binding{URI: "sip:a@192.0.2.1:5070", Q: 1000, Received: "192.0.2.1:40000", Transport: "udp"},
			target{uri: "sip:a@192.0.2.1:5070", q: 1000}},
		{"home here, no token: the contact",
			locsvc.Binding{URI: "sip:a@192.0.2.1:5070", Path: []string{self}, Received: "192.0.2.1:40000", Transport: "udp"},
			target{uri: "sip:a@192.0.2.1:5070"}},
		{"home here, a flow token: the flow",
			locsvc.Binding{URI: "sip:a@10.1.1.1:5070", Path: []string{"sip:TOK@10.0.0.1:5060;lr"}, Received: "203.0.113.9:1024", Transport: "udp"},
			target{uri: "sip:a@10.1.1.1:5070", flow: "TOK"}},
		{"home here, outbound entry",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:TOK@10.0.0.1:5060;lr;ob"}, Transport: "tcp", RegID: 1},
			target{uri: "sip:a@10.1.1.1", flow: "TOK"}},
		{"home here, an edge proxy behind: route via the edge",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:TOK@10.0.0.1:5060;lr", "sip:edge;lr"}, Received: "203.0.113.9:1024", Transport: "udp"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:edge;lr"}}},
		{"home elsewhere: route via the home node, token and all",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:TOK@10.0.0.2:5060;lr"}, Received: "203.0.113.9:1024", Transport: "udp"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:TOK@10.0.0.2:5060;lr"}}},
		{"home gone: straight to the flow its token names",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:TOK@10.0.0.2:5060;lr"}, Node: "gone"},
			target{uri: "sip:a@10.1.1.1", flow: "TOK"}},
		{"home gone, no token: still routed there",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:10.0.0.2:5060;lr"}, Node: "gone"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:10.0.0.2:5060;lr"}}},
		{"home elsewhere behind an edge",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:10.0.0.2:5060;lr", "sip:edge;lr"}, Received: "203.0.113.9:1024"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:10.0.0.2:5060;lr", "sip:edge;lr"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := targetFor(&tt.b, isSelf, func(node string) bool { return node == "gone" })
			if got.route == nil {
				got.route = []string{}
			}
			if tt.want.route == nil {
				tt.want.route = []string{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// The flows of one outbound instance make one target, most recent first,
// the others its alternatives; other bindings stay targets of their own.
func TestTargetsForInstanceFlows(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	bs := []locsvc.Binding{
		{URI: "sip:flow1", Instance: "<urn:uuid:A>", RegID: 1, Updated: at(1), Q: 1000},
		{URI: "sip:plain", Updated: at(5), Q: 1000},
		{URI: "sip:flow2", Instance: "<URN:UUID:a>", RegID: 2, Updated: at(3), Q: 1000},
		{URI: "sip:other", Instance: "<urn:uuid:B>", RegID: 1, Updated: at(2), Q: 500},
		{URI: "sip:noreg", Instance: "<urn:uuid:A>", Updated: at(0), Q: 1000},
	}
	got := targetsFor(bs, func(string) bool { return false }, func(string) bool { return false })
	var desc []string
	for _, t := range got {
		d := t.uri
		for _, a := range t.alts {
			d += "|" + a.uri
		}
		desc = append(desc, d)
	}
	want := []string{"sip:plain", "sip:flow2|sip:flow1", "sip:other", "sip:noreg"}
	if !reflect.DeepEqual(desc, want) {
		t.Errorf("targets %v, want %v", desc, want)
	}
}

func TestBestFinal(t *testing.T) {
	tests := []struct {
		codes []int
		want  int
	}{
		{nil, -1},
		{[]int{486}, 0},
		{[]int{486, 302, 503}, 1},
		{[]int{503, 404, 480}, 1},
		{[]int{404, 603, 302}, 1},
		{[]int{480, 486}, 0},
	}
	for _, tt := range tests {
		if got := bestFinal(tt.codes); got != tt.want {
			t.Errorf("bestFinal(%v) = %d, want %d", tt.codes, got, tt.want)
		}
	}
	if c, _ := noAnswerCode(1); c != 408 {
		t.Errorf("timeouts: %d", c)
	}
	if c, _ := noAnswerCode(0); c != 480 {
		t.Errorf("unreachable: %d", c)
	}
}

func TestURIHostPort(t *testing.T) {
	for _, tc := range []struct{ uri, hp, tp string }{
		{"sip:a@192.0.2.1", "192.0.2.1:5060", ""},
		{"sip:a@192.0.2.1:5070;transport=TCP", "192.0.2.1:5070", "tcp"},
		{"sips:a@example.com", "example.com:5061", ""},
		{"sip:[2001:db8::1]:5062;lr", "[2001:db8::1]:5062", ""},
	} {
		hp, tp, err := uriHostPort(tc.uri)
		if err != nil || hp != tc.hp || tp != tc.tp {
			t.Errorf("uriHostPort(%q) = %q %q %v", tc.uri, hp, tp, err)
		}
	}
}
