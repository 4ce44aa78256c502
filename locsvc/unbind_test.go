package locsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// applyAt runs one REGISTER through Check and Apply, failing the test if
// either refuses it.
func applyAt(t testing.TB, cur BindingSet, req Request, now time.Time) BindingSet {
	t.Helper()
	reg, err := Check(req, testLimits())
	if err != nil {
		t.Fatal(err)
	}
	next, err := Apply(cur, reg, now, testLimits(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// refTo names the version of the binding with uri (or flow identity) that
// s holds.
func refTo(t testing.TB, s BindingSet, uri, instance string, regID uint32) BindingRef {
	t.Helper()
	id, err := BindingID(uri, instance, regID)
	if err != nil {
		t.Fatal(err)
	}
	i, ok := s.find(id)
	if !ok {
		t.Fatalf("no binding %s in\n%s", id, dumpSet(s))
	}
	return BindingRef{ID: id, Updated: s.Bindings[i].Updated}
}

func liveIDs(s BindingSet, now time.Time) []string {
	var ids []string
	for _, b := range s.Bindings {
		if b.Live(now) {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

func TestUnbind(t *testing.T) {
	// cA and cB registered by Call-ID c1 at t0, the flow by c2 at +1s;
	// cA then refreshed at +10s, so its first version is stale.
	first := applyAt(t, BindingSet{}, register("c1", 1, cs(con(cA), con(cB))), t0)
	first = applyAt(t, first, register("c2", 7, cs(con(cC, flow(inst1, 1)))), at(time.Second))
	refreshed := applyAt(t, first, register("c1", 2, cs(con(cA))), at(10*time.Second))
	removedB := applyAt(t, refreshed, register("c1", 3, cs(con(cB, exp(0)))), at(11*time.Second))

	stale := refTo(t, first, cA, "", 0)
	idA, idB, idFlow := mustID(t, cA), mustID(t, cB), refTo(t, first, cC, inst1, 1).ID
	now := at(20 * time.Second)

	tests := []struct {
		name    string
		cur     BindingSet
		refs    []BindingRef
		removed []string // IDs that must become tombstones
	}{
		{"exact version removed", refreshed, []BindingRef{refTo(t, refreshed, cA, "", 0)}, []string{idA}},
		{"newer version kept", refreshed, []BindingRef{stale}, nil},
		{"unknown ID", refreshed, []BindingRef{{ID: mustID(t, cD), Updated: t0}}, nil},
		{"two refs, one matching", refreshed, []BindingRef{stale, refTo(t, refreshed, cB, "", 0)}, []string{idB}},
		{"flow by instance and reg-id", refreshed, []BindingRef{refTo(t, refreshed, cC, inst1, 1)}, []string{idFlow}},
		{"all of them", refreshed, []BindingRef{
			refTo(t, refreshed, cC, inst1, 1), refTo(t, refreshed, cA, "", 0), refTo(t, refreshed, cB, "", 0),
		}, []string{idA, idB, idFlow}},
		{"same ref twice counts once", refreshed, []BindingRef{refTo(t, refreshed, cB, "", 0), refTo(t, refreshed, cB, "", 0)}, []string{idB}},
		{"already removed", removedB, []BindingRef{refTo(t, removedB, cB, "", 0), refTo(t, refreshed, cB, "", 0)}, nil},
		{"lapsed", refreshed, []BindingRef{refTo(t, refreshed, cA, "", 0)}, nil}, // run after expiry below
		{"a nanosecond off", refreshed, []BindingRef{{ID: idA, Updated: refTo(t, refreshed, cA, "", 0).Updated.Add(time.Nanosecond)}}, nil},
		{"no refs", refreshed, nil, nil},
		{"empty set", BindingSet{}, []BindingRef{stale}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := now
			if tc.name == "lapsed" {
				now = at(2 * time.Hour)
			}
			before := cloneSet(tc.cur)
			next, n := Unbind(tc.cur, tc.refs, now, testLimits(), "node-2")
			if d := setDiff(tc.cur, before); d != "" {
				t.Fatalf("Unbind modified its input: %s", d)
			}
			if n != len(tc.removed) {
				t.Fatalf("removed %d, want %d\n%s", n, len(tc.removed), dumpSet(next))
			}
			if n == 0 {
				// cur itself, not a copy.
				if len(next.Bindings) != len(tc.cur.Bindings) || (len(next.Bindings) > 0 && &next.Bindings[0] != &tc.cur.Bindings[0]) {
					t.Fatalf("nothing removed, but the result is not cur")
				}
				return
			}
			checkWellFormed(t, next)
			if next.AoR != tc.cur.AoR {
				t.Errorf("AoR %q, want %q", next.AoR, tc.cur.AoR)
			}
			var wantLive []string
			for _, id := range liveIDs(tc.cur, now) {
				if !slices.Contains(tc.removed, id) {
					wantLive = append(wantLive, id)
				}
			}
			if got := liveIDs(next, now); !slices.Equal(got, wantLive) {
				t.Errorf("live %q, want %q", got, wantLive)
			}
			var ver time.Time
			for _, b := range next.Bindings {
				i, _ := tc.cur.find(b.ID)
				old := tc.cur.Bindings[i]
				if !slices.Contains(tc.removed, b.ID) {
					if d := bindingDiff(b, old); d != "" {
						t.Errorf("%s not named but changed: %s", b.ID, d)
					}
					continue
				}
				if !b.Removed || b.Node != "node-2" || b.URI != old.URI || b.Instance != old.Instance || b.RegID != old.RegID {
					t.Errorf("%s: not a tombstone of node-2: %+v", b.ID, b)
				}
				// The removed version's Call-ID and CSeq, not new ones.
				if b.CallID != old.CallID || b.CSeq != old.CSeq {
					t.Errorf("%s: Call-ID/CSeq %s/%d, want %s/%d", b.ID, b.CallID, b.CSeq, old.CallID, old.CSeq)
				}
				// Newer than everything read, so it wins every merge with
				// what was read; one version for the call.
				for _, o := range tc.cur.Bindings {
					if !b.Updated.After(o.Updated) {
						t.Errorf("%s: version %v not after %s's %v", b.ID, b.Updated, o.ID, o.Updated)
					}
				}
				if !ver.IsZero() && !ver.Equal(b.Updated) {
					t.Errorf("two versions in one call: %v, %v", ver, b.Updated)
				}
				ver = b.Updated
				if keep := retention(b.Updated, testLimits()); !b.Retain.Equal(keep) || !b.Expires.Equal(keep) {
					t.Errorf("%s: kept until %v/%v, want %v", b.ID, b.Expires, b.Retain, keep)
				}
			}
		})
	}
}

// A removal reaches replicas by merges, in any order, at any time before
// its retention ends; a replica still holding the removed version must not
// bring it back.
func TestUnbindBeatsStaleReplica(t *testing.T) {
	primary := applyAt(t, BindingSet{}, register("c1", 1, cs(con(cA), con(cB))), t0)
	replica := primary // missed the removal
	next, n := Unbind(primary, []BindingRef{refTo(t, primary, cA, "", 0)}, at(time.Minute), testLimits(), "node-2")
	if n != 1 {
		t.Fatalf("removed %d", n)
	}
	want := []string{mustID(t, cB)}
	for _, d := range []time.Duration{time.Minute, time.Hour, 2*time.Hour + 59*time.Second} {
		now := at(d)
		for _, m := range []BindingSet{Merge(next, replica), Merge(replica, next), Merge(Compact(next, now), replica)} {
			m = Compact(m, now)
			if d < time.Hour { // cB lapses at +1h
				if got := liveIDs(m, now); !slices.Equal(got, want) {
					t.Fatalf("at +%v live %q, want %q", d, got, want)
				}
			} else if got := liveIDs(m, now); len(got) != 0 {
				t.Fatalf("at +%v live %q", d, got)
			}
		}
	}
}

// The tombstone keeps the removed version's Call-ID and CSeq: the phone's
// next REGISTER (higher CSeq) brings the contact back, a delayed copy of
// the old one cannot, and another Call-ID is a new registration.
func TestUnbindThenRegister(t *testing.T) {
	cur := applyAt(t, BindingSet{}, register("c1", 5, cs(con(cA), con(cB))), t0)
	unbound, n := Unbind(cur, []BindingRef{refTo(t, cur, cA, "", 0)}, at(time.Minute), testLimits(), "node-2")
	if n != 1 {
		t.Fatalf("removed %d", n)
	}
	later := at(2 * time.Minute)
	for _, tc := range []struct {
		name string
		req  Request
		kind Kind
	}{
		{"same Call-ID, higher CSeq", register("c1", 6, cs(con(cA))), 0},
		{"retransmission of the removed version", register("c1", 5, cs(con(cA))), KindOutOfOrder},
		{"older CSeq", register("c1", 4, cs(con(cA))), KindOutOfOrder},
		{"another Call-ID (the phone restarted)", register("c9", 1, cs(con(cA))), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := Check(tc.req, testLimits())
			if err != nil {
				t.Fatal(err)
			}
			next, err := Apply(unbound, reg, later, testLimits(), "node-1")
			if kind, field := kindOf(t, err); kind != tc.kind || (kind != 0 && field != "cseq") {
				t.Fatalf("got %s %q (%v), want %s", kindName(kind), field, err, kindName(tc.kind))
			}
			if err != nil {
				return
			}
			if got := liveIDs(next, later); !slices.Equal(got, []string{mustID(t, cA), mustID(t, cB)}) {
				t.Errorf("live %q", got)
			}
			// The new version also wins the merge with the tombstone.
			if got := liveIDs(Merge(unbound, next), later); len(got) != 2 {
				t.Errorf("after merge with the tombstone: live %q", got)
			}
		})
	}
}

// checkUnbindProperties checks the laws of one Unbind call: it never adds a
// live binding, touches only the bindings it names (and only to remove
// them), removes exactly the live ones whose version matches, and its
// tombstones win the merge with what it read. It returns how many Unbind
// removed.
func checkUnbindProperties(t *testing.T, cur BindingSet, refs []BindingRef, now time.Time) int {
	t.Helper()
	lim := testLimits()
	before := cloneSet(cur)
	next, n := Unbind(cur, refs, now, lim, "nx")
	if d := setDiff(cur, before); d != "" {
		t.Fatalf("Unbind modified its input: %s", d)
	}
	checkWellFormed(t, next)
	base := Compact(cur, now)
	matched := map[string]bool{}
	for _, r := range refs {
		if i, ok := base.find(r.ID); ok && base.Bindings[i].Live(now) && base.Bindings[i].Updated.Equal(r.Updated) {
			matched[r.ID] = true
		}
	}
	if n != len(matched) {
		t.Fatalf("removed %d, want %d\n%s", n, len(matched), dumpSet(cur))
	}
	if n == 0 {
		if setDiff(next, cur) != "" {
			t.Fatalf("nothing removed, but the result differs from cur")
		}
		return 0
	}
	if got, was := countLive(next.Bindings, now), countLive(base.Bindings, now); got != was-n {
		t.Fatalf("%d live after removing %d of %d", got, n, was)
	}
	if len(next.Bindings) != len(base.Bindings) {
		t.Fatalf("%d entries, want the %d compacted ones", len(next.Bindings), len(base.Bindings))
	}
	for i, b := range next.Bindings {
		old := base.Bindings[i]
		if !matched[b.ID] {
			if d := bindingDiff(b, old); d != "" {
				t.Fatalf("%s not removed but changed: %s", b.ID, d)
			}
			continue
		}
		if !b.Removed || b.CallID != old.CallID || b.CSeq != old.CSeq || !b.Updated.After(old.Updated) {
			t.Fatalf("%s: bad tombstone %+v of %+v", b.ID, b, old)
		}
	}
	// Merged back into what was read, in either order, the removals hold.
	for _, m := range []BindingSet{Merge(cur, next), Merge(next, cur)} {
		for _, b := range m.Bindings {
			if matched[b.ID] && !b.Removed {
				t.Fatalf("%s back after merging with what was read", b.ID)
			}
		}
	}
	return n
}

// refsFor draws refs against s: exact versions, other versions, unknown
// IDs, repeats.
func (g *gen) refsFor(s BindingSet) []BindingRef {
	var refs []BindingRef
	for range g.r.IntN(5) {
		switch k := g.r.IntN(4); {
		case k < 2 && len(s.Bindings) > 0:
			b := s.Bindings[g.r.IntN(len(s.Bindings))]
			refs = append(refs, BindingRef{ID: b.ID, Updated: b.Updated})
		case k == 2 && len(s.Bindings) > 0:
			b := s.Bindings[g.r.IntN(len(s.Bindings))]
			refs = append(refs, BindingRef{ID: b.ID, Updated: b.Updated.Add(pick(g, -time.Second, time.Nanosecond))})
		default:
			e := mergePool[g.r.IntN(len(mergePool))]
			id, _ := BindingID(e.uri, e.instance, e.regID)
			refs = append(refs, BindingRef{ID: id, Updated: g.base.Add(pick(g, 0, time.Second))})
		}
	}
	return refs
}

func TestUnbindProperties(t *testing.T) {
	g := newGen(11)
	calls, removed := 0, 0
	for range 5000 {
		s := g.set()
		now := t0.Add(pick(g, -time.Second, 0, 30*time.Second, 2*time.Hour))
		if n := checkUnbindProperties(t, s, g.refsFor(s), now); n > 0 {
			calls++
			removed += n
		}
	}
	if calls < 500 || calls > 4500 {
		t.Fatalf("the generator is lopsided: %d of 5000 calls removed something", calls)
	}
	t.Logf("%d of 5000 calls removed %d bindings", calls, removed)
}

// FuzzUnbind decodes a fuzzed value into a binding set and checks the
// properties of Unbind with refs drawn from a fuzzed seed.
func FuzzUnbind(f *testing.F) {
	g := newGen(12)
	for i := range 8 {
		f.Add(encodeSeed(f, g.set()), uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		g := newGen(seed)
		now := t0
		if len(s.Bindings) > 0 {
			now = s.Bindings[g.r.IntN(len(s.Bindings))].Updated
		}
		checkUnbindProperties(t, s, g.refsFor(s), now)
	})
}

func TestSplitBindingID(t *testing.T) {
	cases := []struct {
		contact, instance string
		regID             uint32
	}{
		{cA, "", 0},
		{"sips:Alice%20B@[2001:db8::1]:5061;transport=TLS;lr?Subject=x", "", 0},
		{cB, inst1, 0}, // an instance without reg-id: the contact names it
		{cB, inst1, 1},
		{"", `"<urn:uuid:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6>"`, 4294967295},
		{"", "<>", 1},
		{"", `"<<urn:x>>"`, 2},
		{"", "urn:x;reg-id=3", 3},
		{"", `"quoted"`, 10},
	}
	for _, c := range cases {
		id, err := BindingID(c.contact, c.instance, c.regID)
		if err != nil {
			t.Fatal(err)
		}
		contact, instance, regID := SplitBindingID(id)
		back, err := BindingID(contact, instance, regID)
		if err != nil || back != id {
			t.Errorf("%q -> (%q, %q, %d) -> %q, %v", id, contact, instance, regID, back, err)
		}
	}
	// IDs BindingID cannot make come back whole, to match nothing.
	for _, id := range []string{"flow:x;reg-id=0", "flow:x;reg-id=01", "flow:x;reg-id=4294967296", "flow:x", "garbage"} {
		if contact, instance, regID := SplitBindingID(id); contact != id || instance != "" || regID != 0 {
			t.Errorf("%q -> (%q, %q, %d)", id, contact, instance, regID)
		}
	}
}

func FuzzSplitBindingID(f *testing.F) {
	f.Add(cA, "", uint32(0))
	f.Add("", inst1, uint32(1))
	f.Add("", `"<<X;reg-id=5>>"`, uint32(7))
	f.Fuzz(func(t *testing.T, contact, instance string, regID uint32) {
		id, err := BindingID(contact, instance, regID)
		if err != nil {
			return
		}
		c, i, r := SplitBindingID(id)
		back, err := BindingID(c, i, r)
		if err != nil || back != id {
			t.Fatalf("%q -> (%q, %q, %d) -> %q, %v", id, c, i, r, back, err)
		}
	})
}

// Example of the flow Unbind is for: a front end saw a flow's version in a
// Lookup, the connection closed, and it removes exactly that version.
func ExampleUnbind() {
	lim := DefaultLimits()
	reg, _ := Check(Request{AoR: "sip:alice@example.com", CallID: "c1", CSeq: 1,
		Contacts: []Contact{{URI: "sip:alice@192.0.2.1:5060;transport=tcp", Instance: "<urn:uuid:1>", RegID: 1}}}, lim)
	now := time.Unix(1_700_000_000, 0)
	set, _ := Apply(BindingSet{}, reg, now, lim, "edge-1")
	seen := set.Live(now)[0]

	set, n := Unbind(set, []BindingRef{{ID: seen.ID, Updated: seen.Updated}}, now.Add(time.Second), lim, "edge-1")
	fmt.Println(n, len(set.Live(now.Add(time.Second))))
	// Output: 1 0
}

// writeCounter counts the writes that reach a store: Update calls whose
// change asked for one.
type writeCounter struct {
	Store
	writes atomic.Int32
}

func (w *writeCounter) Update(ctx context.Context, key string, change func(BindingSet) (BindingSet, error)) (BindingSet, error) {
	return w.Store.Update(ctx, key, func(cur BindingSet) (BindingSet, error) {
		next, err := change(cur)
		if err == nil {
			w.writes.Add(1)
		}
		return next, err
	})
}

func newUnbindService(t *testing.T) (*Service, *MemStore, *writeCounter, *fakeClock) {
	t.Helper()
	clock := newClock(t0)
	mem := newTestMemStore(t, clock)
	wc := &writeCounter{Store: mem}
	svc, err := NewService(wc, testLimits(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	svc.now = clock.Now
	return svc, mem, wc, clock
}

// ref names a binding of a Result as a front end would, from what Lookup
// returned.
func ref(t testing.TB, r Result, uri string) BindingRef {
	t.Helper()
	for _, b := range r.Bindings {
		if b.URI == uri {
			return BindingRef{ID: b.ID, Updated: b.Updated}
		}
	}
	t.Fatalf("%s not in %q", uri, resultURIs(r))
	return BindingRef{}
}

func TestServiceUnbind(t *testing.T) {
	ctx := context.Background()
	svc, mem, wc, clock := newUnbindService(t)
	if _, err := svc.Register(ctx, register("c1", 1, cs(con(cA), con(cB, qv(0.5))))); err != nil {
		t.Fatal(err)
	}
	seen, err := svc.Lookup(ctx, testAoR)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	// The phone refreshes cB before the front end acts on what it saw.
	if _, err := svc.Register(ctx, register("c1", 2, cs(con(cB, qv(0.5))))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	writes := wc.writes.Load()

	// Any spelling of the AoR; cA goes, the refreshed cB stays.
	res, n, err := svc.Unbind(ctx, "sip:alice@EXAMPLE.com;transport=tcp", []BindingRef{ref(t, seen, cA), ref(t, seen, cB)})
	if err != nil || n != 1 {
		t.Fatalf("Unbind: %d, %v", n, err)
	}
	if got := resultURIs(res); res.AoR != testAoR || !res.Now.Equal(clock.Now()) || !res.Known || !slices.Equal(got, []string{cB}) {
		t.Fatalf("Unbind result: %+v", res)
	}
	if wc.writes.Load() != writes+1 {
		t.Errorf("%d writes for one removal", wc.writes.Load()-writes)
	}
	if res, _ := svc.Lookup(ctx, testAoR); !slices.Equal(resultURIs(res), []string{cB}) {
		t.Errorf("Lookup after Unbind: %q", resultURIs(res))
	}

	// Again: nothing matches any more, so nothing is written, and the
	// answer is what is stored.
	before := contents(mem)
	res, n, err = svc.Unbind(ctx, testAoR, []BindingRef{ref(t, seen, cA), ref(t, seen, cB)})
	if err != nil || n != 0 || !slices.Equal(resultURIs(res), []string{cB}) || res.AoR != testAoR || !res.Known {
		t.Fatalf("repeated Unbind: %+v, %d, %v", res, n, err)
	}
	if wc.writes.Load() != writes+1 {
		t.Errorf("a removal of nothing wrote")
	}
	if d := contentsDiff(contents(mem), before); d != "" {
		t.Errorf("a removal of nothing changed the store: %s", d)
	}

	// An AoR never seen: no error, nothing written, nothing stored.
	res, n, err = svc.Unbind(ctx, "sip:nobody@example.com", []BindingRef{ref(t, seen, cA)})
	if err != nil || n != 0 || res.AoR != "sip:nobody@example.com" || res.Known || len(res.Bindings) != 0 || mem.Len() != 1 {
		t.Fatalf("unknown AoR: %+v, %d, %v (records %d)", res, n, err, mem.Len())
	}

	// The phone's next REGISTER of the same Call-ID brings cA back.
	if res, err := svc.Register(ctx, register("c1", 3, cs(con(cA)))); err != nil || len(res.Bindings) != 2 {
		t.Fatalf("REGISTER after Unbind: %q, %v", resultURIs(res), err)
	}
}

func TestServiceUnbindRefused(t *testing.T) {
	ctx := context.Background()
	svc, mem, wc, _ := newUnbindService(t)
	res, err := svc.Register(ctx, register("c1", 1, cs(con(cA))))
	if err != nil {
		t.Fatal(err)
	}
	good := ref(t, res, cA)
	long := "sip:" + strings.Repeat("a", 600) + "@example.com"
	for _, tc := range []struct {
		name  string
		aor   string
		refs  []BindingRef
		field string
	}{
		{"invalid AoR", "tel:+15551234", []BindingRef{good}, "aor"},
		{"empty AoR", "", []BindingRef{good}, "aor"},
		{"AoR too long", long, []BindingRef{good}, "aor"},
		{"empty ID", testAoR, []BindingRef{good, {Updated: good.Updated}}, "bindings[1].id"},
		{"not a binding ID", testAoR, []BindingRef{{ID: "mailto:alice@example.com", Updated: good.Updated}}, "bindings[0].id"},
		{"not a flow ID", testAoR, []BindingRef{{ID: "flow:x;reg-id=0", Updated: good.Updated}}, "bindings[0].id"},
		{"no version", testAoR, []BindingRef{{ID: good.ID}, good}, "bindings[0].updated_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, writes := contents(mem), wc.writes.Load()
			res, n, err := svc.Unbind(ctx, tc.aor, tc.refs)
			if kind, field := kindOf(t, err); kind != KindInvalid || field != tc.field {
				t.Fatalf("got %s %q (%v), want KindInvalid %q", kindName(kind), field, err, tc.field)
			}
			if n != 0 || res.AoR != "" || res.Bindings != nil {
				t.Errorf("refused call returned %+v, %d", res, n)
			}
			if d := contentsDiff(contents(mem), before); d != "" || wc.writes.Load() != writes {
				t.Errorf("refused call changed the store: %s", d)
			}
		})
	}
}

func TestServiceUnbindUnavailable(t *testing.T) {
	ctx := context.Background()
	clock := newClock(t0)
	mem := newTestMemStore(t, clock)
	fs := &failingStore{Store: mem}
	svc, err := NewService(fs, testLimits(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	svc.now = clock.Now
	res, err := svc.Register(ctx, register("c1", 1, cs(con(cA))))
	if err != nil {
		t.Fatal(err)
	}
	good := ref(t, res, cA)
	stale := BindingRef{ID: good.ID, Updated: good.Updated.Add(-time.Second)}
	before := contents(mem)
	for _, tc := range []struct {
		name               string
		failGet, failMerge bool
		refs               []BindingRef
		ok                 bool
	}{
		{"read fails", true, false, []BindingRef{good}, false},
		{"write fails", false, true, []BindingRef{good}, false},
		// Nothing to write, so a store that could not write is no matter.
		{"write fails, nothing to write", false, true, []BindingRef{stale}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs.failGet, fs.failMerge = tc.failGet, tc.failMerge
			res, n, err := svc.Unbind(ctx, testAoR, tc.refs)
			if tc.ok {
				if err != nil || n != 0 || !slices.Equal(resultURIs(res), []string{cA}) {
					t.Errorf("got %+v, %d, %v", res, n, err)
				}
			} else if e, ok := AsError(err); !ok || e.Kind != KindUnavailable || !errors.Is(err, errStoreDown) || n != 0 {
				t.Errorf("got %d, %v; want Unavailable", n, err)
			}
			if d := contentsDiff(contents(mem), before); d != "" {
				t.Errorf("store changed: %s", d)
			}
		})
	}
}

// Any spelling of a contact names its binding, as it does over gRPC and
// HTTP, where the server derives the ID from the contact.
func TestServiceUnbindSpelling(t *testing.T) {
	ctx := context.Background()
	svc, _, _, clock := newUnbindService(t)
	res, err := svc.Register(ctx, register("c1", 1, cs(con(cA))))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	refs := []BindingRef{{ID: "sip:alice@192.0.2.10:5060;transport=UDP;lr", Updated: ref(t, res, cA).Updated}}
	before := slices.Clone(refs)
	res, n, err := svc.Unbind(ctx, testAoR, refs)
	if err != nil || n != 1 || len(res.Bindings) != 0 {
		t.Fatalf("Unbind: %+v, %d, %v", res, n, err)
	}
	if !slices.Equal(refs, before) {
		t.Errorf("Unbind changed the caller's refs: %v", refs)
	}
}
