package locsvc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func newTestMemStore(t *testing.T, clock *fakeClock) *MemStore {
	t.Helper()
	m := NewMemStore(clock.Now, time.Hour) // the tests sweep by hand
	t.Cleanup(func() { m.Close() })
	return m
}

// contents snapshots everything a MemStore holds, expired records included.
func contents(m *MemStore) map[string]BindingSet {
	out := map[string]BindingSet{}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, s := range sh.sets {
			out[k] = cloneSet(s)
		}
		sh.mu.Unlock()
	}
	return out
}

func contentsDiff(a, b map[string]BindingSet) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d records != %d records", len(a), len(b))
	}
	for k, s := range a {
		o, ok := b[k]
		if !ok {
			return "missing " + k
		}
		if d := setDiff(s, o); d != "" {
			return k + ": " + d
		}
	}
	return ""
}

func liveBinding(t testing.TB, uri string, updated time.Time, expires time.Duration) Binding {
	return Binding{ID: mustID(t, uri), URI: uri, Updated: updated, Expires: updated.Add(expires), Q: 1000, CallID: "c1", CSeq: 1}
}

func one(b Binding) BindingSet { return BindingSet{AoR: testAoR, Bindings: []Binding{b}} }

func TestMemStoreGetMissing(t *testing.T) {
	m := newTestMemStore(t, newClock(t0))
	s, err := m.Get(context.Background(), StoreKey(testAoR))
	if err != nil {
		t.Fatal(err)
	}
	if s.AoR != "" || len(s.Bindings) != 0 {
		t.Errorf("missing key: %s", dumpSet(s))
	}
	if m.Len() != 0 {
		t.Errorf("Len = %d", m.Len())
	}
}

func TestMemStoreMergeGet(t *testing.T) {
	ctx := context.Background()
	clock := newClock(t0)
	m := newTestMemStore(t, clock)
	key := StoreKey(testAoR)
	a := liveBinding(t, cA, t0, time.Hour)
	b := liveBinding(t, cB, t0, time.Hour)
	got, err := m.Merge(ctx, key, one(a))
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, "first merge", got, one(a))
	got, err = m.Merge(ctx, key, one(b))
	if err != nil {
		t.Fatal(err)
	}
	want := Merge(one(a), one(b))
	requireEqual(t, "second merge", got, want)
	s, err := m.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, "get", s, want)

	// An older write of a binding does not override a newer one.
	stale := a
	stale.Updated, stale.Q = t0.Add(-time.Second), 1
	got, _ = m.Merge(ctx, key, one(stale))
	requireEqual(t, "stale merge", got, want)

	// Other keys are separate.
	if s, _ := m.Get(ctx, StoreKey("sip:bob@example.com")); len(s.Bindings) != 0 {
		t.Errorf("other key: %s", dumpSet(s))
	}

	// Callers own what they get back.
	s.Bindings[0].URI = "changed"
	got.Bindings[0].URI = "changed"
	if s2, _ := m.Get(ctx, key); setDiff(s2, want) != "" {
		t.Errorf("editing a result edited the store: %s", setDiff(s2, want))
	}
	if m.Len() != 1 {
		t.Errorf("Len = %d", m.Len())
	}
}

func TestMemStoreExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newClock(t0)
	m := newTestMemStore(t, clock)
	k1, k2, k3 := StoreKey("sip:one@example.com"), StoreKey("sip:two@example.com"), StoreKey("sip:three@example.com")
	m.Merge(ctx, k1, one(liveBinding(t, cA, t0, time.Minute)))
	m.Merge(ctx, k2, Merge(one(liveBinding(t, cA, t0, time.Minute)), one(liveBinding(t, cB, t0, time.Hour))))
	tomb := liveBinding(t, cC, t0, 2*time.Hour)
	tomb.Removed = true
	m.Merge(ctx, k3, one(tomb))
	if m.Len() != 3 {
		t.Fatalf("Len = %d", m.Len())
	}

	clock.Set(at(time.Minute)) // cA lapses at exactly +1m
	m.Sweep()
	if m.Len() != 2 {
		t.Errorf("after +1m sweep: Len = %d, want 2", m.Len())
	}
	if s, _ := m.Get(ctx, k1); len(s.Bindings) != 0 {
		t.Errorf("k1 after expiry: %s", dumpSet(s))
	}
	if s, _ := m.Get(ctx, k2); len(s.Bindings) != 1 || s.Bindings[0].URI != cB {
		t.Errorf("k2 after +1m: %s", dumpSet(s))
	}

	// Get hides expired records before the sweeper removes them.
	clock.Set(at(time.Hour))
	if s, _ := m.Get(ctx, k2); len(s.Bindings) != 0 {
		t.Errorf("k2 after +1h: %s", dumpSet(s))
	}
	if m.Len() != 2 {
		t.Errorf("before sweep: Len = %d", m.Len())
	}
	m.Sweep()
	if m.Len() != 1 {
		t.Errorf("after +1h sweep: Len = %d, want 1 (the tombstone)", m.Len())
	}
	if s, _ := m.Get(ctx, k3); len(s.Bindings) != 1 || !s.Bindings[0].Removed {
		t.Errorf("tombstone: %s", dumpSet(s))
	}
	clock.Set(at(2 * time.Hour))
	m.Sweep()
	if m.Len() != 0 {
		t.Errorf("after the tombstone lapsed: Len = %d", m.Len())
	}

	// A merge that leaves nothing leaves no record behind.
	m.Merge(ctx, k1, one(liveBinding(t, cA, t0, time.Minute)))
	if m.Len() != 0 {
		t.Errorf("merging an expired set stored it")
	}
}

func TestMemStoreSweeperRuns(t *testing.T) {
	clock := newClock(t0)
	m := NewMemStore(clock.Now, time.Millisecond)
	defer m.Close()
	m.Merge(context.Background(), "k", one(liveBinding(t, cA, t0, time.Minute)))
	clock.Set(at(time.Hour))
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not remove the expired record")
		}
		time.Sleep(time.Millisecond)
	}
}

// Many writers merging different contacts into one key lose nothing, while
// readers and the sweeper run. Run with -race.
func TestMemStoreConcurrentMerges(t *testing.T) {
	ctx := context.Background()
	clock := newClock(t0)
	m := NewMemStore(clock.Now, time.Millisecond)
	defer m.Close()
	key := StoreKey(testAoR)
	const writers, perWriter = 32, 20
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := m.Get(ctx, key)
				if err != nil {
					t.Error(err)
					return
				}
				for i := 1; i < len(s.Bindings); i++ {
					if s.Bindings[i-1].ID >= s.Bindings[i].ID {
						t.Error("unsorted read")
						return
					}
				}
				m.Sweep()
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				uri := fmt.Sprintf("sip:alice@10.%d.%d.1", w, i)
				b := liveBinding(t, uri, t0.Add(time.Duration(i)), time.Hour)
				if _, err := m.Merge(ctx, key, one(b)); err != nil {
					t.Error(err)
					return
				}
				// A refresh of the same binding, racing with the others.
				b.Updated = b.Updated.Add(time.Second)
				b.CSeq = 2
				if _, err := m.Merge(ctx, key, one(b)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	s, err := m.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, s)
	if len(s.Bindings) != writers*perWriter {
		t.Fatalf("got %d bindings, want %d", len(s.Bindings), writers*perWriter)
	}
	for _, b := range s.Bindings {
		if b.CSeq != 2 {
			t.Errorf("%s: refresh lost", b.ID)
		}
	}
}

func TestMemStoreClose(t *testing.T) {
	m := NewMemStore(nil, time.Minute)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Concurrent Close calls must not panic either.
	m = NewMemStore(nil, time.Minute)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Close()
		}()
	}
	wg.Wait()
	// The store still answers after Close; only the sweeper stopped.
	if _, err := m.Merge(context.Background(), "k", one(liveBinding(t, cA, time.Now(), time.Hour))); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Get(context.Background(), "k"); len(s.Bindings) != 1 {
		t.Errorf("after Close: %s", dumpSet(s))
	}
}

func TestMemStoreNonPositiveSweep(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		m := NewMemStore(nil, d) // must not panic in the sweeper goroutine
		time.Sleep(time.Millisecond)
		m.Close()
	}
}

var _ Store = (*MemStore)(nil)
