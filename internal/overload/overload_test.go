package overload

import (
	"testing"
	"time"
)

const ms = time.Millisecond

// step is one request: when it is judged (ms after the start), how long
// it waited, and the verdict wanted.
type step struct {
	at    int
	delay time.Duration
	admit bool
}

func TestAdmit(t *testing.T) {
	cfg := Config{Target: 20 * ms, Interval: 100 * ms}
	cases := []struct {
		name  string
		steps []step
	}{
		{"no queue: everything taken", []step{{0, 0, true}, {50, 5 * ms, true}, {150, 1 * ms, true}, {250, 0, true}}},
		{"a burst shorter than a window passes, a late request does not", []step{
			{0, 0, true}, {10, 60 * ms, true}, {20, 90 * ms, true}, {30, 150 * ms, false}, {40, 5 * ms, true},
			// the window's shortest delay was 0: no standing queue
			{110, 80 * ms, true},
		}},
		{"a standing queue: only requests within the target", []step{
			{0, 30 * ms, true}, {50, 40 * ms, true}, {90, 35 * ms, true},
			// window 1's shortest delay, 30 ms, exceeded the target
			{110, 25 * ms, false}, {120, 60 * ms, false}, {130, 15 * ms, true}, {140, 30 * ms, false},
			// window 2 saw 15 ms: drained, so back to the interval's bound
			{220, 60 * ms, true},
		}},
		{"an idle spell ends the standing queue", []step{
			{0, 50 * ms, true}, {110, 50 * ms, false},
			{1000, 50 * ms, true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := New(cfg)
			start := time.Unix(1000, 0)
			for i, s := range c.steps {
				if got := ctl.Admit(start.Add(time.Duration(s.at)*ms), s.delay, 0, 0); got != s.admit {
					t.Fatalf("step %d (%d ms, waited %v): admit %v, want %v", i, s.at, s.delay, got, s.admit)
				}
			}
		})
	}
}

func TestSignal(t *testing.T) {
	ctl := New(Config{Target: 20 * ms, Interval: 100 * ms})
	start := time.Unix(1000, 0)
	for i := range 4 {
		ctl.Admit(start.Add(time.Duration(i)*ms), 30*ms, 0, 0)
	}
	ctl.Admit(start.Add(150*ms), 40*ms, 0, 0) // closes window 1: standing; refused
	for i := range 3 {
		ctl.Admit(start.Add(time.Duration(160+i)*ms), 10*ms, 0, 0) // taken
	}
	ctl.Admit(start.Add(300*ms), 0, 0, 0) // closes window 2
	s := ctl.Signal()
	if s.Standing || s.MinDelay != 10*ms || s.Loss != 25 || s.Seq != start.Add(300*ms).UnixMilli() {
		t.Errorf("%+v", s)
	}
}

func TestRetryAfter(t *testing.T) {
	ctl := New(Config{Target: ms, Interval: ms, RetryMin: 2, RetryMax: 5})
	seen := map[int]bool{}
	for range 1000 {
		r := ctl.RetryAfter()
		if r < 2 || r > 5 {
			t.Fatalf("Retry-After %d outside 2-5", r)
		}
		seen[r] = true
	}
	if len(seen) != 4 {
		t.Errorf("values drawn: %v, want all of 2-5", seen)
	}
	if r := New(Config{RetryMin: 3, RetryMax: 3}).RetryAfter(); r != 3 {
		t.Errorf("fixed range: %d", r)
	}
}

// After a window that refused two requests in three, Retry-After is
// drawn from the range stretched three times; Late refuses, and counts,
// what Admit would.
func TestRetryAfterStretchesWithLoss(t *testing.T) {
	ctl := New(Config{Target: 20 * ms, Interval: 100 * ms, RetryMin: 1, RetryMax: 4})
	start := time.Unix(1000, 0)
	if !ctl.Admit(start, 50*ms, 0, 0) { // within the interval: taken
		t.Fatal("refused in an idle window")
	}
	for i := range 2 {
		if !ctl.Late(start.Add(time.Duration(i+1)*ms), 200*ms) {
			t.Fatal("a request 200 ms late was not late")
		}
	}
	if ctl.Late(start.Add(5*ms), 30*ms) {
		t.Fatal("30 ms is within the interval of a queue not standing")
	}
	ctl.Admit(start.Add(150*ms), 0, 0, 0) // closes the window
	if s := ctl.Signal(); s.Loss != 66 || !s.Standing {
		t.Fatalf("%+v", s)
	}
	for range 200 {
		if r := ctl.RetryAfter(); r < 3 || r > 12 {
			t.Fatalf("Retry-After %d outside 3-12", r)
		}
	}
}

// The wait behind the requests taken in, as the last handling to start
// saw it, counts toward Late while it is fresh (within an interval).
func TestLateCountsTheWaitBehind(t *testing.T) {
	ctl := New(Config{Target: 20 * ms, Interval: 100 * ms, RetryMin: 1, RetryMax: 4})
	start := time.Unix(1000, 0)
	ctl.Admit(start, 90*ms, 90*ms, 0) // waited 90 ms behind others: taken
	if !ctl.Late(start.Add(10*ms), 20*ms) {
		t.Error("20 ms in the socket and 90 ms behind is past the interval, but not late")
	}
	if ctl.Late(start.Add(150*ms), 20*ms) {
		t.Error("the wait behind is 150 ms old and counted still")
	}
}
