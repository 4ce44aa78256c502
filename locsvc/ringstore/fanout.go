package ringstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// fanOut is one call on a key's shards: it calls the shards of a
// placement concurrently, in ring order, skipping those whose breaker is
// open and falling over to the next shard past each that fails, until the
// tolerance decides.
//
// Cancellation follows one rule: a call is cancelled only once it has
// become pointless. That is when the caller's context ends (nobody waits
// for the result), or when the tolerance says the fan-out has failed (a
// write that can no longer reach quorum should land nowhere it need not).
// A fan-out that has succeeded still waits for its other calls: a write's
// extra acknowledgements keep the replicas in step, a read's extra
// answers are merged and repaired.
type fanOut struct {
	s *Store
	// addrs are the placement's shards, in order, held in addrBuf when
	// they fit: a fan-out keeping the caller's placement would move the
	// caller's shard buffer to the heap, the largest allocation of a
	// REGISTER.
	addrs    []string
	addrBuf  [candBuf]string
	replicas int
	tol      tolerance
	fn       func(context.Context, *shardClient) error
	// ctx is what the calls get; cancel ends them.
	ctx    context.Context
	cancel context.CancelFunc

	// Each call, as it ends, updates the state and decides, so that a
	// verdict cancels the other calls even while the caller is busy
	// making one itself (the inline call).
	mu       sync.Mutex
	next     int // index in addrs of the next shard to consider
	picked   int
	pending  int
	ok       int
	skipped  []*shardClient // passed over for an open breaker
	lastErr  error
	cut      bool          // a call was cut short by ctx
	over     bool          // the outcome is out; later calls only end
	result   error         // the outcome: nil when tol succeeded
	finished chan struct{} // signalled once the outcome is out
}

// fanOuts recycles the fan-outs that ended with no call in flight (every
// successful one), with their channel: the derived context already costs
// a REGISTER allocations of its own, twice.
var fanOuts = sync.Pool{New: func() any { return &fanOut{finished: make(chan struct{}, 1)} }}

// recycle returns f to the pool. Only the caller may, once no call can
// still touch f.
func (f *fanOut) recycle() {
	select {
	case <-f.finished: // signalled while the caller left on ctx
	default:
	}
	*f = fanOut{finished: f.finished, skipped: f.skipped[:0]}
	fanOuts.Put(f)
}

// fanOut runs fn on the shards of p as tol asks and returns how many calls
// succeeded. The error is nil exactly when tol succeeded; when ctx ended
// first, it wraps ctx.Err().
func (s *Store) fanOut(ctx context.Context, p placement, tol tolerance, fn func(context.Context, *shardClient) error) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, endedError(0, tol, err)
	}
	if tol.decide(0, 0, len(p.shards)) == failed {
		return 0, fmt.Errorf("the ring has %d healthy shard(s) for this key, %d needed", len(p.shards), tol.need)
	}
	// Only a fan-out that needs two or more successes can fail with calls
	// still in flight (failing means ok+pending+untried < need), so only
	// such a fan-out, a write, derives a context it can cancel. A read
	// (need 1) fails only once every call has ended and hands its calls
	// the caller's context as it is: the derived context and its done
	// channel were the largest part of what the context cost a lookup.
	callCtx, cancel := ctx, context.CancelFunc(func() {})
	if tol.need > 1 {
		callCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel() // on success nothing is in flight; otherwise what is, is pointless
	f := fanOuts.Get().(*fanOut)
	f.s, f.replicas, f.tol, f.fn, f.ctx, f.cancel = s, p.replicas, tol, fn, callCtx, cancel
	f.addrs = f.addrBuf[:0]
	for i := range p.shards {
		f.addrs = append(f.addrs, p.shards[i].Addr)
	}

	// Pick the first calls before making any, so that a write whose
	// quorum the open breakers already rule out writes nowhere. No call
	// runs yet, so the state needs no lock.
	var buf [candBuf]*shardClient
	first := buf[:0]
	for len(first) < tol.want {
		c := f.pick()
		if c == nil {
			break
		}
		first = append(first, c)
	}
	if tol.decide(0, len(first), f.untried()) == failed {
		for _, c := range first {
			c.releaseProbe()
		}
		err := f.failure()
		f.recycle()
		return 0, err
	}
	f.pending = len(first) // before any call can end and count down
	// The caller would only wait, so it makes the last of the first calls
	// itself: one goroutine hand-off fewer per call.
	for i, c := range first {
		if i == len(first)-1 {
			f.run(c)
		} else {
			f.start(c)
		}
	}
	select {
	case <-f.finished:
	case <-ctx.Done():
	}
	f.mu.Lock()
	if !f.over {
		f.over = true
		f.result = endedError(f.ok, tol, ctx.Err())
	}
	ok, err, idle := f.ok, f.result, f.pending == 0
	f.mu.Unlock()
	if idle {
		f.recycle()
	}
	return ok, err
}

