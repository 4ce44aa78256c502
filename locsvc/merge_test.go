package locsvc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// poolEntry is a binding identity the generators draw from. Several URIs
// share an ID, so equal IDs with different contents are common.
type poolEntry struct {
	uri      string
	instance string
	regID    uint32
}

var mergePool = []poolEntry{
	{uri: "sip:alice@192.0.2.10:5060"},
	{uri: "sip:alice@192.0.2.10:5060;lr"}, // same ID as the first
	{uri: "sip:alice@192.0.2.11"},
	{uri: "sip:alice@192.0.2.12;transport=tcp"},
	{uri: "sip:alice@192.0.2.13", instance: inst1, regID: 1},
	{uri: "sip:alice@192.0.2.14", instance: inst1, regID: 1}, // same flow
	{uri: "sip:alice@192.0.2.13", instance: inst1, regID: 2},
}

// gen draws random binding sets with a small value pool per field.
type gen struct {
	r    *rand.Rand
	base time.Time
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), base: t0}
}

func pick[T any](g *gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

func (g *gen) binding(e poolEntry) Binding {
	id, err := BindingID(e.uri, e.instance, e.regID)
	if err != nil {
		panic(err)
	}
	b := Binding{
		ID: id, URI: e.uri, Instance: e.instance, RegID: e.regID,
		Updated:   g.base.Add(pick(g, 0, time.Nanosecond, time.Second, 2*time.Second)),
		Expires:   g.base.Add(pick(g, -time.Second, 0, time.Minute, time.Hour)),
		Removed:   g.r.IntN(3) == 0,
		Node:      pick(g, "", "n1", "n2"),
		CSeq:      pick[uint32](g, 0, 1, 2),
		CallID:    pick(g, "c1", "c2"),
		Q:         pick(g, 0, 500, 1000),
		Path:      pick(g, nil, []string{"sip:p1;lr"}, []string{"sip:p1;lr", "sip:p2;lr"}, []string{"sip:p2;lr"}),
		Received:  pick(g, "", "198.51.100.1:5060"),
		Transport: pick(g, "", "udp"),
		UserAgent: pick(g, "", "ua"),
	}
	return b
}

func (g *gen) set() BindingSet {
	s := BindingSet{AoR: pick(g, "", testAoR, "sip:bob@example.com")}
	seen := map[string]bool{}
	for _, i := range g.r.Perm(len(mergePool)) {
		if g.r.IntN(2) == 0 {
			continue
		}
		b := g.binding(mergePool[i])
		if seen[b.ID] {
			continue
		}
		seen[b.ID] = true
		s.Bindings = append(s.Bindings, b)
	}
	slices.SortFunc(s.Bindings, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })
	return s
}

func requireEqual(t *testing.T, what string, a, b BindingSet) {
	t.Helper()
	if d := setDiff(a, b); d != "" {
		t.Fatalf("%s: %s\n%s---\n%s", what, d, dumpSet(a), dumpSet(b))
	}
	ea, err1 := Encode(a)
	eb, err2 := Encode(b)
	if err1 != nil || err2 != nil || !bytes.Equal(ea, eb) {
		t.Fatalf("%s: encodings differ (%v, %v)", what, err1, err2)
	}
}

func TestMergeLaws(t *testing.T) {
	g := newGen(1)
	for i := 0; i < 5000; i++ {
		a, b, c := g.set(), g.set(), g.set()
		ca, cb, cc := cloneSet(a), cloneSet(b), cloneSet(c)

		ab := Merge(a, b)
		checkWellFormed(t, ab)
		requireEqual(t, "commutative", ab, Merge(b, a))
		requireEqual(t, "associative", Merge(a, Merge(b, c)), Merge(ab, c))
		requireEqual(t, "idempotent", Merge(a, a), a)
		requireEqual(t, "absorbing", Merge(ab, b), ab)
		requireEqual(t, "empty is neutral", Merge(a, BindingSet{}), a)
		requireEqual(t, "empty is neutral", Merge(BindingSet{}, a), a)

		// Every ID of either side is kept, with one of the entries given.
		for _, x := range [][]Binding{a.Bindings, b.Bindings} {
			for _, bx := range x {
				j, ok := ab.find(bx.ID)
				if !ok {
					t.Fatalf("ID %s lost", bx.ID)
				}
				got := ab.Bindings[j]
				if bindingDiff(got, bx) != "" && !newer(&got, &bx) {
					t.Fatalf("ID %s: kept entry is not the newer one", bx.ID)
				}
			}
		}
		if len(ab.Bindings) > len(a.Bindings)+len(b.Bindings) {
			t.Fatalf("merge grew")
		}

		requireEqual(t, "input a untouched", a, ca)
		requireEqual(t, "input b untouched", b, cb)
		requireEqual(t, "input c untouched", c, cc)
	}
}

