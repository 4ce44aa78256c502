package locsvc

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the fixed "now" of the registrar tests: a whole second, so expiries
// are easy to state.
var t0 = time.Unix(1_700_000_000, 0)

const testAoR = "sip:alice@example.com"

func at(d time.Duration) time.Time { return t0.Add(d) }

// testLimits are DefaultLimits, spelled out so the tests do not move when the
// defaults do.
func testLimits() Limits {
	return Limits{
		MinExpires:     60 * time.Second,
		MaxExpires:     2 * time.Hour,
		DefaultExpires: time.Hour,
		MaxContacts:    16,
		MaxURILen:      512,
		MaxPath:        8,
		MaxFieldLen:    256,
	}
}

// kindOf returns the Kind and Field of err, or (0, "") when err is nil. A
// non-nil error that is not an *Error fails the test.
func kindOf(t testing.TB, err error) (Kind, string) {
	t.Helper()
	if err == nil {
		return 0, ""
	}
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *locsvc.Error", err, err)
	}
	return e.Kind, e.Field
}

// kindName names a Kind in failure messages.
func kindName(k Kind) string {
	switch k {
	case 0:
		return "none"
	case KindInvalid:
		return "KindInvalid"
	case KindIntervalTooBrief:
		return "KindIntervalTooBrief"
	case KindTooManyContacts:
		return "KindTooManyContacts"
	case KindOutOfOrder:
		return "KindOutOfOrder"
	case KindUnavailable:
		return "KindUnavailable"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// cloneSet deep-copies s, Path slices included.
func cloneSet(s BindingSet) BindingSet {
	out := BindingSet{AoR: s.AoR}
	if s.Bindings != nil {
		out.Bindings = make([]Binding, len(s.Bindings))
		for i, b := range s.Bindings {
			b.Path = slices.Clone(b.Path)
			out.Bindings[i] = b
		}
	}
	return out
}

// bindingDiff describes how a and b differ ("" when equal). Times compare
// with Equal; a nil and an empty Path are the same.
func bindingDiff(a, b Binding) string {
	var d []string
	add := func(name string, x, y any) { d = append(d, fmt.Sprintf("%s: %v != %v", name, x, y)) }
	if a.ID != b.ID {
		add("ID", a.ID, b.ID)
	}
	if a.URI != b.URI {
		add("URI", a.URI, b.URI)
	}
	if !a.Expires.Equal(b.Expires) {
		add("Expires", a.Expires, b.Expires)
	}
	if !a.Updated.Equal(b.Updated) {
		add("Updated", a.Updated, b.Updated)
	}
	if a.Q != b.Q {
		add("Q", a.Q, b.Q)
	}
	if a.CallID != b.CallID {
		add("CallID", a.CallID, b.CallID)
	}
	if a.CSeq != b.CSeq {
		add("CSeq", a.CSeq, b.CSeq)
	}
	if !slices.Equal(a.Path, b.Path) {
		add("Path", a.Path, b.Path)
	}
	if a.Received != b.Received {
		add("Received", a.Received, b.Received)
	}
	if a.Transport != b.Transport {
		add("Transport", a.Transport, b.Transport)
	}
	if a.Instance != b.Instance {
		add("Instance", a.Instance, b.Instance)
	}
	if a.RegID != b.RegID {
		add("RegID", a.RegID, b.RegID)
	}
	if a.UserAgent != b.UserAgent {
		add("UserAgent", a.UserAgent, b.UserAgent)
	}
	if a.Node != b.Node {
		add("Node", a.Node, b.Node)
	}
	if a.Removed != b.Removed {
		add("Removed", a.Removed, b.Removed)
	}
	return strings.Join(d, "; ")
}

// setDiff describes how two sets differ ("" when equal).
func setDiff(a, b BindingSet) string {
	if a.AoR != b.AoR {
		return fmt.Sprintf("AoR %q != %q", a.AoR, b.AoR)
	}
	if len(a.Bindings) != len(b.Bindings) {
		return fmt.Sprintf("%d bindings != %d bindings:\n%s\n---\n%s", len(a.Bindings), len(b.Bindings), dumpSet(a), dumpSet(b))
	}
	for i := range a.Bindings {
		if d := bindingDiff(a.Bindings[i], b.Bindings[i]); d != "" {
			return fmt.Sprintf("binding %d (%s): %s", i, a.Bindings[i].ID, d)
		}
	}
	return ""
}

func dumpSet(s BindingSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "aor=%q\n", s.AoR)
	for _, x := range s.Bindings {
		fmt.Fprintf(&b, "  %s uri=%s exp=%d upd=%d removed=%v cid=%s cseq=%d q=%d node=%s\n",
			x.ID, x.URI, x.Expires.Unix(), x.Updated.UnixNano(), x.Removed, x.CallID, x.CSeq, x.Q, x.Node)
	}
	return b.String()
}

// checkWellFormed fails unless s is sorted by ID with no ID twice.
func checkWellFormed(t testing.TB, s BindingSet) {
	t.Helper()
	for i := 1; i < len(s.Bindings); i++ {
		if s.Bindings[i-1].ID >= s.Bindings[i].ID {
			t.Fatalf("bindings not sorted by unique ID at %d: %q, %q\n%s", i, s.Bindings[i-1].ID, s.Bindings[i].ID, dumpSet(s))
		}
	}
}

// tombIDs lists the IDs of the tombstones in s.
func tombIDs(s BindingSet) []string {
	var ids []string
	for _, b := range s.Bindings {
		if b.Removed {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

func mustID(t testing.TB, uri string) string {
	t.Helper()
	id, err := BindingID(uri, "", 0)
	if err != nil {
		t.Fatalf("BindingID(%q): %v", uri, err)
	}
	return id
}

// fakeClock is a settable clock safe for the MemStore sweeper goroutine.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
