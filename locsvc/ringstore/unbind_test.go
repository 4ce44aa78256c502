package ringstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// An Unbind on the replicated store costs what a REGISTER does when it
// removes something, and only the read when it removes nothing: a removal
// of nothing sends no storage command to any replica.
func TestUnbindRoundTrips(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	svc, err := locsvc.NewService(st, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const aor = "sip:unbind@example.com"
	register(t, st, aor, "sip:unbind@192.0.2.1", 1)
	register(t, st, aor, "sip:unbind@192.0.2.2", 1)
	seen, err := svc.Lookup(ctx, aor)
	if err != nil || len(seen.Bindings) != 2 {
		t.Fatalf("Lookup: %+v, %v", seen, err)
	}
	b := seen.Bindings[0]
	stale := []locsvc.BindingRef{{ID: b.ID, Updated: b.Updated.Add(-time.Nanosecond)}}
	exact := []locsvc.BindingRef{{ID: b.ID, Updated: b.Updated}}

	for i, step := range []struct {
		refs          []locsvc.BindingRef
		removed, live int
		gets, sets    int64
	}{
		{stale, 0, 2, 2, 0},
		{exact, 1, 1, 2, 2},
		{exact, 0, 1, 2, 0}, // the same again: already removed
	} {
		g0, s0 := memcachedOps(t, ms)
		res, n, err := svc.Unbind(ctx, aor, step.refs)
		g1, s1 := memcachedOps(t, ms)
		if err != nil || n != step.removed || len(res.Bindings) != step.live {
			t.Fatalf("step %d: removed %d with %d live, %v; want %d with %d live", i, n, len(res.Bindings), err, step.removed, step.live)
		}
		if g1-g0 != step.gets || s1-s0 != step.sets {
			t.Errorf("step %d: %d gets and %d stores, want %d and %d", i, g1-g0, s1-s0, step.gets, step.sets)
		}
	}
	if got := liveURIs(t, st, aor); len(got) != 1 || got[0] == b.URI {
		t.Errorf("live after Unbind: %q", got)
	}

	// A replica that lost the record is not written either: a removal of
	// nothing is no write at all, not a repair (read repair and repair
	// passes do that).
	key := locsvc.StoreKey(aor)
	var lost string
	for _, m := range ms {
		if holders(t, key, ms)[m.Addr] {
			if err := m.Client().Delete(key); err != nil {
				t.Fatal(err)
			}
			lost = m.Addr
			break
		}
	}
	_, s0 := memcachedOps(t, ms)
	if _, n, err := svc.Unbind(ctx, aor, exact); err != nil || n != 0 {
		t.Fatalf("Unbind with a replica lost: %d, %v", n, err)
	}
	if _, s1 := memcachedOps(t, ms); s1 != s0 || holders(t, key, ms)[lost] {
		t.Errorf("a removal of nothing wrote %d time(s)", s1-s0)
	}
}
