// Package workpool runs short tasks on long-lived goroutines.
//
// A fresh goroutine starts with a small stack and grows it, copying it
// each time, as it descends a deep call chain (a SIP handler into the
// registrar, the store and its memcached client). On the hot paths that growth was
// measured at 6% (SIP handlers) and 15% (replica calls) of the CPU. A
// standing worker keeps the stack it has grown.
//
// When every worker is busy a task gets a goroutine of its own, so that
// a burst never waits for a worker; that goroutine then stays as a worker
// until it has been idle for Linger. Without that, an overloaded node,
// where hundreds of requests are in flight at once, paid the stack growth
// on nearly every request (copying stacks was 5.5 % of its CPU at twice
// its capacity, against 1.7 % at capacity).
package workpool

import "time"

// Linger is how long a worker started for a burst stays without work.
const Linger = 5 * time.Second

// Pool is a set of standing workers.
type Pool struct {
	work   chan func() // to the standing workers
	spare  chan func() // to the workers a burst started
	stop   <-chan struct{}
	linger time.Duration
}

// New starts n workers that stay until stop is closed.
func New(n int, stop <-chan struct{}) *Pool {
	p := &Pool{work: make(chan func()), spare: make(chan func()), stop: stop, linger: Linger}
	for range n {
		go p.loop()
	}
	return p
}

func (p *Pool) loop() {
	for {
		select {
		case f := <-p.work:
			f()
		case <-p.stop:
			return
		}
	}
}

// Run calls f on an idle worker, or on a new one if none is idle. A
// standing worker is preferred: a burst's workers take tasks only while
// every standing one is busy, so that once the surge is over they go
// idle and leave. Were all to take from one queue, each would get a
// share of the tasks while an overload lasted and none would ever be
// idle: the hundreds a moment's surge started would all stay, each a
// stack the collector scans and one more to switch to. At three times
// capacity on half a CPU, a node bounding new requests in hand to 128
// once it refused (after letting up to 1,024 in at the start) served
// 0.66 and 0.71 of C with one queue and 0.74 and 0.76 with two, in runs
// alternated with one that never let more than 128 in (0.71 to 0.82).
func (p *Pool) Run(f func()) {
	select {
	case p.work <- f:
		return
	default:
	}
	select {
	case p.spare <- f:
	default:
		go p.lingerAfter(f)
	}
}

// lingerAfter runs f and then serves as a spare worker until idle for
// Linger.
func (p *Pool) lingerAfter(f func()) {
	f()
	idle := time.NewTimer(p.linger)
	defer idle.Stop()
	for {
		select {
		case f := <-p.spare:
			f()
			idle.Reset(p.linger)
		case <-idle.C:
			return
		case <-p.stop:
			return
		}
	}
}
