package ringstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/locsvc/locsvc/integration"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
	"github.com/locsvc/locsvc/ring"
)

// staticRing is a RingSource whose ring a test swaps by hand.
type staticRing struct {
	mu sync.Mutex
	r  *ring.Ring
}

func (s *staticRing) Ring() *ring.Ring {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r
}

func (s *staticRing) set(shards ...*integration.Memcached) {
	var list []ring.Shard
	for _, m := range shards {
		list = append(list, ring.Shard{ID: m.Addr, Addr: m.Addr, Node: "n-" + m.Addr, Healthy: true})
	}
	s.mu.Lock()
	s.r = ring.New(list)
	s.mu.Unlock()
}

func startShards(t testing.TB, n int) []*integration.Memcached {
	var ms []*integration.Memcached
	for range n {
		ms = append(ms, integration.StartMemcached(t))
	}
	return ms
}

// register applies one REGISTER through the registrar rules, as the
// service does, and merges the result into st.
func register(t testing.TB, st locsvc.Store, aor, contact string, cseq uint32) {
	t.Helper()
	lim := locsvc.DefaultLimits()
	reg, err := locsvc.Check(locsvc.Request{AoR: aor, CallID: "cid-" + contact, CSeq: cseq,
		Contacts: []locsvc.Contact{{URI: contact}}}, lim)
	if err != nil {
		t.Fatal(err)
	}
	key := locsvc.StoreKey(reg.AoR)
	_, err = st.Update(context.Background(), key, func(cur locsvc.BindingSet) (locsvc.BindingSet, error) {
		return locsvc.Apply(cur, reg, time.Now(), lim, "test")
	})
	if err != nil {
		t.Fatalf("register %s: %v", aor, err)
	}
}

func liveURIs(t testing.TB, st locsvc.Store, aor string) []string {
	t.Helper()
	set, err := st.Get(context.Background(), locsvc.StoreKey(aor))
	if err != nil {
		t.Fatalf("get %s: %v", aor, err)
	}
	var out []string
	for _, b := range set.Live(time.Now()) {
		out = append(out, b.URI)
	}
	return out
}

// holders lists the shards that hold key, read directly from memcached.
func holders(t testing.TB, key string, ms []*integration.Memcached) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range ms {
		_, err := m.Client().Get(key)
		if err == nil {
			out[m.Addr] = true
		} else if err != memcache.ErrCacheMiss {
			t.Logf("read %s from %s: %v", key, m.Addr, err)
		}
	}
	return out
}

func TestWritesLandOnTheReplicaSet(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()

	for i := range 200 {
		register(t, st, fmt.Sprintf("sip:u%d@example.com", i), fmt.Sprintf("sip:u%d@192.0.2.1", i), 1)
	}
	per := map[string]int{}
	for i := range 200 {
		aor := fmt.Sprintf("sip:u%d@example.com", i)
		key := locsvc.StoreKey(aor)
		want := src.Ring().ReplicaSet(key, 2, nil)
		got := holders(t, key, ms)
		if len(got) != 2 || !got[want[0].Addr] || !got[want[1].Addr] {
			t.Fatalf("%s is on %v, want exactly its replica set %v", aor, got, want)
		}
		for a := range got {
			per[a]++
		}
		if uris := liveURIs(t, st, aor); len(uris) != 1 {
			t.Fatalf("%s: %v", aor, uris)
		}
	}
	for _, m := range ms {
		if per[m.Addr] < 80 {
			t.Errorf("shard %s holds only %d of 400 copies: %v", m.Addr, per[m.Addr], per)
		}
	}
}

