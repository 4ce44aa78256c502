// Package workpool runs short tasks on long-lived goroutines.
//
// A fresh goroutine starts with a small stack and grows it, copying it
// each time, as it descends a deep call chain (a SIP handler into the
// registrar, the store and its memcached client). On the hot paths that growth was
// measured at 6% (SIP handlers) and 15% (replica calls) of the CPU. A
// standing worker keeps the stack it has grown. When every worker is busy
// a task gets a goroutine of its own, so a burst never waits for a worker.
package workpool

// Pool is a set of standing workers.
type Pool struct {
	work chan func()
	stop <-chan struct{}
}

// New starts n workers; they return once stop is closed.
func New(n int, stop <-chan struct{}) *Pool {
	p := &Pool{work: make(chan func()), stop: stop}
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

// Run calls f on an idle worker, or on a new goroutine if none is idle.
func (p *Pool) Run(f func()) {
	select {
	case p.work <- f:
	default:
		go f()
	}
}
