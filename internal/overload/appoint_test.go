package overload

import (
	"strconv"
	"testing"
	"time"
)

// busy returns a controller that has taken perWindow requests in each of
// windows windows of 100 ms from start (a rate of 10*perWindow per
// second), and the time after them.
func busy(t *testing.T, perWindow, windows int) (*Controller, time.Time) {
	t.Helper()
	ctl := New(Config{Target: 20 * ms, Interval: 100 * ms, RetryMin: 1, RetryMax: 4})
	start := time.Unix(1000, 0)
	for w := range windows {
		for i := range perWindow {
			at := start.Add(time.Duration(w)*100*ms + time.Duration(i*100/perWindow)*ms)
			if !ctl.Admit(at, 0, 0, 0) {
				t.Fatal("refused without a queue")
			}
		}
	}
	return ctl, start.Add(time.Duration(windows) * 100 * ms)
}

// Refused phones are booked into the earliest seconds with room, each
// second filled to about the share of the rate taken lately, so that
// they come back at a rate the server takes rather than all at once.
func TestAppointSpreadsReturnsAtTheRateTaken(t *testing.T) {
	ctl, now := busy(t, 100, 40) // about 1,000 taken per second
	budget := int(bookShare * ctl.rate)
	if budget < 700 || budget > 850 {
		t.Fatalf("budget %d from a rate of %.0f/s, want about 0.8 * 1,000", budget, ctl.rate)
	}
	const phones = 8000
	perSecond := map[int]int{}
	for i := range phones {
		after := ctl.Appoint(now, CallKey([]byte("phone-"+strconv.Itoa(i))))
		if after < 1 || after > maxAppointment {
			t.Fatalf("Retry-After %d", after)
		}
		perSecond[after]++
	}
	last := 0
	for s, n := range perSecond {
		last = max(last, s)
		if n > 2*budget {
			t.Errorf("%d phones told to come back in %d s, budget %d", n, s, budget)
		}
	}
	// 8,000 phones at about 780 per second: the book reaches about 10 s
	// past the shortest wait, plus the range drawn over.
	if want := phones / budget; last < want || last > want+8 {
		t.Errorf("last appointment in %d s, want about %d", last, want)
	}
}

// standing makes the queue stand at at: a whole window just before it
// whose shortest wait was past the target.
func standing(t *testing.T, ctl *Controller, at time.Time) {
	t.Helper()
	ctl.Admit(at.Add(-250*ms), 30*ms, 0, 0) // starts a window ending at at-150ms
	for i := range 8 {
		ctl.Admit(at.Add(time.Duration(-240+10*i)*ms), 30*ms, 0, 0)
	}
	ctl.Admit(at.Add(-100*ms), 30*ms, 0, 0) // closes it
	if !ctl.standing {
		t.Fatal("no standing queue")
	}
}

// A phone back for its appointment while a queue stands is taken though
// it waited past the target (but not past the hard bound), once; one too
// early, unknown, or back a second time is judged as any other.
func TestAppointmentKept(t *testing.T) {
	ctl, now := busy(t, 100, 40)
	alice, bob := CallKey([]byte("alice")), CallKey([]byte("bob"))
	after := ctl.Appoint(now, alice)
	back := now.Add(time.Duration(after) * time.Second)
	standing(t, ctl, back)
	if ctl.Due(back.Add(-3*time.Second), 0, alice) {
		t.Error("due three seconds early")
	}
	if !ctl.Due(back, 30*ms, alice) || ctl.Due(back, 30*ms, bob) || ctl.Due(back, 50*ms, alice) {
		t.Fatal("Due wrong for alice (booked, within or past the hard bound) or bob (not booked)")
	}
	if ctl.Admit(back, 50*ms, 0, alice) {
		t.Error("taken past the hard bound")
	}
	if !ctl.Admit(back, 30*ms, 0, alice) {
		t.Error("back for the appointment, 30 ms wait, refused")
	}
	if ctl.Admit(back.Add(ms), 30*ms, 0, alice) {
		t.Error("taken twice for one appointment")
	}
	if ctl.Admit(back.Add(2*ms), 30*ms, 0, bob) {
		t.Error("a phone without an appointment taken past the target")
	}
	// The window alice was taken in has closed: one kept, none booked.
	if s := ctl.Signal(); s.Kept != 1 || s.Booked != 0 {
		t.Errorf("signal %+v, want Kept 1, Booked 0", s)
	}
}

// Before the controller has seen what it takes, a refusal draws its
// Retry-After from the configured range and books nothing.
func TestAppointWithoutARate(t *testing.T) {
	ctl := New(Config{Target: 20 * ms, Interval: 100 * ms, RetryMin: 2, RetryMax: 9})
	now := time.Unix(1000, 0)
	seen := map[int]bool{}
	for i := range 100 {
		key := CallKey([]byte("p" + strconv.Itoa(i)))
		r := ctl.Appoint(now, key)
		if r < 2 || r > 9 {
			t.Fatalf("Retry-After %d outside 2-9", r)
		}
		seen[r] = true
		if ctl.Due(now.Add(time.Duration(r)*time.Second), 0, key) {
			t.Fatal("booked without a rate")
		}
	}
	if len(seen) < 4 {
		t.Errorf("Retry-After values %v", seen)
	}
}

// The book forgets a second once the ring comes round to it again.
func TestBookSlotReuse(t *testing.T) {
	ctl, now := busy(t, 100, 40)
	key := CallKey([]byte("carol"))
	after := ctl.Appoint(now, key)
	later := now.Add(time.Duration(after+bookHorizon) * time.Second)
	ctl.Appoint(later, CallKey([]byte("dave"))) // walks the ring over carol's second
	ctl.book.slot(now.Unix() + int64(after) + bookHorizon)
	if _, ok := ctl.book.due[key]; ok {
		t.Error("an appointment a whole ring old is still kept")
	}
}

// A phone booked from a scan (the Call-ID as bytes) is found by its
// handler (the Call-ID as a string): the two keys are one.
func TestCallKeyOfBytesAndString(t *testing.T) {
	for _, id := range []string{"", "a", "843817637684230@998sdasdh09", "call-1@test"} {
		if CallKey(id) != CallKey([]byte(id)) || CallKey(id) == 0 {
			t.Errorf("CallKey(%q): %d as a string, %d as bytes", id, CallKey(id), CallKey([]byte(id)))
		}
	}
	if CallKey("a") == CallKey("b") {
		t.Error("two Call-IDs, one key")
	}
}
