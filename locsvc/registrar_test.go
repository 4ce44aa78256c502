package locsvc

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Contact URIs used across the registrar tests.
const (
	cA = "sip:alice@192.0.2.10:5060;transport=udp"
	cB = "sip:alice@192.0.2.11:5060"
	cC = "sip:alice@192.0.2.12:5060"
	cD = "sip:alice@192.0.2.13:5060"
)

const inst1 = `"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"`

// con builds a Contact; opts are applied in order.
func con(uri string, opts ...func(*Contact)) Contact {
	c := Contact{URI: uri}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func exp(secs int64) func(*Contact) {
	return func(c *Contact) { c.Expires, c.HasExpires = secs, true }
}

func qv(q float64) func(*Contact) {
	return func(c *Contact) { c.Q, c.HasQ = q, true }
}

func flow(instance string, regID uint32) func(*Contact) {
	return func(c *Contact) { c.Instance, c.RegID = instance, regID }
}

// reqOpt edits a Request.
type reqOpt func(*Request)

func hdrExp(secs int64) reqOpt {
	return func(r *Request) { r.Expires, r.HasExpires = secs, true }
}

func wildcard(r *Request) { r.Wildcard = true }

// register builds a REGISTER for testAoR.
func register(callID string, cseq uint32, contacts []Contact, opts ...reqOpt) Request {
	r := Request{
		AoR: testAoR, Contacts: contacts, CallID: callID, CSeq: cseq,
		Received: "198.51.100.1:5060", Transport: "UDP", UserAgent: "test-phone/1.0",
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func cs(c ...Contact) []Contact { return c }

// live is one expected live binding, in Live() order.
type live struct {
	uri     string
	expires time.Duration // since t0
	q       int           // 0: 1000 (the default); -1: 0
}

// step is one REGISTER in a scenario and what must hold after it.
type step struct {
	at    time.Duration // since t0
	req   Request
	kind  Kind   // 0: accepted
	field string // with kind
	live  []live
	tombs []string // contact URIs with a tombstone (nil: none checked unless noTomb)
	// minExpires is checked with KindIntervalTooBrief.
	minExpires int
}

// runSteps plays steps through Check and Apply from an empty set and checks
// after each one the error, the live bindings and the tombstones; a refused
// step must leave the set exactly as it was. It returns the final set.
func runSteps(t *testing.T, lim Limits, steps []step) BindingSet {
	t.Helper()
	set := BindingSet{}
	for i, st := range steps {
		now := at(st.at)
		before := cloneSet(set)
		var next BindingSet
		reg, err := Check(st.req, lim)
		if err == nil {
			next, err = Apply(set, reg, now, lim, "node-1")
			// Apply never modifies the set it is given.
			if d := setDiff(set, before); d != "" {
				t.Fatalf("step %d: Apply modified its input: %s", i, d)
			}
		}
		kind, field := kindOf(t, err)
		if kind != st.kind || (st.kind != 0 && field != st.field) {
			t.Fatalf("step %d: got %s field %q (%v), want %s field %q", i, kindName(kind), field, err, kindName(st.kind), st.field)
		}
		if err != nil {
			if st.kind == KindIntervalTooBrief {
				e, _ := AsError(err)
				if e.MinExpires != st.minExpires {
					t.Errorf("step %d: MinExpires = %d, want %d", i, e.MinExpires, st.minExpires)
				}
			}
			// Nothing changes: the caller keeps what it had.
			next = set
		} else {
			checkWellFormed(t, next)
			if next.AoR != testAoR {
				t.Errorf("step %d: AoR = %q", i, next.AoR)
			}
		}
		set = next
		checkLive(t, fmt.Sprintf("step %d", i), set, now, st.live)
		if st.tombs != nil {
			var want []string
			for _, u := range st.tombs {
				want = append(want, mustID(t, u))
			}
			slices.Sort(want)
			if got := tombIDs(set); !slices.Equal(got, want) {
				t.Errorf("step %d: tombstones %q, want %q", i, got, want)
			}
		}
	}
	return set
}

func checkLive(t *testing.T, what string, set BindingSet, now time.Time, want []live) {
	t.Helper()
	got := set.Live(now)
	var gs, ws []string
	for _, b := range got {
		gs = append(gs, fmt.Sprintf("%s exp=+%v q=%d", b.URI, b.Expires.Sub(t0), b.Q))
	}
	for _, w := range want {
		q := w.q
		switch q {
		case 0:
			q = 1000 // the default
		case -1:
			q = 0
		}
		ws = append(ws, fmt.Sprintf("%s exp=+%v q=%d", w.uri, w.expires, q))
	}
	if !slices.Equal(gs, ws) {
		t.Errorf("%s: live bindings\n got %q\nwant %q\n%s", what, gs, ws, dumpSet(set))
	}
}

var none = []string{}

func TestRegistrarRules(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name  string
		lim   func(*Limits)
		steps []step
	}{
		{"add with default expiry", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}, tombs: none},
		}},
		{"expiry: contact param beats header beats default", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(600)), con(cB)), hdrExp(1200)),
				live: []live{{cA, 600 * time.Second, 0}, {cB, 1200 * time.Second, 0}}},
			{at: time.Second, req: register("c2", 1, cs(con(cC))), live: []live{
				// Equal q: newest first.
				{cC, h + time.Second, 0}, {cA, 600 * time.Second, 0}, {cB, 1200 * time.Second, 0}}},
		}},
		{"contact param 0 beats header", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}},
			{req: register("c1", 2, cs(con(cA, exp(0))), hdrExp(3600)), live: nil, tombs: []string{cA}},
		}},
		{"contact param beats header 0", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(300))), hdrExp(0)), live: []live{{cA, 300 * time.Second, 0}}, tombs: none},
		}},
		{"refresh extends expiry", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(600)))), live: []live{{cA, 600 * time.Second, 0}}},
			{at: 300 * time.Second, req: register("c1", 2, cs(con(cA, exp(600)))), live: []live{{cA, 900 * time.Second, 0}}, tombs: none},
		}},
		{"refresh with an equivalent URI spelling", nil, []step{
			{req: register("c1", 1, cs(con("sip:alice@HOST.example;transport=udp;lr"))), live: []live{{"sip:alice@HOST.example;transport=udp;lr", h, 0}}},
			{at: time.Minute, req: register("c1", 2, cs(con("sip:alice@host.example;transport=UDP"))),
				live: []live{{"sip:alice@host.example;transport=UDP", h + time.Minute, 0}}},
		}},
		{"expired binding is gone", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(60)))), live: []live{{cA, time.Minute, 0}}},
			{at: time.Minute, req: register("c2", 1, nil), live: nil},
		}},
		{"remove with contact expires=0", nil, []step{
			{req: register("c1", 1, cs(con(cA), con(cB))), live: []live{{cA, h, 0}, {cB, h, 0}}},
			{at: time.Second, req: register("c1", 2, cs(con(cA, exp(0)))), live: []live{{cB, h, 0}}, tombs: []string{cA}},
		}},
		{"remove with Expires header 0", nil, []step{
			{req: register("c1", 1, cs(con(cA), con(cB))), live: []live{{cA, h, 0}, {cB, h, 0}}},
			{at: time.Second, req: register("c1", 2, cs(con(cA), con(cB)), hdrExp(0)), live: nil, tombs: []string{cA, cB}},
		}},
		{"remove an unknown contact writes a tombstone", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(0)))), live: nil, tombs: []string{cA}},
			// The tombstone carries Call-ID and CSeq: an older request of
			// that Call-ID cannot add the contact afterwards.
			{req: register("c1", 1, cs(con(cA))), kind: KindOutOfOrder, field: "cseq", live: nil, tombs: []string{cA}},
			{req: register("c1", 2, cs(con(cA))), live: []live{{cA, h, 0}}, tombs: none},
		}},
		{"wildcard removes all", nil, []step{
			{req: register("c1", 1, cs(con(cA), con(cB, exp(120)))), live: []live{{cA, h, 0}, {cB, 120 * time.Second, 0}}},
			{at: time.Second, req: register("c2", 7, cs(con(cC))), live: []live{{cC, h + time.Second, 0}, {cA, h, 0}, {cB, 120 * time.Second, 0}}},
			{at: 2 * time.Second, req: register("c1", 2, nil, wildcard, hdrExp(0)), live: nil, tombs: []string{cA, cB, cC}},
		}},
		{"wildcard on an empty AoR", nil, []step{
			{req: register("c1", 1, nil, wildcard, hdrExp(0)), live: nil, tombs: none},
		}},
		{"wildcard needs Expires: 0", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}},
			{req: register("c1", 2, nil, wildcard), kind: KindInvalid, field: "expires", live: []live{{cA, h, 0}}, tombs: none},
			{req: register("c1", 2, nil, wildcard, hdrExp(3600)), kind: KindInvalid, field: "expires", live: []live{{cA, h, 0}}, tombs: none},
		}},
		{"wildcard must be alone", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}},
			{req: register("c1", 2, cs(con(cB)), wildcard, hdrExp(0)), kind: KindInvalid, field: "contacts", live: []live{{cA, h, 0}}, tombs: none},
			{req: register("c1", 2, cs(con("*")), hdrExp(0)), kind: KindInvalid, field: "contacts[0].uri", live: []live{{cA, h, 0}}, tombs: none},
		}},
		{"wildcard out of order", nil, []step{
			{req: register("c1", 5, cs(con(cA))), live: []live{{cA, h, 0}}},
			{req: register("c1", 5, nil, wildcard, hdrExp(0)), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, h, 0}}, tombs: none},
			{req: register("c1", 4, nil, wildcard, hdrExp(0)), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, h, 0}}, tombs: none},
			{req: register("c9", 1, nil, wildcard, hdrExp(0)), live: nil, tombs: []string{cA}},
		}},
		{"423 below the minimum", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(59)))), kind: KindIntervalTooBrief, field: "contacts[0].expires", minExpires: 60, live: nil},
			{req: register("c1", 1, cs(con(cA)), hdrExp(1)), kind: KindIntervalTooBrief, field: "contacts[0].expires", minExpires: 60, live: nil},
			{req: register("c1", 1, cs(con(cA, exp(60)))), live: []live{{cA, time.Minute, 0}}},
			// One brief contact refuses the whole request.
			{req: register("c1", 2, cs(con(cB), con(cC, exp(10)))), kind: KindIntervalTooBrief, field: "contacts[1].expires", minExpires: 60,
				live: []live{{cA, time.Minute, 0}}, tombs: none},
		}},
		{"clamp to MaxExpires", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(100000)), con(cB)), hdrExp(math.MaxInt64)),
				live: []live{{cA, 2 * h, 0}, {cB, 2 * h, 0}}},
		}},
		{"same Call-ID needs a higher CSeq", nil, []step{
			{req: register("c1", 5, cs(con(cA, exp(600)))), live: []live{{cA, 600 * time.Second, 0}}},
			{at: time.Second, req: register("c1", 5, cs(con(cA, exp(3600)))), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, 600 * time.Second, 0}}},
			{at: time.Second, req: register("c1", 4, cs(con(cA, exp(3600)))), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, 600 * time.Second, 0}}},
			{at: time.Second, req: register("c1", 4, cs(con(cA, exp(0)))), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, 600 * time.Second, 0}}, tombs: none},
			// A request touching a fresh contact and a stale one fails whole.
			{at: time.Second, req: register("c1", 5, cs(con(cB), con(cA))), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, 600 * time.Second, 0}}, tombs: none},
			{at: 2 * time.Second, req: register("c1", 6, cs(con(cA, exp(3600)))), live: []live{{cA, h + 2*time.Second, 0}}},
		}},
		{"another Call-ID with a lower CSeq is accepted", nil, []step{
			{req: register("c1", 100, cs(con(cA, exp(600)))), live: []live{{cA, 600 * time.Second, 0}}},
			{at: time.Second, req: register("c2", 1, cs(con(cA, exp(900)))), live: []live{{cA, 901 * time.Second, 0}}},
			{at: 2 * time.Second, req: register("c3", 0, cs(con(cA, exp(0)))), live: nil, tombs: []string{cA}},
		}},
		{"a delayed REGISTER after a removal is rejected", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}},
			{at: time.Second, req: register("c1", 3, cs(con(cA, exp(0)))), live: nil, tombs: []string{cA}},
			{at: 2 * time.Second, req: register("c1", 2, cs(con(cA))), kind: KindOutOfOrder, field: "cseq", live: nil, tombs: []string{cA}},
			{at: 3 * time.Second, req: register("c1", 3, cs(con(cA))), kind: KindOutOfOrder, field: "cseq", live: nil, tombs: []string{cA}},
		}},
		{"a delayed REGISTER after a wildcard is rejected", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}},
			{at: time.Second, req: register("c1", 3, nil, wildcard, hdrExp(0)), live: nil, tombs: []string{cA}},
			{at: 2 * time.Second, req: register("c1", 2, cs(con(cA))), kind: KindOutOfOrder, field: "cseq", live: nil, tombs: []string{cA}},
		}},
		{"RFC 5626: same instance and reg-id replaces the flow", nil, []step{
			{req: register("c1", 1, cs(con(cA, flow(inst1, 1)))), live: []live{{cA, h, 0}}},
			{at: time.Second, req: register("c2", 1, cs(con(cB, flow(strings.ToUpper(inst1), 1)))), live: []live{{cB, h + time.Second, 0}}, tombs: none},
			// A second reg-id is a second flow of the same instance.
			{at: 2 * time.Second, req: register("c2", 2, cs(con(cC, flow(inst1, 2)))), live: []live{{cC, h + 2*time.Second, 0}, {cB, h + time.Second, 0}}},
			// The flow is removed by its identity, whatever URI is sent.
			{at: 3 * time.Second, req: register("c3", 1, cs(con(cD, flow(inst1, 1), exp(0)))), live: []live{{cC, h + 2*time.Second, 0}}},
		}},
		{"RFC 5626: same flow, same Call-ID, stale CSeq", nil, []step{
			{req: register("c1", 2, cs(con(cA, flow(inst1, 1)))), live: []live{{cA, h, 0}}},
			{req: register("c1", 1, cs(con(cB, flow(inst1, 1)))), kind: KindOutOfOrder, field: "cseq", live: []live{{cA, h, 0}}},
		}},
		{"too many contacts in one request", func(l *Limits) { l.MaxContacts = 2 }, []step{
			{req: register("c1", 1, cs(con(cA), con(cB), con(cC))), kind: KindTooManyContacts, field: "contacts", live: nil, tombs: none},
		}},
		{"too many contacts with the stored ones", func(l *Limits) { l.MaxContacts = 2 }, []step{
			{req: register("c1", 1, cs(con(cA), con(cB))), live: []live{{cA, h, 0}, {cB, h, 0}}},
			{at: time.Second, req: register("c2", 1, cs(con(cC))), kind: KindTooManyContacts, field: "contacts", live: []live{{cA, h, 0}, {cB, h, 0}}, tombs: none},
			// Refreshing the stored ones is fine.
			{at: time.Second, req: register("c1", 2, cs(con(cA), con(cB))), live: []live{{cA, h + time.Second, 0}, {cB, h + time.Second, 0}}},
			// Swapping one for another in one request is fine.
			{at: 2 * time.Second, req: register("c1", 3, cs(con(cA, exp(0)), con(cC))), live: []live{{cC, h + 2*time.Second, 0}, {cB, h + time.Second, 0}}, tombs: []string{cA}},
			// A removal makes room, an expiry too.
			{at: h + time.Second, req: register("c3", 1, cs(con(cD, exp(600)))), live: []live{{cD, h + 601*time.Second, 0}, {cC, h + 2*time.Second, 0}}},
		}},
		{"the same contact twice in one request: the last wins", nil, []step{
			{req: register("c1", 1, cs(con(cA, exp(600)), con("sip:alice@192.0.2.10:5060;lr;transport=udp", exp(0)))), live: nil, tombs: []string{cA}},
			{req: register("c1", 2, cs(con(cA, exp(0)), con(cA, exp(600)))), live: []live{{cA, 600 * time.Second, 0}}, tombs: none},
		}},
		{"q ordering", nil, []step{
			{req: register("c1", 1, cs(con(cA, qv(0.5)), con(cB), con(cC, qv(0.8)))),
				live: []live{{cB, h, 1000}, {cC, h, 800}, {cA, h, 500}}},
			{at: time.Second, req: register("c1", 2, cs(con(cD, qv(0.8)))),
				live: []live{{cB, h, 1000}, {cD, h + time.Second, 800}, {cC, h, 800}, {cA, h, 500}}},
			{at: 2 * time.Second, req: register("c1", 3, cs(con(cA, qv(1)), con(cB, qv(0)))),
				live: []live{{cA, h + 2*time.Second, 1000}, {cD, h + time.Second, 800}, {cC, h, 800}, {cB, h + 2*time.Second, -1}}},
		}},
		{"q rounding", nil, []step{
			{req: register("c1", 1, cs(con(cA, qv(0.1234)), con(cB, qv(0.0005)))), live: []live{{cA, h, 123}, {cB, h, 1}}},
		}},
		{"a query changes nothing", nil, []step{
			{req: register("c1", 1, cs(con(cA))), live: []live{{cA, h, 0}}},
			{at: time.Second, req: Request{AoR: testAoR}, live: []live{{cA, h, 0}}, tombs: none},
			{at: time.Second, req: register("c1", 1, nil), live: []live{{cA, h, 0}}, tombs: none},
			{at: time.Second, req: register("c1", 1, nil, hdrExp(0)), live: []live{{cA, h, 0}}, tombs: none},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := testLimits()
			if tt.lim != nil {
				tt.lim(&lim)
			}
			runSteps(t, lim, tt.steps)
		})
	}
}

