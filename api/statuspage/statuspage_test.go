package statuspage

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

func TestStatusPageArcs(t *testing.T) {
	third := 1.0 / 3
	cases := []struct {
		name   string
		shares []float64
		want   []arc
	}{
		{"no shards", nil, []arc{}},
		{"one shard owns everything", []float64{1}, []arc{{0, 1}}},
		{"one shard with a partial share still closes the ring", []float64{0.3}, []arc{{0, 1}}},
		{"equal thirds", []float64{third, third, third}, []arc{{0, third}, {third, 2 * third}, {2 * third, 1}}},
		{"a shard that owns nothing gets an empty arc in place", []float64{0.5, 0, 0.5}, []arc{{0, 0.5}, {0.5, 0.5}, {0.5, 1}}},
		{"nothing owned: all empty", []float64{0, 0, 0}, []arc{{0, 0}, {0, 0}, {0, 0}}},
		{"shares summing to 2 are scaled", []float64{1, 1}, []arc{{0, 0.5}, {0.5, 1}}},
		{"shares summing below 1 are scaled", []float64{0.1, 0.3}, []arc{{0, 0.25}, {0.25, 1}}},
		{"bad numbers own nothing", []float64{math.NaN(), 1, -1, math.Inf(1), math.Inf(-1)},
			[]arc{{0, 0}, {0, 1}, {1, 1}, {1, 1}, {1, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ownershipArcs(c.shares)
			if len(got) != len(c.want) {
				t.Fatalf("got %d arcs, want %d", len(got), len(c.want))
			}
			for i := range got {
				if math.Abs(got[i].Start-c.want[i].Start) > 1e-12 || math.Abs(got[i].End-c.want[i].End) > 1e-12 {
					t.Errorf("arc %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// Whatever the shares, arcs are contiguous, ordered, and the ring closes
// at exactly 1 (no hairline gap at 12 o'clock).
func TestStatusPageArcsClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		shares := make([]float64, 1+rng.IntN(70))
		for i := range shares {
			if rng.IntN(4) > 0 {
				shares[i] = rng.Float64()
			}
		}
		arcs := ownershipArcs(shares)
		pos, last := 0.0, 0.0
		for i, a := range arcs {
			if a.Start != pos || a.End < a.Start {
				t.Fatalf("shares %v: arc %d %+v does not follow %v", shares, i, a, pos)
			}
			pos = a.End
			if a.len() > 0 {
				last = a.End
			}
		}
		var any bool
		for _, s := range shares {
			any = any || s > 0
		}
		if any && last != 1 {
			t.Fatalf("shares %v: ring ends at %v, not 1", shares, last)
		}
	}
}

func TestStatusPageGaps(t *testing.T) {
	cases := []struct {
		name string
		in   []arc
		want []arc
	}{
		{"a lone arc keeps its ends", []arc{{0, 1}}, []arc{{0, 1}}},
		{"a lone arc among empty ones too", []arc{{0, 0}, {0, 1}, {1, 1}}, []arc{{0, 0}, {0, 1}, {1, 1}}},
		{"neighbours move apart", []arc{{0, 0.5}, {0.5, 1}}, []arc{{0.01, 0.49}, {0.51, 0.99}}},
		{"a sliver keeps its length", []arc{{0, 0.03}, {0.03, 1}}, []arc{{0, 0.03}, {0.04, 0.99}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := withGaps(c.in, 0.01)
			for i := range got {
				if math.Abs(got[i].Start-c.want[i].Start) > 1e-12 || math.Abs(got[i].End-c.want[i].End) > 1e-12 {
					t.Errorf("arc %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestStatusPageArcPath(t *testing.T) {
	cases := []struct {
		name string
		a    arc
		want string
	}{
		{"empty", arc{0.5, 0.5}, ""},
		{"backwards", arc{0.5, 0.4}, ""},
		{"NaN", arc{0, math.NaN()}, ""},
		{"first quarter", arc{0, 0.25}, "M 100.00 0.00 A 100.00 100.00 0 0 1 200.00 100.00"},
		{"half from the right", arc{0.25, 0.75}, "M 200.00 100.00 A 100.00 100.00 0 0 1 0.00 100.00"},
		{"three quarters takes the large arc", arc{0, 0.75}, "M 100.00 0.00 A 100.00 100.00 0 1 1 0.00 100.00"},
		{"whole circle is two halves", arc{0, 1},
			"M 100.00 0.00 A 100.00 100.00 0 1 1 100.00 200.00 A 100.00 100.00 0 1 1 100.00 0.00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := arcPath(c.a, 100, 100, 100); got != c.want {
				t.Errorf("arcPath(%+v) = %q, want %q", c.a, got, c.want)
			}
		})
	}
}

func TestStatusPageLeaders(t *testing.T) {
	for _, c := range []struct {
		m    float64
		a    arc
		want float64
	}{
		{0.5, arc{0.25, 0.75}, 0.5},   // marker over its arc
		{0.9, arc{0.25, 0.75}, 0.75},  // past the end
		{0.1, arc{0.25, 0.75}, 0.25},  // before the start
		{0.95, arc{0.1, 0.3}, 0.1},    // nearer across 12 o'clock
		{0.05, arc{0.7, 0.9}, 0.9},    // the same the other way
		{0.5, arc{0.25, 0.25}, 0.25},  // an empty arc is a point
		{0.6, arc{0.1, 0.55}, 0.55},   // the end, not the start behind
		{0.02, arc{0.1, 0.98}, 0.98},  // the end is nearer, across 12
		{0.99, arc{0.02, 0.97}, 0.97}, // nearer end
	} {
		if got := nearestTurn(c.m, c.a); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("nearestTurn(%v, %+v) = %v, want %v", c.m, c.a, got, c.want)
		}
	}
	for _, c := range []struct{ a, b, want float64 }{{0, 0.5, 0.5}, {0.1, 0.9, 0.2}, {0.9, 0.1, 0.2}, {0.25, 0.25, 0}, {0, 1, 0}} {
		if got := turnDistance(c.a, c.b); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("turnDistance(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	// Over its arc: straight in. Off it: in, round clockwise, in.
	if got, want := leaderPath(0.25, arc{0, 0.5}, 0, 0, 30, 20, 10), "M 30.00 0.00 L 10.00 0.00"; got != want {
		t.Errorf("straight leader %q, want %q", got, want)
	}
	if got, want := leaderPath(0, arc{0.25, 0.5}, 0, 0, 30, 20, 10),
		"M 0.00 -30.00 L 0.00 -20.00 A 20.00 20.00 0 0 1 20.00 0.00 L 10.00 0.00"; got != want {
		t.Errorf("clockwise leader %q, want %q", got, want)
	}
	if got := leaderPath(0.5, arc{0, 0.25}, 0, 0, 30, 20, 10); !strings.Contains(got, " 0 0 0 ") {
		t.Errorf("leader back to the arc should run anticlockwise: %q", got)
	}
}

func TestStatusPageLayout(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want float64
	}{{0, 0, 0}, {0, 1, 0.5}, {0, 2, 0.25}, {1, 2, 0.75}, {2, 4, 0.625}} {
		if got := markerTurn(c.i, c.n); got != c.want {
			t.Errorf("markerTurn(%d, %d) = %v, want %v", c.i, c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		turn float64
		want string
	}{{0, "middle"}, {0.5, "middle"}, {0.25, "start"}, {0.75, "end"}, {0.1, "start"}, {0.9, "end"}, {0.98, "middle"}} {
		if got := labelAnchor(c.turn); got != c.want {
			t.Errorf("labelAnchor(%v) = %q, want %q", c.turn, got, c.want)
		}
	}
	// Top labels sit above their point, bottom labels below, side labels
	// straddle it.
	if a, b := labelBaselines(100, 0); !(b < 100) || b-a != 14 {
		t.Errorf("top label baselines %v, %v", a, b)
	}
	if a, _ := labelBaselines(100, 0.5); !(a > 100) {
		t.Errorf("bottom label first baseline %v", a)
	}
	if a, b := labelBaselines(100, 0.25); !(a < 100 && b > 100) {
		t.Errorf("side label baselines %v, %v", a, b)
	}
	// Markers never overlap on their orbit.
	for _, n := range []int{1, 3, 10, 64, 500} {
		r := markerRadius(n)
		if r > markerMax || (n > 1 && 2*r >= 2*math.Pi*markerOrbit/float64(n)) {
			t.Errorf("markerRadius(%d) = %v overlaps", n, r)
		}
	}
	if got := truncate("node-with-a-very-long-name", 10); got != "node-with…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("ünïcödé", 7); got != "ünïcödé" {
		t.Errorf("truncate = %q", got)
	}
}

func TestStatusPageShardState(t *testing.T) {
	members := map[string]*locsvcv1.Member{
		"up":      {NodeId: "up", State: "active", Alive: true},
		"joining": {NodeId: "joining", State: "joining", Alive: true},
		"leaving": {NodeId: "leaving", State: "leaving", Alive: true},
		"dead":    {NodeId: "dead", State: "active", Alive: false},
		"away":    {NodeId: "away", State: "restarting", Alive: false},
	}
	for _, c := range []struct {
		node    string
		healthy bool
		want    string
		color   string
	}{
		{"up", true, shardHealthy, StatusColorHealthy},
		{"joining", true, shardHealthy, StatusColorHealthy},
		{"up", false, shardUnhealthy, StatusColorUnhealthy},
		{"unknown", false, shardUnhealthy, StatusColorUnhealthy},
		{"leaving", false, shardLeaving, StatusColorGone},
		{"dead", true, shardDead, StatusColorGone},
		{"away", true, shardRestarting, StatusColorHealthy},
		{"away", false, shardUnhealthy, StatusColorUnhealthy},
	} {
		got := shardState(&locsvcv1.Shard{NodeId: c.node, Healthy: c.healthy}, members)
		if got != c.want || stateColor(got) != c.color {
			t.Errorf("shard of %s (healthy %v): %s %s, want %s %s", c.node, c.healthy, got, stateColor(got), c.want, c.color)
		}
	}
}

// element is one parsed element of the page.
type element struct {
	name  string
	attrs map[string]string
}

// parseStrict reads the page as XML, failing on anything malformed, and
// returns its elements and text.
func parseStrict(t *testing.T, page []byte) ([]element, string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	var els []element
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v\n%s", err, page)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			els = append(els, e)
		case xml.CharData:
			text.Write(tok)
		}
	}
	return els, text.String()
}

func shardElements(els []element) []element {
	var out []element
	for _, e := range els {
		if e.name == "g" && e.attrs["class"] == "shard" {
			out = append(out, e)
		}
	}
	return out
}

func TestStatusPageEscapesHostileNames(t *testing.T) {
	const evil = `<script>alert("x")</script>&'"]]>`
	st := &locsvcv1.StatusResponse{
		NodeId: evil, Version: "v<b>1</b>", Store: "memcached", Replicas: 2, StartedAt: timestamppb.Now(),
		Members: []*locsvcv1.Member{
			{NodeId: evil, State: "active", Alive: true, HttpAddr: `127.0.0.1:1/"><script>x</script>`},
			{NodeId: "n2", State: "leaving", Alive: true},
		},
		Shards: []*locsvcv1.Shard{
			{Id: evil + "-shard", Addr: "127.0.0.1:11211", NodeId: evil, Healthy: true, Ownership: 1},
			{Id: "s2", Addr: "127.0.0.1:11212", NodeId: "n2", Healthy: false},
		},
		Repair: &locsvcv1.Repair{Passes: 3, KeysCopied: 10, LastPassAt: timestamppb.Now()},
	}
	page, err := Render(st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(page, []byte("<script")) || bytes.Contains(page, []byte("<b>")) {
		t.Fatalf("operator input reached the page unescaped:\n%s", page)
	}
	els, text := parseStrict(t, page)
	if !strings.Contains(text, evil) {
		t.Errorf("the node ID should still be shown, as text")
	}
	shards := shardElements(els)
	if len(shards) != 2 {
		t.Fatalf("%d shard elements, want 2", len(shards))
	}
	if got := shards[0].attrs["data-node"]; got != evil {
		t.Errorf("data-node = %q, want %q", got, evil)
	}
	if shards[0].attrs["data-state"] != "healthy" || shards[1].attrs["data-state"] != "leaving" ||
		shards[1].attrs["data-healthy"] != "false" || shards[0].attrs["data-ownership"] != "1.000000" {
		t.Errorf("shard attributes: %v, %v", shards[0].attrs, shards[1].attrs)
	}
	for _, e := range els {
		if e.name == "a" && !strings.HasPrefix(e.attrs["href"], "//127.0.0.1:1/") {
			t.Errorf("member link %q", e.attrs["href"])
		}
	}
}
