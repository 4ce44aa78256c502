package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// BenchmarkGRPC measures Lookup and Register through one locsvc node
// (fronting 3 memcached shards, R=2) at 1, 8 and 64 concurrent callers,
// each beside a raw gomemcache Get or Set of a record-sized value against
// one of the same shards at the same concurrency, in the same run. The
// ratios are the figures to read: absolute times depend on the machine,
// which here also runs the load generator.
func BenchmarkGRPC(b *testing.B) {
	shards := []*Memcached{StartMemcached(b), StartMemcached(b), StartMemcached(b)}
	addrs := shards[0].Addr + "," + shards[1].Addr + "," + shards[2].Addr
	node := StartNode(b, NodeOptions{ID: "bench", NoSIP: true, Bench: true,
		Args: []string{"--memcached", addrs, "--replicas", "2", "--gossip-profile", "local", "--log-level", "warn"}})
	WaitFor(b, 10*time.Second, "3 healthy shards", func() bool {
		st, err := node.Cluster.Status(context.Background(), &locsvcv1.StatusRequest{})
		if err != nil {
			return false
		}
		healthy := 0
		for _, s := range st.Shards {
			if s.Healthy {
				healthy++
			}
		}
		return healthy == 3
	})
	const users = 2000
	if failed := RegisterMany(b, node, 0, users, 16); failed != 0 {
		b.Fatalf("%d registrations failed", failed)
	}
	raw := memcache.New(shards[0].Addr)
	raw.MaxIdleConns = 128
	value := make([]byte, 180) // a single-contact record is about 180 bytes
	for i := range users {
		if err := raw.Set(&memcache.Item{Key: fmt.Sprintf("raw%d", i), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	lookup := func(ctx context.Context, i int) error {
		_, err := node.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: AoR(i % users)})
		return err
	}
	register := func(ctx context.Context, i int) error {
		_, err := node.Location.Register(ctx, &locsvcv1.RegisterRequest{
			Aor: AoR(i % users), CallId: fmt.Sprintf("bench-%d", i%users), Cseq: uint32(seq.Add(1) + 1),
			Expires: proto.Int64(3600), Contacts: []*locsvcv1.Contact{{Uri: Contact(i % users)}},
		})
		return err
	}
	rawGet := func(_ context.Context, i int) error {
		_, err := raw.Get(fmt.Sprintf("raw%d", i%users))
		return err
	}
	rawSet := func(_ context.Context, i int) error {
		return raw.Set(&memcache.Item{Key: fmt.Sprintf("raw%d", i%users), Value: value})
	}
	// The floor of any call: a gRPC health check on the same connection.
	hc := healthpb.NewHealthClient(node.conn)
	floor := func(ctx context.Context, _ int) error {
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	for _, op := range []struct {
		name      string
		call, ref func(context.Context, int) error
	}{{"Lookup", lookup, rawGet}, {"Register", register, rawSet}} {
		for _, conc := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/conc=%d", op.name, conc), func(b *testing.B) {
				ref := runLoad(b, conc, b.N, op.ref)
				fl := runLoad(b, conc, b.N, floor)
				got := runLoad(b, conc, b.N, op.call)
				b.ReportMetric(got.p50.Seconds()*1e6, "p50-us")
				b.ReportMetric(got.p99.Seconds()*1e6, "p99-us")
				b.ReportMetric(got.rate, "ops/s")
				b.ReportMetric(ref.p50.Seconds()*1e6, "raw-p50-us")
				b.ReportMetric(float64(got.p50)/float64(ref.p50), "p50/raw")
				b.ReportMetric(float64(got.p99)/float64(ref.p99), "p99/raw")
				b.ReportMetric(got.rate/ref.rate, "rate/raw")
				b.ReportMetric(fl.p50.Seconds()*1e6, "grpc-floor-p50-us")
			})
		}
	}
}

type loadResult struct {
	p50, p99 time.Duration
	rate     float64
}

// runLoad makes n calls from conc goroutines and reports latency
// percentiles and throughput; any failed call fails the benchmark.
func runLoad(b *testing.B, conc, n int, call func(context.Context, int) error) loadResult {
	b.Helper()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := call(ctx, i); err != nil {
					failed.Add(1)
				}
				cancel()
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d calls failed", f, n)
	}
	slices.Sort(lat)
	return loadResult{p50: lat[n/2], p99: lat[min(n-1, n*99/100)], rate: float64(n) / elapsed.Seconds()}
}
