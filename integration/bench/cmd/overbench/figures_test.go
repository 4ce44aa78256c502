package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
)

// The window ends between two of sipp's one-second rows: the counts are
// read in between.
func TestAtWindowEnd(t *testing.T) {
	rows := []sippout.Row{
		{"StartTime": 100, "CurrentTime": 100, "OutgoingCall(C)": 0, "SuccessfulCall(C)": 0},
		{"StartTime": 100, "CurrentTime": 101, "OutgoingCall(C)": 100, "SuccessfulCall(C)": 50},
		{"StartTime": 100, "CurrentTime": 102, "OutgoingCall(C)": 200, "SuccessfulCall(C)": 150},
		{"StartTime": 100, "CurrentTime": 103, "OutgoingCall(C)": 200, "SuccessfulCall(C)": 200},
	}
	offered, goodput := atWindowEnd(rows, 1.5)
	if math.Abs(offered-100) > 1e-9 || math.Abs(goodput-200.0/3) > 1e-9 {
		t.Errorf("offered %v, goodput %v; want 100, 66.7", offered, goodput)
	}
	// sipp ended before the window: its last row counts.
	offered, goodput = atWindowEnd(rows, 10)
	if math.Abs(offered-200.0/3) > 1e-9 || math.Abs(goodput-200.0/3) > 1e-9 {
		t.Errorf("short run: offered %v, goodput %v", offered, goodput)
	}
}

// One line per target that has a C, its points at the multiples sipp
// offered.
func TestFigure(t *testing.T) {
	res := &result{target: "locsvc", capacity: &step{rate: 1000, goodput: 990}}
	res.loads = []*step{{offered: 1500, goodput: 980}, {offered: 2900, goodput: 950}}
	none := &result{target: "kamailio", note: "not sustainable"}
	svg := figure([]*result{res, none}, config{loads: []float64{1.5, 3}})
	if n := strings.Count(svg, "<polyline"); n != 1 {
		t.Fatalf("%d lines, want 1:\n%s", n, svg)
	}
	if n := strings.Count(svg, "<circle"); n != 3 {
		t.Errorf("%d points, want 3", n)
	}
	if !strings.HasPrefix(svg, "<svg") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Error("not one svg element")
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 123456.4: "123,456", -2500: "-2,500"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// Timer F's 32 s hold 10 retransmissions: at 0.5, 1.5, 3.5, 7.5, then
// every 4 s up to 31.5 s.
func TestRetransmissionsWithin(t *testing.T) {
	if n := retransmissionsWithin(32 * time.Second); n != 10 {
		t.Errorf("%d retransmissions in 32 s, want 10", n)
	}
}
