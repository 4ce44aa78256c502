package locsvc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestChosen(t *testing.T) {
	flowB := liveBinding(t, cC, t0, time.Hour)
	flowB.ID, flowB.Instance, flowB.RegID = "flow:urn:uuid:1;reg-id=1", "<urn:uuid:1>", 1
	set := BindingSet{AoR: testAoR, Bindings: []Binding{
		liveBinding(t, cA, t0, time.Hour),
		liveBinding(t, cB, t0.Add(time.Second), time.Hour),
		liveBinding(t, cD, t0, time.Minute), // lapsed at 2 min
		flowB,
	}}
	slices.SortFunc(set.Bindings, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	at2m := at(2 * time.Minute)
	id := func(uri string) string { return mustID(t, uri) }
	for _, tc := range []struct {
		name    string
		ids     []string
		want    []string // URIs of the bindings taken
		matched []bool
	}{
		{"no contacts: every live binding", nil, []string{cA, cB, cC}, []bool{}},
		{"one contact", []string{id(cB)}, []string{cB}, []bool{true}},
		{"the contact spelt otherwise", []string{id("sip:alice@192.0.2.11:5060;lr")}, []string{cB}, []bool{true}},
		{"another transport is another contact", []string{id("sip:alice@192.0.2.11:5060;transport=tcp")}, nil, []bool{false}},
		{"a flow, by its contact", []string{id(cC)}, []string{cC}, []bool{true}},
		{"a lapsed binding matches nothing", []string{id(cD)}, nil, []bool{false}},
		{"one of two", []string{id("sip:bob@192.0.2.99"), id(cA)}, []string{cA}, []bool{false, true}},
		{"named twice", []string{id(cA), id(cA)}, []string{cA}, []bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs, matched := chosen(set, tc.ids, at2m)
			var got []string
			for _, r := range refs {
				for _, b := range set.Bindings {
					if b.ID == r.ID {
						if !b.Updated.Equal(r.Updated) {
							t.Errorf("%s: version %v, stored %v", b.URI, r.Updated, b.Updated)
						}
						got = append(got, b.URI)
					}
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) || !slices.Equal(matched, tc.matched) {
				t.Errorf("took %q matched %v, want %q %v", got, matched, want, tc.matched)
			}
		})
	}
}

// An operator's removal takes exactly what it names, writes nothing when
// it names nothing there, refuses bad input without writing, and leaves
// tombstones that a stale replica cannot undo and that the phone's next
// REGISTER can.
func TestServiceRemoveByOperator(t *testing.T) {
	ctx := context.Background()
	svc, store, clock := newTestService(t, testLimits())
	if _, err := svc.Register(ctx, register("c1", 1, cs(con(cA), con(cB), con(cC)))); err != nil {
		t.Fatal(err)
	}
	before := contents(store)
	clock.Advance(time.Second)

	for _, tc := range []struct {
		name     string
		aor      string
		contacts []string
		field    string
	}{
		{"no AoR", "", nil, "aor"},
		{"not a SIP URI", "alice", nil, "aor"},
		{"bad contact", testAoR, []string{cA, "no-uri"}, "contacts[1]"},
	} {
		_, _, _, err := svc.Remove(ctx, tc.aor, tc.contacts)
		if k, f := kindOf(t, err); k != KindInvalid || f != tc.field {
			t.Errorf("%s: %s on %q, want KindInvalid on %q", tc.name, kindName(k), f, tc.field)
		}
	}
	res, n, unmatched, err := svc.Remove(ctx, testAoR, []string{"sip:alice@192.0.2.99"})
	if err != nil || n != 0 || !slices.Equal(unmatched, []string{"sip:alice@192.0.2.99"}) || len(res.Bindings) != 3 {
		t.Fatalf("removing an absent contact: %d removed, unmatched %q, %d live, %v", n, unmatched, len(res.Bindings), err)
	}
	if d := contentsDiff(before, contents(store)); d != "" {
		t.Fatalf("a removal that matched nothing, or a refused one, changed the store: %s", d)
	}

	res, n, unmatched, err = svc.Remove(ctx, "sip:alice@EXAMPLE.com", []string{"sip:alice@192.0.2.11:5060;ob"})
	if err != nil || n != 1 || len(unmatched) != 0 {
		t.Fatalf("Remove(cB): %d removed, unmatched %q, %v", n, unmatched, err)
	}
	if got := resultURIs(res); res.AoR != testAoR || !slices.Equal(sortedCopy(got), []string{cA, cC}) {
		t.Errorf("after Remove(cB): %s %q", res.AoR, got)
	}
	clock.Advance(time.Second)
	res, n, _, err = svc.Remove(ctx, testAoR, nil)
	if err != nil || n != 2 || len(res.Bindings) != 0 || !res.Known {
		t.Fatalf("Remove(all): %d removed, %+v, %v", n, res, err)
	}

	// A replica that missed the removals, merged back (as repair would),
	// brings nothing back.
	for _, old := range before {
		if _, err := store.Merge(ctx, StoreKey(testAoR), old); err != nil {
			t.Fatal(err)
		}
	}
	if res, _ := svc.Lookup(ctx, testAoR); len(res.Bindings) != 0 {
		t.Errorf("a stale copy brought back %q", resultURIs(res))
	}
	// A delayed copy of the REGISTER that made them is still refused; the
	// phone's next one binds again.
	if _, err := svc.Register(ctx, register("c1", 1, cs(con(cA)))); err == nil {
		t.Error("a delayed copy of the old REGISTER was accepted")
	}
	res, err = svc.Register(ctx, register("c1", 2, cs(con(cA))))
	if err != nil || len(res.Bindings) != 1 {
		t.Errorf("the phone's next REGISTER: %q, %v", resultURIs(res), err)
	}
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Dump shows each AoR with live bindings once, with only those bindings,
// and Counts counts what Dump shows.
func TestServiceDumpAndCounts(t *testing.T) {
	ctx := context.Background()
	svc, _, clock := newTestService(t, testLimits())
	const n = 300
	want := map[string][]string{}
	for i := range n {
		req := register("c1", 1, cs(con(fmt.Sprintf("sip:u%d@192.0.2.1", i), exp(600))))
		req.AoR = fmt.Sprintf("sip:u%d@example.com", i)
		if i%3 == 0 { // a second binding that lapses first
			req.Contacts = append(req.Contacts, con(fmt.Sprintf("sip:u%d@192.0.2.2", i), exp(60)))
		}
		if _, err := svc.Register(ctx, req); err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			want[req.AoR] = []string{req.Contacts[0].URI}
		}
	}
	for i := 0; i < n; i += 10 { // every tenth AoR has nothing left
		if _, _, _, err := svc.Remove(ctx, fmt.Sprintf("sip:u%d@example.com", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute)

	got := map[string][]string{}
	err := svc.Dump(ctx, 1_000_000, func(r Result) error {
		if _, dup := got[r.AoR]; dup {
			t.Errorf("%s dumped twice", r.AoR)
		}
		got[r.AoR] = resultURIs(r)
		if !r.Now.Equal(clock.Now()) {
			t.Errorf("%s: dumped as of %v", r.AoR, r.Now)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("dumped %d AoRs, want %d", len(got), len(want))
	}
	for aor, uris := range want {
		if !slices.Equal(got[aor], uris) {
			t.Errorf("%s: dumped %q, want %q", aor, got[aor], uris)
		}
	}
	c, err := svc.Counts(ctx, 1_000_000)
	if err != nil || c != (Counts{AoRs: len(want), Bindings: len(want)}) {
		t.Errorf("Counts = %+v, %v; want %d and %d", c, err, len(want), len(want))
	}

	stop := errors.New("client gone")
	calls := 0
	if err := svc.Dump(ctx, 1_000_000, func(Result) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Dump after fn failed: %v after %d calls, want fn's error after 1", err, calls)
	}
	if err := svc.Dump(ctx, 0, func(Result) error { return nil }); err == nil {
		t.Error("Dump at rate 0 ran")
	} else if k, f := kindOf(t, err); k != KindInvalid || f != "rate" {
		t.Errorf("Dump at rate 0: %s on %q", kindName(k), f)
	}
}

// The rate paces the walk, and the context ends it.
func TestServiceDumpPacedAndCancelled(t *testing.T) {
	svc, _, _ := newTestService(t, testLimits())
	ctx := context.Background()
	for i := range 40 {
		req := register("c1", 1, cs(con("sip:u@192.0.2.1")))
		req.AoR = fmt.Sprintf("sip:u%d@example.com", i)
		if _, err := svc.Register(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if _, err := svc.Counts(ctx, 200); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("40 records at 200 a second took %v, want about 200ms", took)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	seen := 0
	err := svc.Dump(cctx, 20, func(Result) error { seen++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || seen > 3 {
		t.Errorf("Dump at 20/s for 50ms: %v after %d AoRs, want the deadline after at most 3", err, seen)
	}
}

var _ Walker = (*MemStore)(nil)