func TestRegistrarInvalidInput(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	longURI := func(n int) string { return "sip:" + long(n-len("sip:@h")) + "@h" }
	with := func(f func(*Request)) Request {
		r := register("c2", 1, cs(con(cB)))
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		req   Request
		field string
	}{
		{"empty AoR", with(func(r *Request) { r.AoR = "" }), "aor"},
		{"AoR not sip", with(func(r *Request) { r.AoR = "tel:+15551234" }), "aor"},
		{"AoR without user", with(func(r *Request) { r.AoR = "sip:example.com" }), "aor"},
		{"AoR in brackets", with(func(r *Request) { r.AoR = "<sip:alice@example.com>" }), "aor"},
		{"AoR oversized", with(func(r *Request) { r.AoR = longURI(513) }), "aor"},
		{"empty contact", with(func(r *Request) { r.Contacts = cs(con("")) }), "contacts[0].uri"},
		{"bad contact", with(func(r *Request) { r.Contacts = cs(con("sip:alice@exa mple.com")) }), "contacts[0].uri"},
		{"contact not sip", with(func(r *Request) { r.Contacts = cs(con("tel:+15551234")) }), "contacts[0].uri"},
		{"contact with brackets", with(func(r *Request) { r.Contacts = cs(con("<" + cB + ">")) }), "contacts[0].uri"},
		{"second contact bad", with(func(r *Request) { r.Contacts = cs(con(cB), con("sip:alice@%zz")) }), "contacts[1].uri"},
		{"bad flow contact", with(func(r *Request) { r.Contacts = cs(con("sip:bad uri", flow(inst1, 1))) }), "contacts[0].uri"},
		{"contact oversized", with(func(r *Request) { r.Contacts = cs(con(longURI(513))) }), "contacts[0].uri"},
		{"instance oversized", with(func(r *Request) { r.Contacts = cs(con(cB, flow(long(257), 1))) }), "contacts[0].instance"},
		{"instance not UTF-8", with(func(r *Request) { r.Contacts = cs(con(cB, flow("<urn:\xff>", 1))) }), "contacts[0].instance"},
		{"negative Expires header", with(func(r *Request) { hdrExp(-1)(r) }), "expires"},
		{"negative contact expires", with(func(r *Request) { r.Contacts = cs(con(cB, exp(-1))) }), "contacts[0].expires"},
		{"q above 1", with(func(r *Request) { r.Contacts = cs(con(cB, qv(1.001))) }), "contacts[0].q"},
		{"q below 0", with(func(r *Request) { r.Contacts = cs(con(cB, qv(-0.1))) }), "contacts[0].q"},
		{"q NaN", with(func(r *Request) { r.Contacts = cs(con(cB, qv(math.NaN()))) }), "contacts[0].q"},
		{"q +Inf", with(func(r *Request) { r.Contacts = cs(con(cB, qv(math.Inf(1)))) }), "contacts[0].q"},
		{"q -Inf", with(func(r *Request) { r.Contacts = cs(con(cB, qv(math.Inf(-1)))) }), "contacts[0].q"},
		{"missing Call-ID", with(func(r *Request) { r.CallID = "" }), "call_id"},
		{"missing Call-ID with wildcard", with(func(r *Request) { r.CallID, r.Contacts = "", nil; wildcard(r); hdrExp(0)(r) }), "call_id"},
		{"Call-ID oversized", with(func(r *Request) { r.CallID = long(257) }), "call_id"},
		{"Call-ID not UTF-8", with(func(r *Request) { r.CallID = "abc\xff" }), "call_id"},
		{"User-Agent oversized", with(func(r *Request) { r.UserAgent = long(257) }), "user_agent"},
		{"User-Agent not UTF-8", with(func(r *Request) { r.UserAgent = "\xc3" }), "user_agent"},
		{"CSeq 2**31", with(func(r *Request) { r.CSeq = 1 << 31 }), "cseq"},
		{"CSeq max uint32", with(func(r *Request) { r.CSeq = math.MaxUint32 }), "cseq"},
		{"bad transport", with(func(r *Request) { r.Transport = "pigeon" }), "transport"},
		{"path entry oversized", with(func(r *Request) { r.Path = []string{longURI(513)} }), "path[0]"},
		{"path entry bad", with(func(r *Request) { r.Path = []string{"sip:edge.example;lr", "not a uri"} }), "path[1]"},
		{"path entry in brackets", with(func(r *Request) { r.Path = []string{"<sip:edge.example;lr>"} }), "path[0]"},
		{"too many path entries", with(func(r *Request) { r.Path = slices.Repeat([]string{"sip:edge.example;lr"}, 9) }), "path"},
		{"received without port", with(func(r *Request) { r.Received = "198.51.100.1" }), "received"},
		{"received port 0", with(func(r *Request) { r.Received = "198.51.100.1:0" }), "received"},
		{"received port too big", with(func(r *Request) { r.Received = "198.51.100.1:65536" }), "received"},
		{"received port signed", with(func(r *Request) { r.Received = "198.51.100.1:+5060" }), "received"},
		{"received no host", with(func(r *Request) { r.Received = ":5060" }), "received"},
		{"received bad host", with(func(r *Request) { r.Received = "bad host:5060" }), "received"},
		{"received not UTF-8", with(func(r *Request) { r.Received = "\xff:5060" }), "received"},
		{"received bad URI", with(func(r *Request) { r.Received = "sip:bad uri" }), "received"},
		{"received oversized", with(func(r *Request) { r.Received = long(300) + ":5060" }), "received"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A stored binding first; the bad request must leave it alone.
			runSteps(t, testLimits(), []step{
				{req: register("c1", 1, cs(con(cA))), live: []live{{cA, time.Hour, 0}}},
				{at: time.Second, req: tt.req, kind: KindInvalid, field: tt.field, live: []live{{cA, time.Hour, 0}}, tombs: none},
			})
		})
	}
}

func TestRegistrarValidEdgeInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Request)
	}{
		{"CSeq 2**31-1", func(r *Request) { r.CSeq = math.MaxInt32 }},
		{"CSeq 0", func(r *Request) { r.CSeq = 0 }},
		{"max-size fields", func(r *Request) {
			r.CallID = strings.Repeat("c", 256)
			r.UserAgent = strings.Repeat("u", 256)
			r.Contacts = cs(con("sip:"+strings.Repeat("b", 512-len("sip:@h"))+"@h", flow(strings.Repeat("i", 256), 1)))
			r.Path = slices.Repeat([]string{"sip:edge.example;lr"}, 8)
		}},
		{"UTF-8 User-Agent", func(r *Request) { r.UserAgent = "Téléphone ☎" }},
		{"IPv6 received", func(r *Request) { r.Received = "[2001:db8::1]:5060" }},
		{"IPv6 zone received", func(r *Request) { r.Received = "[fe80::1%eth0]:5060" }},
		{"host received", func(r *Request) { r.Received = "nat.example.net:5060" }},
		{"URI received", func(r *Request) { r.Received = "sip:198.51.100.1:5060;transport=tcp" }},
		{"no received", func(r *Request) { r.Received = "" }},
		{"no transport", func(r *Request) { r.Transport = "" }},
		{"transport WSS", func(r *Request) { r.Transport = "WSS" }},
		{"q 0 and 1", func(r *Request) { r.Contacts = cs(con(cA, qv(0)), con(cB, qv(1))) }},
		{"flow with equal URIs", func(r *Request) { r.Contacts = cs(con(cA, flow(inst1, 1)), con(cA, flow(inst1, 2))) }},
		{"empty path", func(r *Request) { r.Path = []string{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := register("c1", 1, cs(con(cA)))
			tt.edit(&req)
			reg, err := Check(req, testLimits())
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			set, err := Apply(BindingSet{}, reg, t0, testLimits(), "node-1")
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if len(set.Live(t0)) != len(req.Contacts) {
				t.Errorf("live = %d, want %d", len(set.Live(t0)), len(req.Contacts))
			}
			// Whatever Check accepts must be storable.
			data, err := Encode(set)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			back, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d := setDiff(set, back); d != "" {
				t.Errorf("round trip: %s", d)
			}
		})
	}
}