// A dead shard fails no read and no write: calls fall over to the next
// shard on the ring.
func TestShardDownFailsNothing(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2, Timeout: 200 * time.Millisecond})
	defer st.Close()
	for i := range 100 {
		register(t, st, fmt.Sprintf("sip:d%d@example.com", i), "sip:d@192.0.2.1", 1)
	}
	ms[1].Kill()
	for i := range 100 {
		aor := fmt.Sprintf("sip:d%d@example.com", i)
		if uris := liveURIs(t, st, aor); len(uris) != 1 {
			t.Fatalf("after kill, %s: %v", aor, uris)
		}
		register(t, st, aor, "sip:d2@192.0.2.2", 1)
	}
	if st.Stats().Failovers == 0 {
		t.Error("no failover counted")
	}
	// Quorum: with two of three shards gone, a write cannot get W=2.
	ms[2].Kill()
	reg, _ := locsvc.Check(locsvc.Request{AoR: "sip:q@example.com", CallID: "q", CSeq: 1,
		Contacts: []locsvc.Contact{{URI: "sip:q@192.0.2.9"}}}, locsvc.DefaultLimits())
	next, _ := locsvc.Apply(locsvc.BindingSet{}, reg, time.Now(), locsvc.DefaultLimits(), "t")
	if _, err := st.Merge(context.Background(), locsvc.StoreKey(reg.AoR), next); err == nil {
		t.Error("a write acknowledged by one of R=2 replicas reported success")
	}
}

