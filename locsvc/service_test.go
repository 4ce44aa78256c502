package locsvc

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func newTestService(t *testing.T, lim Limits) (*Service, *MemStore, *fakeClock) {
	t.Helper()
	clock := newClock(t0)
	store := newTestMemStore(t, clock)
	svc, err := NewService(store, lim, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	svc.now = clock.Now
	return svc, store, clock
}

func resultURIs(r Result) []string {
	var out []string
	for _, b := range r.Bindings {
		out = append(out, b.URI)
	}
	return out
}

func TestServiceRegisterLookup(t *testing.T) {
	ctx := context.Background()
	svc, store, clock := newTestService(t, testLimits())
	if svc.Limits() != testLimits() {
		t.Errorf("Limits() = %+v", svc.Limits())
	}

	req := register("c1", 1, cs(con(cA, exp(600))))
	req.AoR = "sip:%61lice@EXAMPLE.com;transport=tcp"
	res, err := svc.Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.AoR != testAoR || !res.Now.Equal(t0) || len(res.Bindings) != 1 || res.Bindings[0].URI != cA {
		t.Fatalf("Register: %+v", res)
	}
	if b := res.Bindings[0]; b.Node != "node-1" || !b.Expires.Equal(at(600*time.Second)) {
		t.Errorf("binding: %+v", b)
	}
	if store.Len() != 1 {
		t.Errorf("store Len = %d", store.Len())
	}

	clock.Set(at(time.Second))
	res, err = svc.Register(ctx, register("c2", 1, cs(con(cB, qv(0.5)))))
	if err != nil {
		t.Fatal(err)
	}
	if got := resultURIs(res); len(got) != 2 || got[0] != cA || got[1] != cB {
		t.Errorf("Register result order: %q", got)
	}

	// Lookup by any spelling of the AoR.
	for _, aor := range []string{testAoR, "sips:alice@example.com", "sip:alice@Example.COM;user=phone?x=y"} {
		res, err = svc.Lookup(ctx, aor)
		if err != nil {
			t.Fatal(err)
		}
		if got := resultURIs(res); res.AoR != testAoR || len(got) != 2 || got[0] != cA || got[1] != cB {
			t.Errorf("Lookup(%q): %q", aor, got)
		}
	}

	// A query REGISTER returns the same and writes nothing.
	before := contents(store)
	res, err = svc.Register(ctx, Request{AoR: testAoR})
	if err != nil || len(res.Bindings) != 2 {
		t.Errorf("query: %+v, %v", res, err)
	}
	if d := contentsDiff(contents(store), before); d != "" {
		t.Errorf("query changed the store: %s", d)
	}

	// After expiry: gone.
	clock.Set(at(600 * time.Second))
	res, err = svc.Lookup(ctx, testAoR)
	if got := resultURIs(res); err != nil || len(got) != 1 || got[0] != cB {
		t.Errorf("after cA expired: %q, %v", got, err)
	}
	clock.Set(at(time.Hour + time.Second))
	res, err = svc.Lookup(ctx, testAoR)
	if err != nil || len(res.Bindings) != 0 || !res.Now.Equal(at(time.Hour+time.Second)) {
		t.Errorf("after all expired: %+v, %v", res, err)
	}
	// Lapsed entries are retained (not live) so stale replicas cannot bring
	// them back; the record goes once retention is over.
	store.Sweep()
	if store.Len() != 1 {
		t.Errorf("store Len after sweep within retention = %d, want 1", store.Len())
	}
	clock.Set(at(time.Hour + svc.Limits().MaxExpires + tombstoneMargin + 2*time.Second))
	store.Sweep()
	if store.Len() != 0 {
		t.Errorf("store Len after sweep past retention = %d", store.Len())
	}
}

func TestServiceRemove(t *testing.T) {
	ctx := context.Background()
	svc, _, clock := newTestService(t, testLimits())
	if _, err := svc.Register(ctx, register("c1", 1, cs(con(cA), con(cB)))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	res, err := svc.Register(ctx, register("c1", 2, cs(con(cA, exp(0)))))
	if got := resultURIs(res); err != nil || len(got) != 1 || got[0] != cB {
		t.Errorf("after removal: %q, %v", got, err)
	}
	clock.Advance(time.Second)
	res, err = svc.Register(ctx, register("c1", 3, nil, wildcard, hdrExp(0)))
	if err != nil || len(res.Bindings) != 0 {
		t.Errorf("after wildcard: %+v, %v", res, err)
	}
	// The delayed CSeq 2 cannot bring cB back.
	if _, err := svc.Register(ctx, register("c1", 2, cs(con(cB)))); err == nil {
		t.Errorf("delayed REGISTER accepted")
	}
	if res, _ := svc.Lookup(ctx, testAoR); len(res.Bindings) != 0 {
		t.Errorf("lookup: %q", resultURIs(res))
	}
}

func TestServiceRefusedLeavesStoreUnchanged(t *testing.T) {
	ctx := context.Background()
	lim := testLimits()
	lim.MaxContacts = 2
	tests := []struct {
		name  string
		req   Request
		kind  Kind
		field string
	}{
		{"invalid", register("c2", 1, cs(con("sip:bad uri"))), KindInvalid, "contacts[0].uri"},
		{"invalid AoR", func() Request { r := register("c2", 1, cs(con(cC))); r.AoR = "tel:+1"; return r }(), KindInvalid, "aor"},
		{"interval too brief", register("c2", 1, cs(con(cC, exp(30)))), KindIntervalTooBrief, "contacts[0].expires"},
		{"too many contacts", register("c2", 1, cs(con(cC))), KindTooManyContacts, "contacts"},
		{"too many in one request", register("c2", 1, cs(con(cA), con(cB), con(cC))), KindTooManyContacts, "contacts"},
		{"out of order", register("c1", 5, cs(con(cA, exp(0)))), KindOutOfOrder, "cseq"},
		{"out of order wildcard", register("c1", 4, nil, wildcard, hdrExp(0)), KindOutOfOrder, "cseq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, store, clock := newTestService(t, lim)
			if _, err := svc.Register(ctx, register("c1", 5, cs(con(cA), con(cB)))); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			before := contents(store)
			res, err := svc.Register(ctx, tt.req)
			kind, field := kindOf(t, err)
			if kind != tt.kind || field != tt.field {
				t.Errorf("got %s %q (%v), want %s %q", kindName(kind), field, err, kindName(tt.kind), tt.field)
			}
			if res.AoR != "" || res.Bindings != nil {
				t.Errorf("refused request returned %+v", res)
			}
			if d := contentsDiff(contents(store), before); d != "" {
				t.Errorf("store changed: %s", d)
			}
		})
	}
}

func TestServiceLookupErrors(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newTestService(t, testLimits())
	res, err := svc.Lookup(ctx, "sip:nobody@example.com")
	if err != nil || len(res.Bindings) != 0 || res.AoR != "sip:nobody@example.com" {
		t.Errorf("unknown AoR: %+v, %v", res, err)
	}
	long := "sip:" + string(make([]byte, 600)) + "@example.com"
	for _, aor := range []string{"", "tel:+15551234", "sip:example.com", "<sip:alice@example.com>", long} {
		_, err := svc.Lookup(ctx, aor)
		if kind, field := kindOf(t, err); kind != KindInvalid || field != "aor" {
			t.Errorf("Lookup(%.30q): %s %q (%v)", aor, kindName(kind), field, err)
		}
	}
}

// failingStore fails reads, writes or both, and counts writes that got
// through to the wrapped store. Update fails its read like Get and its
// write after change ran, as a replicated store whose quorum is lost would.
type failingStore struct {
	Store
	failGet, failMerge bool
	merges             atomic.Int32
}

var errStoreDown = errors.New("memcached: connection refused")

func (f *failingStore) Get(ctx context.Context, key string) (BindingSet, error) {
	if f.failGet {
		return BindingSet{}, errStoreDown
	}
	return f.Store.Get(ctx, key)
}

func (f *failingStore) Update(ctx context.Context, key string, change func(BindingSet) (BindingSet, error)) (BindingSet, error) {
	if f.failGet {
		return BindingSet{}, errStoreDown
	}
	if f.failMerge {
		cur, err := f.Store.Get(ctx, key)
		if err != nil {
			return BindingSet{}, err
		}
		if _, err := change(cur); err != nil {
			return BindingSet{}, err
		}
		return BindingSet{}, errStoreDown
	}
	f.merges.Add(1)
	return f.Store.Update(ctx, key, change)
}

func TestServiceUnavailable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name               string
		failGet, failMerge bool
	}{
		{"get and merge fail", true, true},
		{"get fails", true, false},
		{"merge fails", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock(t0)
			mem := newTestMemStore(t, clock)
			fs := &failingStore{Store: mem}
			svc, err := NewService(fs, testLimits(), "node-1")
			if err != nil {
				t.Fatal(err)
			}
			svc.now = clock.Now
			if _, err := svc.Register(ctx, register("c1", 1, cs(con(cA)))); err != nil {
				t.Fatal(err)
			}
			before := contents(mem)
			fs.failGet, fs.failMerge = tc.failGet, tc.failMerge

			_, err = svc.Register(ctx, register("c1", 2, cs(con(cB))))
			e, ok := AsError(err)
			if !ok || e.Kind != KindUnavailable || !errors.Is(err, errStoreDown) || e.SIPCode() != 503 {
				t.Errorf("Register: %v", err)
			}
			if d := contentsDiff(contents(mem), before); d != "" {
				t.Errorf("store changed: %s", d)
			}
			_, err = svc.Lookup(ctx, testAoR)
			if tc.failGet {
				if k, _ := kindOf(t, err); k != KindUnavailable || !errors.Is(err, errStoreDown) {
					t.Errorf("Lookup: %v", err)
				}
			} else if err != nil {
				t.Errorf("Lookup: %v", err)
			}
			// Invalid input is refused before any I/O, as invalid.
			_, err = svc.Register(ctx, register("c1", 3, cs(con("sip:bad uri"))))
			if k, _ := kindOf(t, err); k != KindInvalid {
				t.Errorf("invalid request with the store down: %v", err)
			}
			if fs.merges.Load() != 1 {
				t.Errorf("merges reached the store: %d, want 1", fs.merges.Load())
			}
		})
	}
}

