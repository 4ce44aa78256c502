package sipfront

import (
	"reflect"
	"testing"

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
	isSelf := func(u string) bool { return u == self || u == self+";ob" }
	tests := []struct {
		name string
		b    locsvc.Binding
		want target
	}{
		{"no path: the contact",
			locsvc.Binding{URI: "sip:a@192.0.2.1:5070", Q: 1000, Received: "192.0.2.1:40000", Transport: "udp"},
			target{uri: "sip:a@192.0.2.1:5070", q: 1000}},
		{"home here, same IP over UDP: the contact",
			locsvc.Binding{URI: "sip:a@192.0.2.1:5070", Path: []string{self}, Received: "192.0.2.1:40000", Transport: "udp"},
			target{uri: "sip:a@192.0.2.1:5070", route: []string{}}},
		{"home here, behind NAT: the received address",
			locsvc.Binding{URI: "sip:a@10.1.1.1:5070", Path: []string{self}, Received: "203.0.113.9:1024", Transport: "udp"},
			target{uri: "sip:a@10.1.1.1:5070", route: []string{}, dest: "203.0.113.9:1024", transport: "udp"}},
		{"home here, TCP flow: the connection",
			locsvc.Binding{URI: "sip:a@192.0.2.1:5070;transport=tcp", Path: []string{self}, Received: "192.0.2.1:50000", Transport: "tcp"},
			target{uri: "sip:a@192.0.2.1:5070;transport=tcp", route: []string{}, dest: "192.0.2.1:50000", transport: "tcp"}},
		{"home here, outbound entry",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{self + ";ob"}, Received: "203.0.113.9:1024", Transport: "udp", RegID: 1},
			target{uri: "sip:a@10.1.1.1", route: []string{}, dest: "203.0.113.9:1024", transport: "udp"}},
		{"home here, an edge proxy behind: route via the edge",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{self, "sip:edge;lr"}, Received: "203.0.113.9:1024", Transport: "udp"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:edge;lr"}}},
		{"home elsewhere: route via the home node",
			locsvc.Binding{URI: "sip:a@192.0.2.1:5070", Path: []string{"sip:10.0.0.2:5060;lr"}, Received: "192.0.2.1:40000", Transport: "udp"},
			target{uri: "sip:a@192.0.2.1:5070", route: []string{"sip:10.0.0.2:5060;lr"}}},
		{"home elsewhere, behind NAT: the home node learns the address",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:10.0.0.2:5060;lr"}, Received: "203.0.113.9:1024", Transport: "udp"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:10.0.0.2:5060;lr;locsvc-dst=udp:203.0.113.9:1024"}}},
		{"home elsewhere behind an edge: no address",
			locsvc.Binding{URI: "sip:a@10.1.1.1", Path: []string{"sip:10.0.0.2:5060;lr", "sip:edge;lr"}, Received: "203.0.113.9:1024"},
			target{uri: "sip:a@10.1.1.1", route: []string{"sip:10.0.0.2:5060;lr", "sip:edge;lr"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := targetFor(&tt.b, isSelf)
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

func TestDstParam(t *testing.T) {
	for _, tc := range []struct{ uri, tp, addr string }{
		{withDst("sip:h;lr", "udp", "203.0.113.9:1024"), "udp", "203.0.113.9:1024"},
		{withDst("sip:h;lr?x=y", "TCP", "[2001:db8::1]:5060"), "tcp", "[2001:db8::1]:5060"},
	} {
		tp, addr, ok := dstOf(tc.uri)
		if !ok || tp != tc.tp || addr != tc.addr {
			t.Errorf("dstOf(%q) = %q %q %v", tc.uri, tp, addr, ok)
		}
	}
	for _, bad := range []string{"sip:h;lr", "sip:h;locsvc-dst=sctp:1.2.3.4:5", "sip:h;locsvc-dst=udp:nohost", "sip:h;locsvc-dst"} {
		if _, _, ok := dstOf(bad); ok {
			t.Errorf("dstOf(%q) accepted", bad)
		}
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
