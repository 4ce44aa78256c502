// Package overload decides which new requests a server takes on when
// more arrive than it can serve.
//
// The signal is queueing delay: how long a request waited between
// reaching the host (the kernel's receive timestamp) and its handling
// starting. It
// tracks real overload whatever the cause (a slow shard, a burst, a
// smaller machine), where counting busy handlers does not: measured on
// a registration avalanche, refusing whenever the handler slots were
// full cut retransmissions but also cut accepted REGISTERs by a third,
// because the slots fill for a moment long before the server falls
// behind.
//
// The rule is CoDel's, in the form used for request queues: a queue is standing when even the shortest delay seen in
// a whole Interval exceeded Target. While it is not, a request is taken
// unless it waited longer than Interval, a request already late; while
// it is, only requests that waited at most Target are. A short burst
// thus passes untouched, and a standing queue is drained fast, because
// the requests refused are refused cheaply (a stateless 503 costs a
// small fraction of a REGISTER). The admitted requests see at most about
// Target of queueing, so a phone gets its answer well inside SIP's T1
// (500 ms) and does not retransmit.
//
// The delay is judged twice. Admit judges a request when its handling
// starts, with its whole wait: in the socket queue and then behind the
// requests already taken in (CoDel drops at the head of the queue, where
// the whole sojourn is known). Late judges it as it is read, before any
// parse, so that one already too late is refused for almost nothing.
//
// The same windows give the fraction refused, which is what RFC 7339's
// loss algorithm asks upstream proxies to drop before they send, and the
// rate taken, which bounds the appointments a refusal makes (appoint.go):
// a refused phone is told when to come back and is taken then, ahead of
// the new ones.
package overload

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Config is a controller's setting.
type Config struct {
	// Target is the queueing delay a standing queue is held to; 0 turns
	// overload control off.
	Target time.Duration
	// Interval is the window over which a standing queue is told from a
	// burst; about the time a burst takes to drain.
	Interval time.Duration
	// RetryMin and RetryMax bound the Retry-After of a refusal, in
	// seconds; each refusal draws its own, so that refused phones do not
	// come back in lockstep.
	RetryMin, RetryMax int
	// Work is how many new requests the server may have in hand at once
	// while it is overloaded, MaxWork how many otherwise (WorkLimit;
	// 0: no bound).
	Work, MaxWork int
}

// Controller is one server's admission state. Safe for concurrent use.
type Controller struct {
	cfg Config

	mu        sync.Mutex
	windowEnd time.Time
	minDelay  time.Duration // shortest delay of the current window
	standing  bool          // decided at the end of the last window
	taken     int           // verdicts in the current window
	refused   int
	last      Signal
	rate      float64 // requests taken per second, smoothed over windows
	book      appointments
	kept      int64 // appointments kept since the start
	// behind is how long the last request whose handling started had
	// waited since it was read (behind the requests taken in before it),
	// and behindAt when: Late adds it to a request's wait so far.
	behind   time.Duration
	behindAt time.Time
	// shed counts the refusals of the current window (Appoint), and
	// overloadedUntil is when the bound on work in hand stops holding
	// (worklimit.go); workLimit is that bound, read without the lock.
	shed            int
	overloadedUntil time.Time
	workLimit       atomic.Int64
}

// Signal is what the last whole window showed, for metrics and for RFC
// 7339's loss percentage.
type Signal struct {
	MinDelay time.Duration // the shortest queueing delay of the window
	Standing bool          // MinDelay exceeded Target: refusing
	Loss     int           // percent of the window's verdicts that refused
	Kept     int64         // phones taken for their appointment since the start
	Booked   int           // phones with an appointment, at the window's end
	Seq      int64         // the window's end, in ms since the epoch (oc-seq)
}

// New returns a controller; cfg.Target > 0 and cfg.Interval > 0.
func New(cfg Config) *Controller {
	c := &Controller{cfg: cfg}
	c.workLimit.Store(int64(workBound(cfg, false)))
	return c
}

