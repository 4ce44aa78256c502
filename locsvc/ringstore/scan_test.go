package ringstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
)

// scanned runs a scan and returns the live contacts of each AoR it
// handed over, failing the test on an AoR handed over twice.
func scanned(t *testing.T, st *ringstore.Store, opt ringstore.ScanOptions) (map[string][]string, error) {
	t.Helper()
	got := map[string][]string{}
	err := st.Scan(context.Background(), opt, func(set locsvc.BindingSet) error {
		if _, dup := got[set.AoR]; dup {
			t.Errorf("%s handed over twice", set.AoR)
		}
		var uris []string
		for _, b := range set.Live(time.Now()) {
			uris = append(uris, b.URI)
		}
		slices.Sort(uris)
		got[set.AoR] = uris
		return nil
	})
	return got, err
}

func scanAoR(i int) string     { return fmt.Sprintf("sip:scan%d@example.com", i) }
func scanContact(i int) string { return fmt.Sprintf("sip:scan%d@192.0.2.1", i) }

// The scans of each shard's own records split the ring between them; a
// scan of the whole ring hands over every record once, merged across its
// replicas.
func TestScanEachRecordOnce(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const n = 600
	for i := range n {
		register(t, st, scanAoR(i), scanContact(i), 1)
	}
	// AoR 0's first replica misses its newer binding: the scan, which
	// reads through the store, shows it all the same.
	key := locsvc.StoreKey(scanAoR(0))
	first := memcache.New(src.Ring().ReplicaSet(key, 1, nil)[0].Addr)
	old, err := first.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	register(t, st, scanAoR(0), "sip:scan0@192.0.2.2", 2)
	if err := first.Set(old); err != nil {
		t.Fatal(err)
	}

	// Each shard's own records, as it holds them (Local): together the
	// whole ring, once; AoR 0 as its stale first replica holds it.
	total := 0
	seen := map[string]string{}
	for _, m := range ms {
		part, err := scanned(t, st, ringstore.ScanOptions{Shards: []string{m.Addr}, Rate: 1_000_000, Local: true})
		if err != nil {
			t.Fatal(err)
		}
		for aor := range part {
			if other, ok := seen[aor]; ok {
				t.Errorf("%s scanned as first on %s and on %s", aor, other, m.Addr)
			}
			seen[aor] = m.Addr
		}
		if uris, ok := part[scanAoR(0)]; ok && !slices.Equal(uris, []string{scanContact(0)}) {
			t.Errorf("local scan of AoR 0: %q, want its first replica's stale copy", uris)
		}
		t.Logf("first on %s: %d records", m.Addr, len(part))
		total += len(part)
	}
	if total != n {
		t.Errorf("the shards' own scans hold %d records together, want %d", total, n)
	}

	// The whole ring, each record merged across its replicas.
	got, err := scanned(t, st, ringstore.ScanOptions{Rate: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("scanned %d AoRs, want %d", len(got), n)
	}
	for i := range n {
		want := []string{scanContact(i)}
		if i == 0 {
			want = append(want, "sip:scan0@192.0.2.2")
		}
		if !slices.Equal(got[scanAoR(i)], want) {
			t.Errorf("%s: %q, want %q", scanAoR(i), got[scanAoR(i)], want)
		}
	}
}

// A shard the ring marks down owns nothing: its records are handed over
// by their next replica, once each.
func TestScanPastADownShard(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const n = 300
	for i := range n {
		register(t, st, scanAoR(i), scanContact(i), 1)
	}
	ms[0].Kill()
	src.mu.Lock()
	src.r = ring.New([]ring.Shard{
		{ID: ms[0].Addr, Addr: ms[0].Addr, Node: "n0"},
		{ID: ms[1].Addr, Addr: ms[1].Addr, Node: "n1", Healthy: true},
		{ID: ms[2].Addr, Addr: ms[2].Addr, Node: "n2", Healthy: true},
	})
	src.mu.Unlock()
	got, err := scanned(t, st, ringstore.ScanOptions{Rate: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("scanned %d AoRs with a shard down, want %d", len(got), n)
	}
}

// A shard that cannot be listed is named in the error, after the others'
// records have been handed over.
func TestScanReportsAShardItCannotList(t *testing.T) {
	ms := startShards(t, 2)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2, Timeout: 200 * time.Millisecond})
	defer st.Close()
	const n = 200
	for i := range n {
		register(t, st, scanAoR(i), scanContact(i), 1)
	}
	// The ring still calls the dead shard healthy, as it does until
	// gossip notices.
	dead := ms[0].Addr
	ms[0].Kill()
	got, err := scanned(t, st, ringstore.ScanOptions{Rate: 1_000_000})
	if err == nil || !strings.Contains(err.Error(), dead) {
		t.Fatalf("scan with %s dead: %v, want an error naming it", dead, err)
	}
	if len(got) == 0 || len(got) == n {
		t.Errorf("scanned %d of %d AoRs: want those first on the live shard only", len(got), n)
	}
	t.Logf("%d AoRs scanned; %v", len(got), err)
}

// The ring changing under a scan never makes it hand a record over twice:
// the snapshot taken at its start decides. The scan's context and fn's
// error end it.
func TestScanRingChangeAndStop(t *testing.T) {
	ms := startShards(t, 4)
	src := &staticRing{}
	src.set(ms[:3]...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const n = 600
	for i := range n {
		register(t, st, scanAoR(i), scanContact(i), 1)
	}
	// Every record on every shard, the new one included, so that a scan
	// that followed the new ring would meet each one twice.
	for i := range n {
		key := locsvc.StoreKey(scanAoR(i))
		it, err := memcache.New(src.Ring().ReplicaSet(key, 1, nil)[0].Addr).Get(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if err := memcache.New(m.Addr).Set(it); err != nil {
				t.Fatal(err)
			}
		}
	}
	changed := false
	got := map[string]bool{}
	err := st.Scan(context.Background(), ringstore.ScanOptions{Rate: 1_000_000}, func(set locsvc.BindingSet) error {
		if got[set.AoR] {
			t.Errorf("%s handed over twice", set.AoR)
		}
		got[set.AoR] = true
		if !changed {
			src.set(ms[3], ms[1], ms[0]) // one shard out, one in
			changed = true
		}
		return nil
	})
	if err != nil || len(got) != n {
		t.Errorf("scan across a ring change: %d of %d AoRs, %v", len(got), n, err)
	}

	stop := errors.New("enough")
	calls := 0
	err = st.Scan(context.Background(), ringstore.ScanOptions{Rate: 1_000_000}, func(locsvc.BindingSet) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("scan after fn failed: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	calls = 0
	err = st.Scan(ctx, ringstore.ScanOptions{Rate: 50}, func(locsvc.BindingSet) error { calls++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || calls >= n {
		t.Errorf("scan at 50/s for 100ms: %v after %d records", err, calls)
	}
}

var _ locsvc.Walker = (*ringstore.Store)(nil)