func TestApplyStoresRequestFields(t *testing.T) {
	lim := testLimits()
	req := register("call-1@ua", 7, cs(con(cA, qv(0.7), exp(600), flow(inst1, 3))))
	req.Path = []string{"sip:edge1.example;lr", "sip:edge2.example;lr;ob"}
	reg, err := Check(req, lim)
	if err != nil {
		t.Fatal(err)
	}
	req.Path[0] = "sip:mutated.example" // Check copied it
	now := t0.Add(250 * time.Millisecond)
	set, err := Apply(BindingSet{}, reg, now, lim, "node-7")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := BindingID(cA, inst1, 3)
	want := Binding{
		ID: id, URI: cA, Expires: at(601 * time.Second), // rounded up to the second
		Updated: now, Q: 700, CallID: "call-1@ua", CSeq: 7,
		Path:     []string{"sip:edge1.example;lr", "sip:edge2.example;lr;ob"},
		Received: "198.51.100.1:5060", Transport: "udp", Instance: inst1, RegID: 3,
		UserAgent: "test-phone/1.0", Node: "node-7",
	}
	if len(set.Bindings) != 1 {
		t.Fatalf("bindings: %s", dumpSet(set))
	}
	if d := bindingDiff(set.Bindings[0], want); d != "" {
		t.Errorf("stored binding: %s", d)
	}
	if set.Bindings[0].Updated != set.Bindings[0].Updated.Round(0) {
		t.Errorf("Updated carries a monotonic reading")
	}

	// The removal is a tombstone that outlives any binding it could remove.
	reg2, err := Check(register("call-1@ua", 8, cs(con(cB, flow(inst1, 3), exp(0)))), lim)
	if err != nil {
		t.Fatal(err)
	}
	now2 := at(time.Minute)
	set2, err := Apply(set, reg2, now2, lim, "node-8")
	if err != nil {
		t.Fatal(err)
	}
	tb := set2.Bindings[0]
	if !tb.Removed || tb.ID != id || tb.CallID != "call-1@ua" || tb.CSeq != 8 || !tb.Updated.Equal(now2) {
		t.Errorf("tombstone: %+v", tb)
	}
	if !tb.Expires.Equal(now2.Add(lim.MaxExpires + tombstoneMargin)) {
		t.Errorf("tombstone expires at %v, want %v", tb.Expires, now2.Add(lim.MaxExpires+tombstoneMargin))
	}
	if tb.Live(now2) {
		t.Errorf("tombstone is live")
	}
}

