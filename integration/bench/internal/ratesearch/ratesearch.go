// Package ratesearch is the rule of a sustainable rate and the search
// for the highest one, as sipbench defined them; overbench measures a
// server's capacity C, and attachbench two deployments, with the same
// rule. A step is one sipp run of
// fixed-rate calls. It is sustainable when
//
//   - no call failed,
//   - sipp retransmitted fewer than 0.1 % of the calls' requests (over UDP
//     an overloaded server shows as retransmissions, not failures), and
//   - the achieved rate (answered calls over the span of their answers)
//     is at least 97 % of the offered rate.
//
// The search doubles the rate from a start until a step fails (halves
// it while even the first fails), then bisects.
package ratesearch

import (
	"fmt"
	"strings"
)

// Outcome is what a step measured.
type Outcome struct {
	Rate     int     // offered calls per second
	Calls    int     // calls of the step
	Failed   int     // calls that failed or were never answered
	Retrans  int     // sipp's retransmissions
	Achieved float64 // answered calls per second, over the span of their answers
	Sent     float64 // calls per second sipp started: below Rate, sipp was the limit
}

// Verdict judges o by the rule. senderLimited means the step failed only
// because sipp could not send at the offered rate (a busy machine, no
// sign of server overload): it says nothing about the server. why lists
// what failed, "ok" when the step passed.
func Verdict(o Outcome) (pass, senderLimited bool, why string) {
	var reasons []string
	if o.Failed > 0 {
		reasons = append(reasons, fmt.Sprintf("%d failed", o.Failed))
	}
	retransOK := float64(o.Retrans) < 0.001*float64(o.Calls)
	if !retransOK {
		reasons = append(reasons, fmt.Sprintf("retransmissions %.2f%%", 100*float64(o.Retrans)/float64(o.Calls)))
	}
	if o.Achieved < 0.97*float64(o.Rate) {
		reasons = append(reasons, fmt.Sprintf("achieved %.0f/s < 97%%", o.Achieved))
	}
	pass = len(reasons) == 0
	senderLimited = !pass && o.Failed == 0 && retransOK && o.Sent < 0.97*float64(o.Rate)
	if senderLimited {
		reasons = append(reasons, fmt.Sprintf("sipp sent only %.0f/s", o.Sent))
	}
	if pass {
		return true, false, "ok"
	}
	return false, senderLimited, strings.Join(reasons, ", ")
}

// Limits bound a search.
type Limits struct {
	MaxRate int // highest rate tried: the search stops there
	MinRate int // below it the search gives up
	Bisect  int // bisection steps after the doubling phase
}

// Bisector picks the next offered rate of a search.
type Bisector struct {
	Rate       int // the rate being tried
	lo, hi     int // highest sustainable and lowest failed rates (0: none yet)
	bisections int
}

// Next records whether the step at b.Rate passed and moves b.Rate to the
// next rate. done ends the search; then bounded says that the limit was
// not found (-max-rate reached) and note why the search ended, if not
// because the limit was found.
func (b *Bisector) Next(l Limits, pass bool) (done, bounded bool, note string) {
	if pass {
		b.lo = b.Rate
	} else {
		b.hi = b.Rate
	}
	switch {
	case b.hi == 0: // doubling
		if b.Rate >= l.MaxRate {
			return true, true, "reached -max-rate"
		}
		b.Rate = min(b.Rate*2, l.MaxRate)
		return false, false, ""
	case b.lo == 0: // even the first rate failed: halve
		b.Rate /= 2
		if b.Rate < l.MinRate {
			return true, false, fmt.Sprintf("not sustainable even at %d/s", b.hi)
		}
		return false, false, ""
	}
	if b.bisections >= l.Bisect || float64(b.hi-b.lo) <= 0.05*float64(b.lo) {
		return true, false, ""
	}
	b.bisections++
	b.Rate = RoundRate((b.lo + b.hi) / 2)
	return b.Rate <= b.lo || b.Rate >= b.hi, false, ""
}

// RoundRate keeps offered rates readable: two significant digits.
func RoundRate(r int) int {
	unit := 1
	for r/unit >= 100 {
		unit *= 10
	}
	return max(r/unit*unit, 1)
}
