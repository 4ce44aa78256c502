package ringstore_test

import (
	"context"
	"fmt"
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