// Concurrent read-merge-writes of different contacts to one AoR, from two
// store instances (two nodes), lose nothing: the gets/cas path retries.
func TestConcurrentWritersSameAoR(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	a := ringstore.New(src, ringstore.Config{Replicas: 2})
	b := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer a.Close()
	defer b.Close()
	lim := locsvc.DefaultLimits()
	lim.MaxContacts = 100
	const aor = "sip:busy@example.com"
	key := locsvc.StoreKey(aor)
	var wg sync.WaitGroup
	for i := range 40 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg, err := locsvc.Check(locsvc.Request{AoR: aor, CallID: fmt.Sprintf("c%d", i), CSeq: 1,
				Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:busy@192.0.2.%d", i+1)}}}, lim)
			if err != nil {
				t.Error(err)
				return
			}
			// Each writer applies to the state it read; the merge keeps
			// the other writers' contacts.
			next, err := locsvc.Apply(locsvc.BindingSet{}, reg, time.Now(), lim, "n")
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := st.Merge(context.Background(), key, next); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := liveURIs(t, a, aor); len(got) != 40 {
		t.Fatalf("%d bindings survived, want 40: %v", len(got), got)
	}
	for _, r := range src.Ring().ReplicaSet(key, 2, nil) {
		it, err := memcache.New(r.Addr).Get(key)
		if err != nil {
			t.Fatal(err)
		}
		set, err := locsvc.Decode(it.Value)
		if err != nil || len(set.Live(time.Now())) != 40 {
			t.Fatalf("replica %s holds %d bindings (%v)", r.Addr, len(set.Bindings), err)
		}
	}
	t.Logf("cas conflicts: %d", a.Stats().CASConflicts+b.Stats().CASConflicts)
}

// A read that finds a replica missing or corrupt rewrites it.
func TestReadRepair(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const aor = "sip:rr@example.com"
	register(t, st, aor, "sip:rr@192.0.2.1", 1)
	key := locsvc.StoreKey(aor)
	reps := src.Ring().ReplicaSet(key, 2, nil)
	if err := memcache.New(reps[0].Addr).Delete(key); err != nil {
		t.Fatal(err)
	}
	if err := memcache.New(reps[1].Addr).Set(&memcache.Item{Key: key, Value: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	// One replica missing, the other corrupt: nothing left to read.
	if got := liveURIs(t, st, aor); len(got) != 0 {
		t.Fatalf("read %v from a missing and a corrupt replica", got)
	}
	register(t, st, aor, "sip:rr@192.0.2.1", 2)
	if err := memcache.New(reps[0].Addr).Delete(key); err != nil {
		t.Fatal(err)
	}
	if got := liveURIs(t, st, aor); len(got) != 1 {
		t.Fatalf("read %v", got)
	}
	integration.WaitFor(t, 5*time.Second, "read repair", func() bool {
		return holders(t, key, ms)[reps[0].Addr]
	})
	if st.Stats().CorruptValues == 0 {
		t.Error("corrupt value not counted")
	}
}

// After the ring grows, a repair pass on the old shards copies each record
// to the replicas the new ring names.
func TestRepairAfterJoin(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms[0], ms[1])
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const n = 600
	for i := range n {
		register(t, st, fmt.Sprintf("sip:j%d@example.com", i), "sip:j@192.0.2.1", 1)
	}
	src.set(ms...)
	rep := st.NewRepairer([]string{ms[0].Addr, ms[1].Addr}, 100000, time.Hour)
	rep.Pass(context.Background())
	onNew := 0
	for i := range n {
		key := locsvc.StoreKey(fmt.Sprintf("sip:j%d@example.com", i))
		got := holders(t, key, ms)
		for _, r := range src.Ring().ReplicaSet(key, 2, nil) {
			if !got[r.Addr] {
				t.Fatalf("key %d not on replica %s after repair (on %v)", i, r.Addr, got)
			}
		}
		if got[ms[2].Addr] {
			onNew++
		}
	}
	stats := rep.Stats()
	if stats.Passes != 1 || stats.Scanned != 2*n || stats.Copied != uint64(onNew) {
		t.Errorf("passes=%d scanned=%d copied=%d; want 1, %d, %d",
			stats.Passes, stats.Scanned, stats.Copied, 2*n, onNew)
	}
	t.Logf("new shard took %d of %d records (%.1f%%; optimum 2/3 of records for R=2 over 3 shards)", onNew, n, 100*float64(onNew)/n)
}

// A pass over shards whose records are already where the ring puts them
// (a node back from a restart, its start-up pass) copies nothing: merging
// into a replica that holds the same record neither counts as a copy nor
// writes.
func TestRepairCopiesNothingInPlace(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const n = 500
	for i := range n {
		register(t, st, fmt.Sprintf("sip:p%d@example.com", i), "sip:p@192.0.2.1", 1)
	}
	_, setsBefore := memcachedOps(t, ms)
	for _, m := range ms {
		rep := st.NewRepairer([]string{m.Addr}, 100000, time.Hour)
		rep.Pass(context.Background())
		if s := rep.Stats(); s.Scanned == 0 || s.Copied != 0 || s.Failures != 0 {
			t.Errorf("pass over %s: scanned %d, copied %d, failures %d; want some, 0, 0", m.Addr, s.Scanned, s.Copied, s.Failures)
		}
	}
	if _, sets := memcachedOps(t, ms); sets != setsBefore {
		t.Errorf("the passes wrote %d times to shards that held every record already", sets-setsBefore)
	}
}

// A shard that restarts empty between two requests (its clients still
// pool connections to the old process) is refilled by one pass on the
// others, with nothing left out.
func TestRepairAfterQuickRestart(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const n = 3000
	for i := range n {
		register(t, st, fmt.Sprintf("sip:q%d@example.com", i), "sip:q@192.0.2.1", 1)
	}
	// Warm every pooled connection, then restart shard 0 empty.
	for i := range n {
		liveURIs(t, st, fmt.Sprintf("sip:q%d@example.com", i))
	}
	ms[0].Restart()
	rep := st.NewRepairer([]string{ms[1].Addr, ms[2].Addr}, 100000, time.Hour)
	rep.Pass(context.Background())
	missing := 0
	for i := range n {
		key := locsvc.StoreKey(fmt.Sprintf("sip:q%d@example.com", i))
		got := holders(t, key, ms)
		for _, r := range src.Ring().ReplicaSet(key, 2, nil) {
			if !got[r.Addr] {
				missing++
			}
		}
	}
	t.Logf("failures %d, copied %d", rep.Stats().Failures, rep.Stats().Copied)
	if missing > 0 && rep.Stats().Failures == 0 {
		t.Fatalf("%d copies missing after one pass, and the pass reported no failure", missing)
	}
	if missing > 0 {
		rep.Pass(context.Background())
		t.Logf("after a second pass: failures %d, copied %d", rep.Stats().Failures, rep.Stats().Copied)
	}
}

// memcachedOps sums get and storage commands over shards.
func memcachedOps(t *testing.T, ms []*integration.Memcached) (gets, sets int64) {
	t.Helper()
	for _, m := range ms {
		gets += m.StatInt(t, "", "cmd_get")
		sets += m.StatInt(t, "", "cmd_set")
	}
	return gets, sets
}

// A REGISTER costs one gets and one storage command per replica: the write
// reuses the read's value and CAS token instead of reading again.
func TestRegisterRoundTrips(t *testing.T) {
	ms := startShards(t, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	for i, want := range []struct{ gets, sets int64 }{
		{2, 2}, // new AoR: two misses, two adds
		{2, 2}, // refresh: two gets, two cas
		{2, 2},
	} {
		g0, s0 := memcachedOps(t, ms)
		register(t, st, "sip:rt@example.com", "sip:rt@192.0.2.1", uint32(i+1))
		g1, s1 := memcachedOps(t, ms)
		if g1-g0 != want.gets || s1-s0 != want.sets {
			t.Errorf("register %d: %d gets and %d stores, want %d and %d", i+1, g1-g0, s1-s0, want.gets, want.sets)
		}
	}
}

// What one single-contact registration costs memcached, per copy: the
// item's bytes as memcached counts them (header, key, value) and the slab
// chunk it occupies. Issue 6's target is 300 bytes for a plain UA; one
// using outbound (RFC 5626) behind an edge proxy's Path carries about 100
// bytes more, all of which a registrar must keep, so it is reported only.
func TestBytesPerRegistration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  float64 // 0: report only
		reqFor func(i int) locsvc.Request
	}{
		{"plain UA behind NAT", 300, func(i int) locsvc.Request {
			return locsvc.Request{
				AoR: fmt.Sprintf("sip:user%06d@example.com", i), CallID: fmt.Sprintf("%08x-4a1c-49f2-9d0e-3c5b7e21a9f3", i), CSeq: 1,
				Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:user%06d@10.%d.%d.%d:5060;transport=udp", i, i%250, i%200, i%100+1),
					Expires: 3600, HasExpires: true}},
				Received: fmt.Sprintf("sip:198.51.100.%d:%d", i%250+1, 30000+i), Transport: "udp",
			}
		}},
		{"outbound UA behind an edge proxy", 0, func(i int) locsvc.Request {
			return locsvc.Request{
				AoR: fmt.Sprintf("sip:+1555%07d@voip.example.com", i), CallID: fmt.Sprintf("%08x-4a1c-49f2-9d0e-3c5b7e21a9f3@10.0.0.7", i), CSeq: 1,
				Contacts: []locsvc.Contact{{URI: fmt.Sprintf("sip:+1555%07d@10.%d.%d.%d:5060;transport=udp;ob", i, i%250, i%200, i%100+1),
					Instance: "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>", RegID: 1, Expires: 3600, HasExpires: true}},
				Path:     []string{"sip:edge1.voip.example.com;lr"},
				Received: fmt.Sprintf("sip:198.51.100.%d:%d", i%250+1, 30000+i), Transport: "udp",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perItem, perChunk := bytesPerRegistration(t, tc.reqFor)
			t.Logf("per registration and copy: %.0f item bytes, %.0f bytes of slab chunks", perItem, perChunk)
			if tc.limit > 0 && perItem > tc.limit {
				t.Errorf("%.0f bytes stored per registration, target %.0f", perItem, tc.limit)
			}
		})
	}
}

func bytesPerRegistration(t *testing.T, reqFor func(int) locsvc.Request) (perItem, perChunk float64) {
	ms := startShards(t, 1)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 1})
	defer st.Close()
	const n = 1000
	lim := locsvc.DefaultLimits()
	for i := range n {
		reg, err := locsvc.Check(reqFor(i), lim)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Update(context.Background(), locsvc.StoreKey(reg.AoR), func(cur locsvc.BindingSet) (locsvc.BindingSet, error) {
			return locsvc.Apply(cur, reg, time.Now(), lim, "node-1")
		}); err != nil {
			t.Fatal(err)
		}
	}
	m := ms[0]
	if items := m.StatInt(t, "", "curr_items"); items != n {
		t.Fatalf("%d items stored, want %d", items, n)
	}
	slabs, err := m.Stats("slabs")
	if err != nil {
		t.Fatal(err)
	}
	var chunkBytes int64
	for k, v := range slabs {
		cls, ok := strings.CutSuffix(k, ":used_chunks")
		if !ok {
			continue
		}
		chunkBytes += int64(v * slabs[cls+":chunk_size"])
	}
	return float64(m.StatInt(t, "", "bytes")) / n, float64(chunkBytes) / n
}

