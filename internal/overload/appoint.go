package overload

import (
	"math/rand/v2"
	"time"
)

// Appointments: a refused phone is told when to come back, and is taken
// when it does.
//
// A Retry-After drawn at random sends refused phones back into the same
// contest with every new phone, so under a long overload each is refused
// again and again, and every refusal is work the server does instead of
// registering someone (at three times capacity most of the node's spare
// time went to refusing the same phones twice or three times). So a
// refusal books the phone, by its Call-ID (which a phone keeps across the
// transactions of one registration, RFC 3261 §10.2.4), into the earliest
// second from now whose bookings stay under what the server has lately
// been taking per second, and says so in its Retry-After. A phone that
// comes back inside its second, give or take the grace, is taken even
// while the queue stands, provided its wait is still inside the hard
// bound (a phone early or late, or an overbooked second, does not get
// past it): the queue then holds the phones that were told to come, the
// new ones fill what is left, and each phone is refused about once.

const (
	// bookHorizon is how far ahead seconds can be booked (a ring of that
	// many seconds); an appointment further out is not made.
	bookHorizon = 1024
	// maxAppointment is the longest Retry-After an appointment gives; past
	// it a refusal draws one at random as without appointments.
	maxAppointment = 600
	// bookShare is the share of the recent admission rate that the
	// phones told to come back may fill in any second: the rest is for
	// requests no one booked (new phones, in-dialog requests).
	bookShare = 0.8
	// earlyGrace and lateGrace bound, in seconds, how far from its
	// appointment a returning phone still counts as on time: phones
	// count Retry-After from when they read the answer, and some add
	// their own jitter.
	earlyGrace, lateGrace = 1, 30
	// maxBooked bounds the phones booked at once: each costs an entry of
	// the map (some 20 bytes) and one in its second's list (8, up to 16
	// as the list grows).
	maxBooked = 1 << 21
)

type appointments struct {
	due   map[uint64]int64 // Call-ID hash → the second the phone was told to come back in
	slots [bookHorizon]bookSlot
	// full is the last second found full: the search for room starts
	// after it, so that a long book is not walked on every refusal.
	full int64
}

// bookSlot is one second of the ring: how many phones were booked into
// it, and which (so that their entries go when the slot is reused).
type bookSlot struct {
	sec  int64
	n    int
	keys []uint64
}

// slot returns the ring's slot for second sec, emptied of an earlier
// second's bookings (those phones are long past their grace).
func (a *appointments) slot(sec int64) *bookSlot {
	s := &a.slots[sec%bookHorizon]
	if s.sec != sec {
		for _, k := range s.keys {
			if a.due[k] == s.sec {
				delete(a.due, k)
			}
		}
		*s = bookSlot{sec: sec, keys: s.keys[:0]}
	}
	return s
}

// Appoint draws the Retry-After, in seconds, of a request refused now
// from the phone whose Call-ID hashes to key (CallKey), and books it.
// Until the controller has seen a whole window of requests taken, or when
// no second within reach has room, it draws one at random as RetryAfter
// does and books nothing.
func (c *Controller) Appoint(now time.Time, key uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shed++
	budget := int(bookShare * c.rate)
	if budget < 1 || key == 0 {
		return c.retryAfterLocked()
	}
	if c.book.due == nil {
		c.book.due = make(map[uint64]int64)
	}
	if len(c.book.due) >= maxBooked {
		return c.retryAfterLocked()
	}
	nowSec := now.Unix()
	// The earliest second with room, then a draw over the configured
	// range from there: phones told the same moment do not all come back
	// in its first instant, and a second may be a little overbooked,
	// which the hard bound on their wait absorbs.
	first := int64(-1)
	for after := max(int64(c.cfg.RetryMin), c.book.full+1-nowSec); after <= maxAppointment; after++ {
		if c.book.slot(nowSec+after).n < budget {
			first = after
			break
		}
		c.book.full = nowSec + after
	}
	if first < 0 {
		return c.retryAfterLocked()
	}
	after := first + rand.Int64N(int64(c.cfg.RetryMax-c.cfg.RetryMin)+1)
	after = min(after, maxAppointment)
	s := c.book.slot(nowSec + after)
	s.n++
	s.keys = append(s.keys, key)
	c.book.due[key] = nowSec + after
	return int(after)
}

// keepLocked reports whether the phone of key has an appointment about
// now, and if so ends it (a phone is taken once per appointment).
func (c *Controller) keepLocked(now time.Time, key uint64) bool {
	if !c.dueLocked(now, key) {
		return false
	}
	delete(c.book.due, key)
	c.kept++
	return true
}

func (c *Controller) dueLocked(now time.Time, key uint64) bool {
	if key == 0 || c.book.due == nil {
		return false
	}
	due, ok := c.book.due[key]
	sec := now.Unix()
	return ok && sec >= due-earlyGrace && sec <= due+lateGrace
}

// Due reports whether the phone of key, whose request has waited delay
// so far (as for Late), comes back for its appointment and would be
// taken for it; the request is then to be judged by Admit with its key.
// It books or ends nothing.
func (c *Controller) Due(now time.Time, delay time.Duration, key uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.behindAt) < c.cfg.Interval {
		delay += c.behind
	}
	return delay <= max(c.limit(), c.hardLimit()) && c.dueLocked(now, key)
}

// CallKey is the key of a phone's appointment: a hash of its Call-ID,
// never 0 (0 is "no key").
// It takes the Call-ID as a scan holds it (bytes) or as a parsed request
// does (a string), without a copy of either.
func CallKey[T ~string | ~[]byte](callID T) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(callID); i++ {
		h ^= uint64(callID[i])
		h *= 1099511628211
	}
	return max(h, 1)
}
