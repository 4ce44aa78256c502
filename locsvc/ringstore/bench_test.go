package ringstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/locsvc/ringstore"
)

// BenchmarkLookupVsRawGet measures a Lookup through the replicated store
// (R=2 over 3 shards: two parallel gets, decode, merge, compact) against one
// raw gomemcache Get of the same value, alternating the two in one loop so
// both see the same machine load. The ratio is the figure that matters
// (target <= 2).
func BenchmarkLookupVsRawGet(b *testing.B) {
	ms := startShards(b, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2})
	defer st.Close()
	const users = 1000
	for i := range users {
		register(b, st, fmt.Sprintf("sip:b%d@example.com", i), fmt.Sprintf("sip:b%d@192.0.2.1:5060", i), 1)
	}
	keys := make([]string, users)
	raw := make([]*memcache.Client, users)
	clients := map[string]*memcache.Client{}
	for i := range users {
		keys[i] = locsvc.StoreKey(fmt.Sprintf("sip:b%d@example.com", i))
		addr := src.Ring().ReplicaSet(keys[i], 1, nil)[0].Addr
		if clients[addr] == nil {
			c := memcache.New(addr)
			c.MaxIdleConns = 64
			clients[addr] = c
		}
		raw[i] = clients[addr]
	}
	ctx := context.Background()
	var rawTime, storeTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % users
		t0 := time.Now()
		if _, err := raw[k].Get(keys[k]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		set, err := st.Get(ctx, keys[k])
		if err != nil || len(set.Bindings) != 1 {
			b.Fatalf("store get: %v (%d bindings)", err, len(set.Bindings))
		}
		rawTime += t1.Sub(t0)
		storeTime += time.Since(t1)
	}
	b.ReportMetric(float64(rawTime.Nanoseconds())/float64(b.N), "raw-ns/get")
	b.ReportMetric(float64(storeTime.Nanoseconds())/float64(b.N), "store-ns/lookup")
	b.ReportMetric(float64(storeTime)/float64(rawTime), "store/raw")
}

// BenchmarkRestoreShard measures what a peer project reports as "a few
// seconds" for 100k contacts over 4 nodes (Kamailio pull request #1054, DMQ usrloc sync): 100,000 AoRs on
// 3 shards (R=2), one shard restarted empty, then the repair passes of
// the two other nodes (each scanning its own shard, as `locsvc serve`
// does) bring every record it should hold back to it. Once at the
// production default pace (5,000 copies/s per node), once unpaced. Run it
// with -benchtime 1x; it fails if any record is missing afterwards.
func BenchmarkRestoreShard(b *testing.B) {
	const users = 100_000
	ms := startShards(b, 3)
	src := &staticRing{}
	src.set(ms...)
	st := ringstore.New(src, ringstore.Config{Replicas: 2, Timeout: 2 * time.Second})
	defer st.Close()
	keys := make([]string, users)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				aor := fmt.Sprintf("sip:r%d@example.com", i)
				register(b, st, aor, fmt.Sprintf("sip:r%d@192.0.2.1:5060", i), 1)
				keys[i] = locsvc.StoreKey(aor)
			}
		}()
	}
	for i := range users {
		work <- i
	}
	close(work)
	wg.Wait()
	var owned []string // the keys whose replicas include the restarted shard
	for _, k := range keys {
		for _, sh := range src.Ring().ReplicaSet(k, 2, nil) {
			if sh.Addr == ms[2].Addr {
				owned = append(owned, k)
			}
		}
	}
	for _, pace := range []struct {
		name string
		rate int
	}{{"default-pace", 5000}, {"unpaced", 1 << 30}} {
		ms[2].Restart()
		reps := []*ringstore.Repairer{
			st.NewRepairer([]string{ms[0].Addr}, pace.rate, time.Hour),
			st.NewRepairer([]string{ms[1].Addr}, pace.rate, time.Hour),
		}
		t0 := time.Now()
		var pw sync.WaitGroup
		for _, r := range reps {
			pw.Add(1)
			go func() { defer pw.Done(); r.Pass(context.Background()) }()
		}
		pw.Wait()
		took := time.Since(t0)
		has, err := ms[2].Has(owned)
		if err != nil {
			b.Fatal(err)
		}
		if len(has) != len(owned) {
			b.Fatalf("%s: %d of %d records back on the restarted shard", pace.name, len(has), len(owned))
		}
		b.ReportMetric(took.Seconds(), pace.name+"-s")
		b.ReportMetric(float64(len(owned))/took.Seconds(), pace.name+"-records/s")
	}
	b.ReportMetric(float64(len(owned)), "records-restored")
}