// A burst of calls shares the store's connections instead of opening one
// per call: memcached sees at most ConnsPerShard connections from the
// store however many callers there are.
func TestConnectionsBounded(t *testing.T) {
	ms := startShards(t, 1)
	src := &staticRing{}
	src.set(ms...)
	const conns = 2
	st := ringstore.New(src, ringstore.Config{Replicas: 1, ConnsPerShard: conns, Timeout: 2 * time.Second})
	defer st.Close()
	before := ms[0].StatInt(t, "", "total_connections")
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			register(t, st, fmt.Sprintf("sip:burst%d@example.com", i), "sip:b@192.0.2.1", 1)
		}()
	}
	wg.Wait()
	// Each StatInt opens one connection of its own.
	opened := ms[0].StatInt(t, "", "total_connections") - before - 1
	if opened > conns {
		t.Errorf("200 concurrent registers opened %d connections, want at most %d", opened, conns)
	}
}

// silentShard accepts connections and never answers, like a memcached
// that hangs.
func silentShard(t *testing.T) string {
	addr, _ := integration.SilentServer(t)
	return addr
}

// A node with two shards, one silent: a call whose deadline passes while
// it waits on the silent shard fails within the deadline, as a deadline,
// and stores nothing; later calls with time to spare get past the silent
// shard (its breaker opens) and succeed on the healthy one.
func TestSilentShardDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ringstore.Config
	}{
		{"R=2 W=1", ringstore.Config{Replicas: 2, WriteQuorum: 1}},
		{"R=1, the silent shard first", ringstore.Config{Replicas: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			healthy := integration.StartMemcached(t)
			silent := silentShard(t)
			src := &staticRing{r: ring.New([]ring.Shard{
				{ID: healthy.Addr, Addr: healthy.Addr, Node: "n1", Healthy: true},
				{ID: silent, Addr: silent, Node: "n1", Healthy: true},
			})}
			tc.cfg.Timeout = 500 * time.Millisecond
			st := ringstore.New(src, tc.cfg)
			defer st.Close()
			lim := locsvc.DefaultLimits()
			svc, err := locsvc.NewService(st, lim, "n1")
			if err != nil {
				t.Fatal(err)
			}
			// An AoR whose first shard is the silent one: both variants
			// then wait on it.
			var aor string
			for i := 0; ; i++ {
				aor = fmt.Sprintf("sip:s%d@example.com", i)
				if src.Ring().ReplicaSet(locsvc.StoreKey(aor), 1, nil)[0].Addr == silent {
					break
				}
			}
			key := locsvc.StoreKey(aor)
			req := locsvc.Request{AoR: aor, CallID: "c1", CSeq: 1, Contacts: []locsvc.Contact{{URI: "sip:s@192.0.2.1"}}}

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			start := time.Now()
			_, err = svc.Register(ctx, req)
			took := time.Since(start)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("register with 100ms: %v, want context.DeadlineExceeded", err)
			}
			if e, ok := locsvc.AsError(err); !ok || e.Kind != locsvc.KindUnavailable {
				t.Errorf("register with 100ms: %v, want a KindUnavailable error (SIP 503)", err)
			}
			if took > 200*time.Millisecond {
				t.Errorf("register with 100ms took %v", took)
			}
			// Past the store's own timeout anything sent would have landed.
			time.Sleep(600 * time.Millisecond)
			if _, err := healthy.Client().Get(key); !errors.Is(err, memcache.ErrCacheMiss) {
				t.Fatalf("after the failed register the healthy shard answers %v, want a miss", err)
			}

			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			req.CSeq = 2
			res, err := svc.Register(ctx, req)
			cancel()
			if err != nil || len(res.Bindings) != 1 {
				t.Fatalf("register with 5s: %v, %v", res.Bindings, err)
			}
			if _, err := healthy.Client().Get(key); err != nil {
				t.Fatalf("the healthy shard does not hold the record: %v", err)
			}
			// The silent shard's breaker is open now: a short deadline
			// suffices again.
			ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if res, err := svc.Lookup(ctx, aor); err != nil || len(res.Bindings) != 1 {
				t.Fatalf("lookup with 100ms after the breaker opened: %v, %v", res.Bindings, err)
			}
		})
	}
}