// start runs fn on c on a worker.
func (f *fanOut) start(c *shardClient) {
	f.s.workers.Run(func() { f.run(c) })
}

// run makes one call and then decides what follows from it: a call to
// the next shard in place of a failed one, or the outcome.
func (f *fanOut) run(c *shardClient) {
	err := f.fn(f.ctx, c)
	cut := err != nil && ctxEnded(f.ctx)
	if cut {
		c.releaseProbe() // says nothing about the shard
	} else {
		c.record(err, f.s.cfg.Now())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending--
	if f.over {
		return
	}
	if err == nil {
		f.ok++
	} else {
		f.lastErr = fmt.Errorf("shard %s: %w", c.addr, err)
		f.cut = f.cut || cut
		if !cut {
			f.s.stats.replicaErrors.Add(1)
			if isShardFailure(err) && f.tol.replace(f.ok, f.pending) {
				if next := f.pick(); next != nil {
					f.s.stats.failovers.Add(1)
					f.pending++
					f.start(next)
				}
			}
		}
	}
	switch {
	case f.pending == 0:
		// A call cut short means ctx ended before the fan-out did: that
		// is the outcome, as when the caller stops waiting first.
		switch {
		case f.cut:
			f.finish(endedError(f.ok, f.tol, f.ctx.Err()))
		case f.tol.decide(f.ok, 0, 0) == succeeded:
			f.finish(nil)
		default:
			f.finish(f.failure())
		}
	case f.tol.decide(f.ok, f.pending, f.untried()) == failed:
		f.finish(f.failure())
		f.cancel()
	}
}

// finish puts the outcome out; f.mu is held.
func (f *fanOut) finish(err error) {
	f.over, f.result = true, err
	f.finished <- struct{}{} // buffered, and sent once per use
}

// pick returns the next shard to call, nil when none is left. Shards whose
// breaker is open are passed over; if every one is (an overloaded box
// timing out everywhere), trying one anyway beats failing outright.
func (f *fanOut) pick() *shardClient {
	now := f.s.cfg.Now()
	for f.next < len(f.addrs) {
		c := f.s.client(f.addrs[f.next])
		f.next++
		if !c.available(now) {
			f.lastErr = fmt.Errorf("shard %s is failing (breaker open)", c.addr)
			f.skipped = append(f.skipped, c)
			continue
		}
		f.picked++
		return c
	}
	if f.picked == 0 && len(f.skipped) > 0 {
		f.picked++
		c := f.skipped[0]
		f.skipped = f.skipped[1:]
		return c
	}
	return nil
}

// untried bounds from above the calls pick may still hand out.
func (f *fanOut) untried() int {
	n := len(f.addrs) - f.next
	if f.picked == 0 && len(f.skipped) > 0 {
		n++
	}
	return n
}

// failure is the error of a fan-out that cannot succeed.
func (f *fanOut) failure() error {
	if f.lastErr == nil {
		return errors.New("the ring has no healthy shard")
	}
	return fmt.Errorf("%d of %d replicas succeeded, %d needed: %w", f.ok, f.replicas, f.tol.need, f.lastErr)
}

// endedError is the error of a fan-out whose context ended first; it wraps
// the context's error, so that front ends answer it as a deadline or a
// cancellation.
func endedError(ok int, tol tolerance, err error) error {
	if err == nil {
		err = context.DeadlineExceeded // the deadline passed before its timer fired
	}
	return fmt.Errorf("%d of %d replicas answered, %d needed, when the call ended: %w", ok, tol.want, tol.need, err)
}

// ctxEnded reports whether ctx is over, counting a deadline that has
// passed before its timer fired: mcpipe times a call from the deadline
// and may report it a moment before ctx does.
func ctxEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