// Admit records that a request waited delay and reports whether it may
// be taken on; behind is the part of delay it spent after it was read.
// now is the time of the verdict, as its handling starts. key is the
// phone's appointment key (CallKey; 0 for none): a phone that comes back
// when it was told to is taken past the target, up to the hard bound.
func (c *Controller) Admit(now time.Time, delay, behind time.Duration, key uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.behind, c.behindAt = behind, now
	if now.After(c.windowEnd) {
		c.closeWindow(now)
	}
	if c.taken+c.refused == 0 || delay < c.minDelay {
		c.minDelay = delay
	}
	if delay > c.limit() && (delay > c.hardLimit() || !c.keepLocked(now, key)) {
		c.refused++
		return false
	}
	c.taken++
	return true
}

// hardLimit is the longest wait of a request taken for its appointment
// while a queue stands: a little past the target, so that the phones
// told to come back go before the new ones without letting the queue
// grow (phones booked past what the server takes, in an overbooked
// second or after the rate fell, are refused again and booked anew).
func (c *Controller) hardLimit() time.Duration {
	return 2 * c.cfg.Target
}

// Late is the check at the front of the queue, before a request is
// taken in: it reports whether a request that has already waited delay
// would be past what Admit takes by the time its handling could start,
// counting the wait behind the requests taken in before it as the last
// handling to start saw it (while that figure is fresh: within an
// interval), and if so counts it refused. Refusing there costs a small
// fraction of refusing after a parse. A request that is not late is not
// recorded: Admit judges it when its handling starts, with its whole
// wait.
func (c *Controller) Late(now time.Time, delay time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.windowEnd) {
		c.closeWindow(now)
	}
	if now.Sub(c.behindAt) < c.cfg.Interval {
		delay += c.behind
	}
	if delay <= c.limit() {
		return false
	}
	if c.taken+c.refused == 0 || delay < c.minDelay {
		c.minDelay = delay
	}
	c.refused++
	return true
}

// limit is the longest wait a request may have had and still be taken.
func (c *Controller) limit() time.Duration {
	if c.standing {
		return c.cfg.Target
	}
	return c.cfg.Interval
}

// closeWindow decides from the window that ended whether the queue is
// standing, and starts the next. A window without requests, or followed
// by a whole window without any, is no queue.
func (c *Controller) closeWindow(now time.Time) {
	n := c.taken + c.refused
	c.last = Signal{Seq: now.UnixMilli()}
	if n > 0 {
		c.last.MinDelay = c.minDelay
		c.last.Loss = c.refused * 100 / n
	}
	idle := now.Sub(c.windowEnd) > c.cfg.Interval
	c.standing = n > 0 && !idle && c.minDelay > c.cfg.Target
	c.last.Standing = c.standing
	c.last.Kept = c.kept
	c.last.Booked = len(c.book.due)
	if !idle && !c.windowEnd.IsZero() {
		// What the server takes per second, followed within a second or
		// so: the budget of appointments.
		r := float64(c.taken) / c.cfg.Interval.Seconds()
		c.rate += 0.2 * (r - c.rate)
	}
	c.closeWork(now)
	c.taken, c.refused = 0, 0
	c.windowEnd = now.Add(c.cfg.Interval)
}

// Signal is the last whole window's.
func (c *Controller) Signal() Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// RetryAfter draws a refusal's Retry-After, in seconds, from the
// configured range stretched by 1/(1-loss), loss being the share the last
// window refused (at most 8 times). Phones that honour it then come back
// at about the rate the server takes them: at three times capacity two in
// three are refused, and with the range as configured each would return
// several times while the load lasts, every return one more refusal to
// pay for.
func (c *Controller) RetryAfter() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retryAfterLocked()
}

func (c *Controller) retryAfterLocked() int {
	loss := c.last.Loss
	stretch := 100.0 / float64(100-min(loss, 87))
	lo := int(float64(c.cfg.RetryMin)*stretch + 0.5)
	hi := int(float64(c.cfg.RetryMax)*stretch + 0.5)
	if hi <= lo {
		return lo
	}
	return lo + rand.IntN(hi-lo+1)
}