func TestNewServiceRejectsBadLimits(t *testing.T) {
	lim := testLimits()
	lim.MaxContacts = 0
	m := NewMemStore(nil, time.Minute)
	defer m.Close()
	if _, err := NewService(m, lim, "n"); err == nil {
		t.Error("NewService accepted invalid limits")
	}
}

// Known tells a user who registered recently from one never seen, so a
// front end can answer 480 rather than 404.
func TestLookupKnown(t *testing.T) {
	store := NewMemStore(nil, time.Minute)
	defer store.Close()
	svc, err := NewService(store, DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res, err := svc.Lookup(ctx, "sip:carol@example.com"); err != nil || res.Known {
		t.Fatalf("unknown AoR: %+v, %v", res, err)
	}
	for cseq, exp := range []int64{3600, 0} {
		if _, err := svc.Register(ctx, Request{AoR: "sip:carol@example.com", CallID: "c", CSeq: uint32(cseq + 1),
			Contacts: []Contact{{URI: "sip:carol@192.0.2.1", Expires: exp, HasExpires: true}}}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := svc.Lookup(ctx, "sip:carol@example.com")
	if err != nil || !res.Known || len(res.Bindings) != 0 {
		t.Fatalf("after register and remove: %+v, %v", res, err)
	}
}