// A write made after a read must supersede what it read even if the stored
// entries carry a version ahead of this node's clock.
func TestApplyVersionAfterSkewedEntries(t *testing.T) {
	lim := testLimits()
	future := at(10 * time.Minute).Add(123)
	cur := BindingSet{AoR: testAoR, Bindings: []Binding{
		{ID: mustID(t, cA), URI: cA, Expires: at(time.Hour), Updated: future, CallID: "c1", CSeq: 1, Q: 1000, Node: "skewed"},
		{ID: mustID(t, cB), URI: cB, Expires: at(time.Hour), Updated: at(time.Minute), CallID: "c1", CSeq: 1, Q: 1000, Node: "skewed"},
	}}
	slices.SortFunc(cur.Bindings, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	reg, err := Check(register("c1", 2, cs(con(cB, exp(0)))), lim)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Apply(cur, reg, t0, lim, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	i, _ := next.find(mustID(t, cB))
	if got := next.Bindings[i].Updated; !got.After(future) {
		t.Errorf("new version %v is not after the skewed %v", got, future)
	}
	// And it wins the merge with the stored set, either way round.
	for _, m := range []BindingSet{Merge(cur, next), Merge(next, cur)} {
		if l := m.Live(t0); len(l) != 1 || l[0].URI != cA {
			t.Errorf("after merge: %s", dumpSet(m))
		}
	}
}

func TestApplyQueryCompacts(t *testing.T) {
	lim := testLimits()
	cur := BindingSet{AoR: testAoR, Bindings: []Binding{
		{ID: mustID(t, cA), URI: cA, Expires: at(-time.Second), Updated: at(-time.Hour), CallID: "c1", CSeq: 1},
		{ID: mustID(t, cB), URI: cB, Expires: at(time.Hour), Updated: at(-time.Hour), CallID: "c1", CSeq: 1},
	}}
	before := cloneSet(cur)
	reg, err := Check(Request{AoR: "sip:alice@EXAMPLE.com"}, lim)
	if err != nil {
		t.Fatal(err)
	}
	if !reg.IsQuery() {
		t.Fatal("not a query")
	}
	got, err := Apply(cur, reg, t0, lim, "n")
	if err != nil {
		t.Fatal(err)
	}
	if d := setDiff(cur, before); d != "" {
		t.Errorf("input modified: %s", d)
	}
	if len(got.Bindings) != 1 || got.Bindings[0].URI != cB || got.AoR != testAoR {
		t.Errorf("query result: %s", dumpSet(got))
	}
}

// Apply must not write through to its input, even via shared backing arrays
// with spare capacity.
func TestApplyDoesNotAliasInput(t *testing.T) {
	lim := testLimits()
	set := BindingSet{}
	for i, c := range []string{cA, cC} {
		reg, err := Check(register("c1", uint32(i+1), cs(con(c))), lim)
		if err != nil {
			t.Fatal(err)
		}
		if set, err = Apply(set, reg, at(time.Duration(i)*time.Second), lim, "n"); err != nil {
			t.Fatal(err)
		}
	}
	set.Bindings = slices.Grow(set.Bindings, 10) // spare capacity to tempt an in-place insert
	before := cloneSet(set)
	for _, req := range []Request{
		register("c1", 3, cs(con(cB))),
		register("c1", 3, cs(con(cA, exp(0)))),
		register("c1", 3, nil, wildcard, hdrExp(0)),
		register("c1", 1, cs(con(cB))), // refused
	} {
		reg, err := Check(req, lim)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := Apply(set, reg, at(time.Minute), lim, "n")
		if d := setDiff(set, before); d != "" {
			t.Fatalf("input modified: %s", d)
		}
		full := set.Bindings[:cap(set.Bindings)]
		for i := len(set.Bindings); i < len(full); i++ {
			if full[i].ID != "" {
				t.Fatalf("Apply wrote past the input's length")
			}
		}
		// Changing the output must not change the input either.
		for i := range out.Bindings {
			out.Bindings[i].URI = "changed"
			if len(out.Bindings[i].Path) > 0 {
				out.Bindings[i].Path[0] = "changed"
			}
		}
		if d := setDiff(set, before); d != "" {
			t.Fatalf("output aliases input: %s", d)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits: %v", err)
	}
	if err := testLimits().Validate(); err != nil {
		t.Errorf("testLimits: %v", err)
	}
	bad := []func(*Limits){
		func(l *Limits) { l.MinExpires = 0 },
		func(l *Limits) { l.MinExpires, l.DefaultExpires, l.MaxExpires = 2*time.Hour, 2*time.Hour, 3*time.Hour },
		func(l *Limits) { l.MaxExpires = l.MinExpires - time.Second },
		func(l *Limits) { l.DefaultExpires = l.MinExpires - time.Second },
		func(l *Limits) { l.DefaultExpires = l.MaxExpires + time.Second },
		func(l *Limits) { l.MaxContacts = 0 },
		func(l *Limits) { l.MaxURILen = 31 },
		func(l *Limits) { l.MaxFieldLen = 31 },
		func(l *Limits) { l.MaxPath = -1 },
	}
	for i, f := range bad {
		l := DefaultLimits()
		f(&l)
		if err := l.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, l)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		kind Kind
		code int
	}{
		{KindInvalid, 400}, {KindIntervalTooBrief, 423}, {KindTooManyContacts, 403},
		{KindOutOfOrder, 500}, {KindUnavailable, 503}, {Kind(99), 500},
	}
	for _, tt := range tests {
		e := &Error{Kind: tt.kind, Field: "f", Reason: "why"}
		if got := e.SIPCode(); got != tt.code {
			t.Errorf("%s: SIPCode %d, want %d", kindName(tt.kind), got, tt.code)
		}
		if e.SIPReason() == "" {
			t.Errorf("%s: empty reason", kindName(tt.kind))
		}
	}
	e := invalid("contacts[0].uri", "bad %s", "thing")
	if e.Error() != "contacts[0].uri: bad thing" || e.SIPReason() != e.Error() {
		t.Errorf("invalid: %q / %q", e.Error(), e.SIPReason())
	}
	cause := fmt.Errorf("dial tcp: refused")
	u := Unavailable(cause)
	wrapped := fmt.Errorf("register: %w", u)
	got, ok := AsError(wrapped)
	if !ok || got.Kind != KindUnavailable || got.Unwrap() != cause {
		t.Errorf("AsError(Unavailable): %v %v", got, ok)
	}
	if _, ok := AsError(cause); ok {
		t.Errorf("AsError of a plain error")
	}
}

// --expires-jitter: every granted expiry lies in [(1-PCT) e, e] and never
// below the minimum, the grants differ across phones, a retransmission
// (same Call-ID and CSeq) is granted the same, and 0 s still removes.
func TestExpiresJitter(t *testing.T) {
	lim := DefaultLimits()
	lim.ExpiresJitter = 20
	seen := map[time.Duration]bool{}
	for i := range 200 {
		req := Request{AoR: "sip:u@example.com", CallID: "c" + strconv.Itoa(i), CSeq: uint32(i),
			Contacts: []Contact{{URI: "sip:u@192.0.2.1", Expires: 3600, HasExpires: true}}}
		r, err := Check(req, lim)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Contacts[0].Expires
		if got < 2880*time.Second || got > 3600*time.Second {
			t.Fatalf("granted %v, outside [2880 s, 3600 s]", got)
		}
		again, _ := Check(req, lim)
		if again.Contacts[0].Expires != got {
			t.Fatalf("a retransmission was granted %v, the first copy %v", again.Contacts[0].Expires, got)
		}
		seen[got] = true
	}
	if len(seen) < 50 {
		t.Errorf("only %d distinct expiries in 200 registrations", len(seen))
	}
	// Near the minimum the range is cut at it; removal stays removal.
	for _, c := range []struct{ asked, want int64 }{{60, 60}, {0, 0}} {
		req := Request{AoR: "sip:u@example.com", CallID: "x", CSeq: 1,
			Contacts: []Contact{{URI: "sip:u@192.0.2.1", Expires: c.asked, HasExpires: true}}}
		r, err := Check(req, lim)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Contacts[0].Expires; got != time.Duration(c.want)*time.Second {
			t.Errorf("asked %d s: granted %v, want %d s", c.asked, got, c.want)
		}
	}
	lim.ExpiresJitter = 91
	if err := lim.Validate(); err == nil || !strings.Contains(err.Error(), "expires-jitter") {
		t.Errorf("jitter of 91%%: %v", err)
	}
}
