package core

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestRateLimiter(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	// step: after advancing by wait, src asks once; want is the verdict
	// and, when refused, the wait reported.
	type step struct {
		wait  time.Duration
		src   netip.Addr
		want  bool
		retry time.Duration
	}
	tests := []struct {
		name        string
		rate        float64
		burst       int
		steps       []step
		wantEntries int
	}{
		{name: "burst then refused", rate: 2, burst: 3, steps: []step{
			{0, a, true, 0}, {0, a, true, 0}, {0, a, true, 0},
			{0, a, false, 500 * time.Millisecond},
			{0, a, false, 500 * time.Millisecond}, // refusals cost nothing
		}, wantEntries: 1},
		{name: "refills at the rate", rate: 2, burst: 1, steps: []step{
			{0, a, true, 0}, {0, a, false, 500 * time.Millisecond},
			{250 * time.Millisecond, a, false, 250 * time.Millisecond},
			{250 * time.Millisecond, a, true, 0},
			{0, a, false, 500 * time.Millisecond},
		}, wantEntries: 1},
		{name: "refill stops at the burst", rate: 10, burst: 2, steps: []step{
			{0, a, true, 0},
			{time.Hour, a, true, 0}, {0, a, true, 0}, {0, a, false, 100 * time.Millisecond},
		}, wantEntries: 1},
		{name: "sources are independent", rate: 1, burst: 1, steps: []step{
			{0, a, true, 0}, {0, a, false, time.Second}, {0, b, true, 0}, {0, b, false, time.Second},
		}, wantEntries: 2},
		{name: "fractional rate", rate: 0.5, burst: 1, steps: []step{
			{0, a, true, 0}, {time.Second, a, false, time.Second}, {time.Second, a, true, 0},
		}, wantEntries: 1},
		{name: "IPv6 /64 is one source", rate: 1, burst: 1, steps: []step{
			{0, netip.MustParseAddr("2001:db8::1"), true, 0},
			{0, netip.MustParseAddr("2001:db8::ffff:1"), false, time.Second},
			{0, netip.MustParseAddr("2001:db8:0:1::1"), true, 0},
		}, wantEntries: 2},
		{name: "IPv4-mapped is IPv4", rate: 1, burst: 1, steps: []step{
			{0, a, true, 0}, {0, netip.MustParseAddr("::ffff:192.0.2.1"), false, time.Second},
		}, wantEntries: 1},
		{name: "idle buckets are swept", rate: 10, burst: 10, steps: []step{
			{0, a, true, 0}, {0, b, true, 0},
			// b stays busy; a is idle for longer than a refill from empty.
			{1500 * time.Millisecond, b, true, 0},
			{600 * time.Millisecond, b, true, 0},
		}, wantEntries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			l := newRateLimiter(tt.rate, tt.burst, 100, clk.now)
			for i, s := range tt.steps {
				clk.advance(s.wait)
				ok, retry := l.allow(s.src)
				if ok != s.want || retry != s.retry {
					t.Fatalf("step %d (%v): got %v, retry %v; want %v, retry %v", i, s.src, ok, retry, s.want, s.retry)
				}
			}
			if n := l.len(); n != tt.wantEntries {
				t.Errorf("%d buckets kept, want %d", n, tt.wantEntries)
			}
		})
	}
}

// A flood from ever new (spoofed) sources cannot grow the table past its
// bound, and the sources that do not fit share one bucket, so the flood is
// still limited; sources already in the table keep their own buckets.
func TestRateLimiterBounded(t *testing.T) {
	clk := newFakeClock()
	const maxKeys = 50
	l := newRateLimiter(1, 2, maxKeys, clk.now)
	known := netip.MustParseAddr("198.51.100.1")
	if ok, _ := l.allow(known); !ok {
		t.Fatal("first request refused")
	}
	allowed := 0
	for i := range 10000 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := l.allow(src); ok {
			allowed++
		}
		if i%100 == 0 {
			clk.advance(10 * time.Millisecond)
		}
	}
	if n := l.len(); n > maxKeys {
		t.Fatalf("%d buckets, bound %d", n, maxKeys)
	}
	// maxKeys-1 new sources fit, each with its burst; the rest share one
	// bucket that refills at 1/s for the second the flood took.
	if want := maxKeys - 1 + 2 + 1; allowed > want {
		t.Errorf("%d of the flood allowed, want at most %d", allowed, want)
	}
	if ok, _ := l.allow(known); !ok {
		t.Error("a source in the table lost its own bucket to the flood")
	}
	// Once the flood stops, idle buckets go and new sources get their own.
	clk.advance(5 * time.Second)
	fresh := netip.MustParseAddr("203.0.113.9")
	if ok, _ := l.allow(fresh); !ok {
		t.Error("a new source after the flood was refused")
	}
	if n := l.len(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {90 * time.Second, 90}} {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func BenchmarkRateLimiter(b *testing.B) {
	l := newRateLimiter(1e9, 1e9, 65536, time.Now)
	srcs := make([]netip.Addr, 1024)
	for i := range srcs {
		srcs[i] = netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l.allow(srcs[i%len(srcs)])
	}
}
