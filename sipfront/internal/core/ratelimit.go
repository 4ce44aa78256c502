package core

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a token bucket per source address: each key may spend
// burst tokens at once, refilled at rate per second. It keeps its memory
// bounded without a timer: a bucket idle long enough to be full again is
// indistinguishable from a new one, so sweeps drop it, and the table never
// holds more than maxKeys buckets. Sources that find the table full share
// one overflow bucket: a flood from spoofed addresses then throttles
// itself (and, while it lasts, other new sources) instead of growing the
// table or evicting the buckets of the sources it competes with.
type rateLimiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[netip.Addr]bucket
	overflow  bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newRateLimiter: rate > 0, burst >= 1, maxKeys >= 1.
func newRateLimiter(rate float64, burst, maxKeys int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), maxKeys: maxKeys, now: now,
		buckets: make(map[netip.Addr]bucket)}
}

// limitKey is the address a source is limited by. An IPv6 host usually
// owns a whole /64 and can pick a new address in it for every request, so
// the /64 is the unit there.
func limitKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes a token for src. When none is left it reports how long
// until one is.
func (l *rateLimiter) allow(src netip.Addr) (ok bool, retryAfter time.Duration) {
	key := limitKey(src)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= max(l.fullAfter(), time.Second) {
		l.sweepLocked(now)
	}
	b, known := l.buckets[key]
	if !known {
		if len(l.buckets) >= l.maxKeys {
			ok, retryAfter = l.take(&l.overflow, now)
			return ok, retryAfter
		}
		b = bucket{tokens: l.burst, last: now}
	}
	ok, retryAfter = l.take(&b, now)
	l.buckets[key] = b
	return ok, retryAfter
}

func (l *rateLimiter) take(b *bucket, now time.Time) (bool, time.Duration) {
	if b.last.IsZero() {
		b.tokens = l.burst
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// fullAfter is how long an unused bucket takes to refill from empty: past
// it, dropping the bucket changes nothing. Sweeping that often (at most
// once a second, so a sweep's cost stays small beside the requests) keeps
// the table to the sources seen within the last two such intervals.
func (l *rateLimiter) fullAfter() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

func (l *rateLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	idle := l.fullAfter()
	for k, b := range l.buckets {
		if now.Sub(b.last) >= idle {
			delete(l.buckets, k)
		}
	}
}

func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