// TestMergeShortcuts: when Merge hands back an input instead of walking
// both, the result is exactly what the walk gives, field for field.
func TestMergeShortcuts(t *testing.T) {
	g := newGen(7)
	for range 5000 {
		a, b := g.set(), g.set()
		for _, pair := range [][2]BindingSet{{a, b}, {a, Merge(a, b)}, {Merge(a, b), a}, {a, {}}, {{}, a}, {a, a}} {
			x, y := pair[0], pair[1]
			got, want := Merge(x, y).Bindings, mergeBindings(x.Bindings, y.Bindings)
			if len(got) != len(want) {
				t.Fatalf("%d bindings, the walk gives %d", len(got), len(want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("binding %d: %+v, the walk gives %+v", i, got[i], want[i])
				}
			}
			if len(want) != cap(want) {
				t.Fatalf("the walk sized its result %d for %d bindings", cap(want), len(want))
			}
		}
	}
}

func TestMergeTieBreaks(t *testing.T) {
	id := mustID(t, cA)
	base := Binding{ID: id, URI: cA, Expires: at(time.Hour), Updated: t0, CallID: "c1", CSeq: 1, Q: 1000}
	newerUpdate := base
	newerUpdate.Updated = t0.Add(time.Nanosecond)
	removal := base
	removal.Removed = true
	set := func(b Binding) BindingSet { return BindingSet{AoR: testAoR, Bindings: []Binding{b}} }

	for _, tt := range []struct {
		name      string
		x, y      Binding
		wantFirst bool // x wins
	}{
		{"later Updated wins", newerUpdate, base, true},
		{"later update beats an older removal", newerUpdate, removal, true},
		{"a removal beats an update of the same nanosecond", removal, base, true},
	} {
		for _, m := range []BindingSet{Merge(set(tt.x), set(tt.y)), Merge(set(tt.y), set(tt.x))} {
			want := tt.y
			if tt.wantFirst {
				want = tt.x
			}
			if d := bindingDiff(m.Bindings[0], want); d != "" {
				t.Errorf("%s: %s", tt.name, d)
			}
		}
	}
	// The AoR of a merge is the same whatever the order, and "" yields.
	for _, p := range [][3]string{{"", testAoR, testAoR}, {testAoR, "", testAoR}, {"sip:b@x", "sip:a@x", "sip:a@x"}, {"", "", ""}} {
		if got := Merge(BindingSet{AoR: p[0]}, BindingSet{AoR: p[1]}).AoR; got != p[2] {
			t.Errorf("Merge AoR %q,%q = %q, want %q", p[0], p[1], got, p[2])
		}
	}
}

func TestCompactProperties(t *testing.T) {
	g := newGen(2)
	times := []time.Duration{-time.Hour, -time.Second, 0, time.Nanosecond, time.Minute, time.Hour, 2 * time.Hour}
	for i := 0; i < 5000; i++ {
		s := g.set()
		before := cloneSet(s)
		t1 := at(pick(g, times...))
		t2 := t1.Add(pick(g, 0, time.Second, time.Minute, time.Hour))
		c := Compact(s, t1)
		requireEqual(t, "input untouched", s, before)
		checkWellFormed(t, c)
		if c.AoR != s.AoR {
			t.Fatalf("AoR changed")
		}
		requireEqual(t, "idempotent", Compact(c, t1), c)
		requireEqual(t, "later compaction subsumes earlier", Compact(c, t2), Compact(s, t2))
		for _, b := range c.Bindings {
			if !b.Expires.After(t1) {
				t.Fatalf("kept expired %s", b.ID)
			}
			j, ok := s.find(b.ID)
			if !ok || bindingDiff(s.Bindings[j], b) != "" {
				t.Fatalf("Compact changed or invented %s", b.ID)
			}
		}
		for _, b := range s.Bindings {
			if _, ok := c.find(b.ID); !ok && b.Expires.After(t1) {
				t.Fatalf("dropped unexpired %s (only %d tombstones)", b.ID, len(tombIDs(s)))
			}
		}
		if a, b := s.Live(t1), c.Live(t1); len(a) != len(b) {
			t.Fatalf("Live changed: %d -> %d", len(a), len(b))
		} else {
			for j := range a {
				if d := bindingDiff(a[j], b[j]); d != "" {
					t.Fatalf("Live changed: %s", d)
				}
			}
		}
	}
}

func TestCompactTombstoneCap(t *testing.T) {
	s := BindingSet{AoR: testAoR}
	const nTombs = MaxTombstones + 36
	for i := 0; i < nTombs; i++ {
		uri := fmt.Sprintf("sip:alice@10.0.%d.%d", i/200, i%200)
		s.Bindings = append(s.Bindings, Binding{ID: mustID(t, uri), URI: uri, Removed: true,
			Updated: at(time.Duration(i) * time.Second), Expires: at(3 * time.Hour)})
	}
	for i := 0; i < 5; i++ {
		uri := fmt.Sprintf("sip:bob@10.1.0.%d", i)
		s.Bindings = append(s.Bindings, Binding{ID: mustID(t, uri), URI: uri, Updated: t0, Expires: at(time.Hour), Q: 1000})
	}
	// One more tombstone sharing the cutoff's timestamp: ties are kept.
	s.Bindings = append(s.Bindings, Binding{ID: mustID(t, "sip:carol@10.2.0.1"), URI: "sip:carol@10.2.0.1", Removed: true,
		Updated: at(time.Duration(nTombs-MaxTombstones) * time.Second), Expires: at(3 * time.Hour)})
	slices.SortFunc(s.Bindings, func(a, b Binding) int { return strings.Compare(a.ID, b.ID) })

	c := Compact(s, t0)
	checkWellFormed(t, c)
	if got := len(tombIDs(c)); got != MaxTombstones+1 {
		t.Errorf("kept %d tombstones, want %d (the newest %d plus a tie)", got, MaxTombstones+1, MaxTombstones)
	}
	if got := len(c.Live(t0)); got != 5 {
		t.Errorf("live %d, want 5", got)
	}
	oldestKept := at(time.Duration(nTombs-MaxTombstones) * time.Second)
	for _, b := range c.Bindings {
		if b.Removed && b.Updated.Before(oldestKept) {
			t.Errorf("kept old tombstone %s at %v", b.ID, b.Updated)
		}
	}
	requireEqual(t, "idempotent", Compact(c, t0), c)
}

// TestNoResurrection plays random REGISTER histories on a primary and hands
// replicas arbitrary subsets of the sets it wrote, in any order, compacted
// at arbitrary times. Merged with the primary and compacted at any later
// time, no replica may show live a binding that the primary removed after
// it last wrote it.
func TestNoResurrection(t *testing.T) {
	lim := testLimits()
	g := newGen(3)
	contacts := []poolEntry{
		{uri: cA}, {uri: cB}, {uri: cC},
		{uri: cD, instance: inst1, regID: 1},
		{uri: "sip:alice@198.51.100.9:6000", instance: inst1, regID: 1},
	}
	steps := []time.Duration{0, time.Nanosecond, time.Millisecond, time.Second, 30 * time.Second, 10 * time.Minute, time.Hour, 3 * time.Hour}
	expiries := []int64{-1, 0, 60, 600, 3600, 7200, 100000} // -1: no expires parameter
	checked, removedChecks := 0, 0
	for iter := 0; iter < 3000; iter++ {
		primary := BindingSet{}
		var writes []BindingSet
		lastWrite := map[string]time.Time{}
		lastRemove := map[string]time.Time{}
		cseq := map[string]uint32{}
		now := t0
		for op, n := 0, 1+g.r.IntN(14); op < n; op++ {
			now = now.Add(pick(g, steps...))
			callID := pick(g, "c1", "c2", "c3")
			seq := cseq[callID] + 1
			if g.r.IntN(5) == 0 && seq > 1 {
				seq -= uint32(1 + g.r.IntN(int(seq-1))) // a delayed request
			}
			cseq[callID] = max(cseq[callID], seq)
			req := Request{AoR: testAoR, CallID: callID, CSeq: seq}
			switch k := g.r.IntN(10); {
			case k == 0:
				req.Wildcard, req.HasExpires = true, true
			default:
				if k < 3 {
					req.HasExpires = true // Expires: 0 for contacts without a parameter
				}
				for range 1 + g.r.IntN(2) {
					e := pick(g, contacts...)
					c := Contact{URI: e.uri, Instance: e.instance, RegID: e.regID}
					if x := pick(g, expiries...); x >= 0 {
						c.Expires, c.HasExpires = x, true
					}
					req.Contacts = append(req.Contacts, c)
				}
			}
			reg, err := Check(req, lim)
			if err != nil {
				t.Fatalf("Check(%+v): %v", req, err)
			}
			next, err := Apply(primary, reg, now, lim, pick(g, "n1", "n2"))
			if err != nil {
				if k, _ := kindOf(t, err); k != KindOutOfOrder {
					t.Fatalf("Apply: %v", err)
				}
				continue
			}
			for _, b := range next.Bindings {
				if j, ok := primary.find(b.ID); ok && primary.Bindings[j].Updated.Equal(b.Updated) {
					continue // not written by this request
				}
				if b.Removed {
					lastRemove[b.ID] = b.Updated
				} else {
					lastWrite[b.ID] = b.Updated
				}
			}
			primary = next
			writes = append(writes, next)
		}
		end := now
		for range 3 {
			final := end.Add(pick(g, 0, time.Second, time.Hour, 2*time.Hour, 2*time.Hour+time.Minute, 3*time.Hour))
			replica := BindingSet{}
			for _, i := range g.r.Perm(len(writes)) {
				if g.r.IntN(2) == 0 {
					continue
				}
				replica = Merge(replica, writes[i])
				if g.r.IntN(3) == 0 {
					// A replica compacts at its own pace, never past final.
					replica = Compact(replica, t0.Add(time.Duration(g.r.Int64N(int64(final.Sub(t0))+1))))
				}
			}
			for _, m := range []BindingSet{
				Compact(Merge(primary, replica), final),
				Compact(Merge(replica, primary), final),
				Compact(Merge(Compact(primary, final), replica), final),
			} {
				checkWellFormed(t, m)
				// The primary saw every write, so no replica may change
				// what is live: not a removed binding, not an older,
				// longer version of a shortened or lapsed one.
				if got, want := liveVersions(m, final), liveVersions(primary, final); got != want {
					t.Fatalf("iteration %d at +%v: live after merge %s, primary alone %s\nprimary:\n%s\nreplica:\n%s",
						iter, final.Sub(t0), got, want, dumpSet(primary), dumpSet(replica))
				}
				for _, b := range m.Live(final) {
					checked++
					rm, removed := lastRemove[b.ID]
					if w, written := lastWrite[b.ID]; removed && (!written || rm.After(w)) {
						t.Fatalf("iteration %d: %s live at +%v, removed at +%v after its last write\nprimary:\n%s\nreplica:\n%s",
							iter, b.ID, final.Sub(t0), rm.Sub(t0), dumpSet(primary), dumpSet(replica))
					}
				}
				for id, rm := range lastRemove {
					if w, ok := lastWrite[id]; !ok || rm.After(w) {
						removedChecks++
					}
				}
			}
		}
	}
	if checked == 0 || removedChecks == 0 {
		t.Fatalf("the generator exercised nothing: %d live checked, %d removals", checked, removedChecks)
	}
	t.Logf("%d live bindings checked against %d removals", checked, removedChecks)
}

// liveVersions renders the live bindings of s at now by ID and version.
func liveVersions(s BindingSet, now time.Time) string {
	var b strings.Builder
	for _, x := range s.Bindings {
		if x.Live(now) {
			fmt.Fprintf(&b, "%s@%d ", x.ID, x.Updated.UnixNano())
		}
	}
	return b.String()
}

// TestStaleReplicaCannotRestoreShortenedBinding: when a UA shortens its
// registration (refresh with a smaller expires) and lets it lapse, a replica
// that only saw the older, longer binding must not bring it back through a
// merge: the lapsed entry is retained, not live, and still supersedes it.
func TestStaleReplicaCannotRestoreShortenedBinding(t *testing.T) {
	lim := testLimits()
	apply := func(cur BindingSet, req Request, now time.Time) BindingSet {
		t.Helper()
		reg, err := Check(req, lim)
		if err != nil {
			t.Fatal(err)
		}
		next, err := Apply(cur, reg, now, lim, "n1")
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	w1 := apply(BindingSet{}, register("c1", 1, cs(con(cA, exp(7200)))), t0)
	replica := w1                                                                            // saw only the first write
	primary := apply(w1, register("c1", 2, cs(con(cA, exp(60)))), at(time.Minute))           // shortened: lapses at +2m
	primary = apply(primary, register("c1", 3, nil, wildcard, hdrExp(0)), at(5*time.Minute)) // lapsed, so nothing to remove
	if len(primary.Live(at(5*time.Minute))) != 0 {
		t.Fatalf("primary has live bindings")
	}
	for _, d := range []time.Duration{5 * time.Minute, time.Hour, 119 * time.Minute} {
		merged := Compact(Merge(primary, replica), at(d))
		if got := merged.Live(at(d)); len(got) != 0 {
			t.Fatalf("at +%v a stale replica brought back %v", d, got)
		}
		// Compacting first (the primary forgot nothing it still needs) too.
		if got := Merge(Compact(primary, at(d)), replica).Live(at(d)); len(got) != 0 {
			t.Fatalf("at +%v, compacted primary merged with stale replica shows %v", d, got)
		}
	}
}

func encodeSeed(f *testing.F, s BindingSet) []byte {
	data, err := Encode(s)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzMerge decodes three fuzzed values into binding sets (an undecodable
// one counts as empty) and checks the merge laws on them.
func FuzzMerge(f *testing.F) {
	g := newGen(4)
	for range 8 {
		f.Add(encodeSeed(f, g.set()), encodeSeed(f, g.set()), encodeSeed(f, g.set()))
	}
	f.Add([]byte{}, []byte{formatV1}, []byte{0xff})
	f.Fuzz(func(t *testing.T, da, db, dc []byte) {
		var sets [3]BindingSet
		ok := 0
		for i, d := range [][]byte{da, db, dc} {
			if s, err := Decode(d); err == nil {
				sets[i] = s
				ok++
			}
		}
		if ok == 0 {
			return
		}
		a, b, c := sets[0], sets[1], sets[2]
		ca := cloneSet(a)
		ab := Merge(a, b)
		checkWellFormed(t, ab)
		requireEqual(t, "commutative", ab, Merge(b, a))
		requireEqual(t, "associative", Merge(a, Merge(b, c)), Merge(ab, c))
		requireEqual(t, "idempotent", Merge(a, a), a)
		requireEqual(t, "input untouched", a, ca)
		now := t0
		if len(a.Bindings) > 0 {
			now = a.Bindings[0].Expires
		}
		cp := Compact(ab, now)
		checkWellFormed(t, cp)
		requireEqual(t, "compact idempotent", Compact(cp, now), cp)
	})
}

// FuzzDecode: arbitrary bytes never panic, and whatever decodes is a valid
// set that round-trips.
func FuzzDecode(f *testing.F) {
	g := newGen(5)
	for range 8 {
		f.Add(encodeSeed(f, g.set()))
	}
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Add([]byte{2, 0x0a, 0x00})
	f.Add([]byte{formatV1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		checkWellFormed(t, s)
		for _, b := range s.Bindings {
			id, err := BindingID(b.URI, b.Instance, b.RegID)
			if err != nil || id != b.ID {
				t.Fatalf("binding ID %q does not match its URI %q: %q, %v", b.ID, b.URI, id, err)
			}
			if b.Q < 0 || b.Q > 1000 {
				t.Fatalf("q %d", b.Q)
			}
		}
		enc, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode of a decoded set: %v", err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode of an encoded set: %v", err)
		}
		requireEqual(t, "round trip", back, s)
		enc2, _ := Encode(back)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable")
		}
	})
}
