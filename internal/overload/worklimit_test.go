package overload

import (
	"testing"
	"time"
)

// The bound on work in hand is the ceiling until the server refuses
// something, Work from the window after, and the ceiling again once a
// second's windows have passed without a refusal.
func TestWorkLimitHoldsWhileOverloaded(t *testing.T) {
	ctl := New(Config{Target: 20 * ms, Interval: 100 * ms, RetryMin: 1, RetryMax: 4, Work: 128, MaxWork: 1024})
	if got := ctl.WorkLimit(); got != 1024 {
		t.Fatalf("at the start: %d, want the ceiling", got)
	}
	start := time.Unix(1000, 0)
	at := start
	window := func(refusals int) {
		t.Helper()
		for range refusals {
			ctl.Appoint(at, 0)
		}
		at = at.Add(101 * ms)
		ctl.Admit(at, 0, 0, 0) // closes the window
	}
	window(0)
	window(0)
	if got := ctl.WorkLimit(); got != 1024 {
		t.Fatalf("no refusal yet: %d, want the ceiling", got)
	}
	window(1)
	for i := range overloadedWindows - 1 {
		if got := ctl.WorkLimit(); got != 128 {
			t.Fatalf("%d windows after a refusal: %d, want 128", i, got)
		}
		window(0)
	}
	window(0)
	if got := ctl.WorkLimit(); got != 1024 {
		t.Fatalf("a second without refusals: %d, want the ceiling", got)
	}
}

func TestWorkBound(t *testing.T) {
	cases := []struct {
		cfg        Config
		overloaded bool
		want       int
	}{
		{Config{Work: 128, MaxWork: 1024}, false, 1024},
		{Config{Work: 128, MaxWork: 1024}, true, 128},
		{Config{Work: 128, MaxWork: 16}, true, 16}, // never past the ceiling
		{Config{Work: 0, MaxWork: 1024}, true, 1024},
		{Config{Work: 128}, true, 0}, // no ceiling: no bound
	}
	for _, c := range cases {
		if got := workBound(c.cfg, c.overloaded); got != c.want {
			t.Errorf("%+v, overloaded %v: %d, want %d", c.cfg, c.overloaded, got, c.want)
		}
	}
}
