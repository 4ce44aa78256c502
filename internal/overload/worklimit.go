package overload

import "time"

// Work in hand: how many new requests a server may be handling at once.
//
// The queueing delay is judged before a request's handling starts; the
// handling itself is not part of it. Yet the requests taken in share the
// CPU, so with many in hand each takes longer, and the server spends
// more of its time switching between them (scheduler, timers, channels,
// the collector scanning their stacks) than serving them. Measured at
// three times capacity on half a CPU (make bench-overload with
// -server-cpu-share 0.5, C given as 8,000/s, A/B runs alternated):
//
//	new requests in hand        goodput / C
//	1,024 (the ceiling)         0.52 to 0.57 (6 runs)
//	256                         0.75
//	150 to 190 (Little's law)   0.67 to 0.77 (6 runs)
//	128                         0.68 to 0.82 (9 runs)
//	64                          0.76
//
// The Little's-law row is a bound that followed the rate served times
// (the shortest service time + Target); it did no better than a fixed
// one, and is not kept. 128 is the number of handler goroutines the
// front end keeps standing: past it, each request in hand is one more
// goroutine started (and its stack grown) for it.
//
// The bound holds only while the server is overloaded: from a window in
// which it refused anything (for any reason, the bound included) until
// overloadedWindows have passed without a refusal. Below that the
// ceiling holds, because work in hand says nothing about overload there:
// on half a CPU, at a rate the server serves with no refusal (8,000/s), a
// moment's stall of its CPU left more than 128 in hand, and a bound
// holding always refused 10 to 20 % of the phones (the capacity search
// found 6,000/s instead of 8,000). That is slot occupancy taken for
// overload, which this package exists to avoid.

// overloadedWindows is how long the bound holds after the last window
// with a refusal: a second at the default interval, longer than the
// bound takes to drain the work in hand (which would otherwise release
// it and let the next surge in).
const overloadedWindows = 10

// WorkLimit is how many new requests may be in hand at once: cfg.Work
// while the server is overloaded, else cfg.MaxWork (0: no bound). It is
// what the last window closed decided, read without the lock.
func (c *Controller) WorkLimit() int {
	return int(c.workLimit.Load())
}

// closeWork ends, at now, the window's count of refusals and sets the
// bound on work in hand.
func (c *Controller) closeWork(now time.Time) {
	if c.shed > 0 {
		c.overloadedUntil = now.Add(overloadedWindows * c.cfg.Interval)
	}
	c.shed = 0
	c.workLimit.Store(int64(workBound(c.cfg, now.Before(c.overloadedUntil))))
}

// workBound is the bound on new requests in hand of cfg, while the
// server is overloaded or not.
func workBound(cfg Config, overloaded bool) int {
	if cfg.MaxWork <= 0 {
		return 0
	}
	if overloaded && cfg.Work > 0 {
		return min(cfg.Work, cfg.MaxWork)
	}
	return cfg.MaxWork
}