// The store-level form of the above, on Update itself.
func TestUpdateHonoursContext(t *testing.T) {
	healthy := integration.StartMemcached(t)
	silent := silentShard(t)
	src := &staticRing{r: ring.New([]ring.Shard{
		{ID: healthy.Addr, Addr: healthy.Addr, Node: "n1", Healthy: true},
		{ID: silent, Addr: silent, Node: "n1", Healthy: true},
	})}
	st := ringstore.New(src, ringstore.Config{Replicas: 2, WriteQuorum: 1, Timeout: 500 * time.Millisecond})
	defer st.Close()
	lim := locsvc.DefaultLimits()
	reg, err := locsvc.Check(locsvc.Request{AoR: "sip:u@example.com", CallID: "c", CSeq: 1,
		Contacts: []locsvc.Contact{{URI: "sip:u@192.0.2.1"}}}, lim)
	if err != nil {
		t.Fatal(err)
	}
	set := func(cur locsvc.BindingSet) (locsvc.BindingSet, error) {
		return locsvc.Apply(cur, reg, time.Now(), lim, "n1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	_, err = st.Update(ctx, "k", set)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("update with 100ms: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("update with 100ms took %v", d)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Update(cctx, "k", set); !errors.Is(err, context.Canceled) {
		t.Fatalf("update with a cancelled context: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := st.Update(ctx, "k", set); err != nil {
		t.Fatalf("update with 5s: %v", err)
	}
}

// With W=2 of two shards, one silent, no register can succeed, and none
// that fails leaves its record on the healthy shard: the first runs out of
// time during the read, the later ones see the read answered by fewer
// shards than the write needs (or the silent shard's breaker open) and
// write nothing.
func TestSilentShardNoQuorumStoresNothing(t *testing.T) {
	healthy := integration.StartMemcached(t)
	silent := silentShard(t)
	src := &staticRing{r: ring.New([]ring.Shard{
		{ID: healthy.Addr, Addr: healthy.Addr, Node: "n1", Healthy: true},
		{ID: silent, Addr: silent, Node: "n1", Healthy: true},
	})}
	st := ringstore.New(src, ringstore.Config{Replicas: 2, Timeout: 300 * time.Millisecond})
	defer st.Close()
	svc, err := locsvc.NewService(st, locsvc.DefaultLimits(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	const aor = "sip:nq@example.com"
	for i, d := range []time.Duration{100 * time.Millisecond, 5 * time.Second, 5 * time.Second, 100 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := svc.Register(ctx, locsvc.Request{AoR: aor, CallID: "c", CSeq: uint32(i + 1),
			Contacts: []locsvc.Contact{{URI: "sip:nq@192.0.2.1"}}})
		cancel()
		if e, ok := locsvc.AsError(err); !ok || e.Kind != locsvc.KindUnavailable {
			t.Fatalf("register %d (%v): %v, want KindUnavailable", i+1, d, err)
		}
		t.Logf("register %d (%v): %v", i+1, d, errors.Unwrap(err))
	}
	time.Sleep(400 * time.Millisecond) // past the store's timeout
	if _, err := healthy.Client().Get(locsvc.StoreKey(aor)); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("the healthy shard answers %v, want a miss", err)
	}
}
