package main

import (
	"context"
	"fmt"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/ratesearch"
)

// search is the outcome of one rate search.
type search struct {
	deployment string
	req        request
	best       *step // highest sustainable step; nil if none
	bounded    bool  // stopped by the time budget or -max-rate before the limit was found
	note       string
	steps      []*step
}

// found is what s found, as the table shows it; s may be nil (not run).
func (s *search) found() ratesearch.Best {
	if s == nil {
		return ratesearch.Best{}
	}
	b := ratesearch.Best{Ran: true, Bounded: s.bounded, Note: s.note}
	if st := s.best; st != nil {
		b.Found, b.Rate, b.P50, b.P99, b.OK, b.CPU = true, st.rate, st.p50, st.p99, st.ok, st.cpu
	}
	return b
}

// search finds d's highest sustainable rate for req, sipbench's way
// (ratesearch): doubling from -start-rate until a step fails, then
// -bisect bisections;
// a step that failed only because sipp could not send at the offered
// rate (a busy machine) is run once more. deadline is its share of the
// budget. In -smoke mode it is one step at -smoke-rate that passes only
// if every call succeeded.
func (r *runner) search(ctx context.Context, d *deployment, req request, deadline time.Time) (*search, error) {
	s := &search{deployment: d.name, req: req}
	c := r.c
	if c.smoke {
		st, err := r.runStep(ctx, d, req, c.smokeRate, c.users, 0, "")
		if err != nil {
			return s, err
		}
		s.steps = append(s.steps, st)
		if st.failed == 0 && st.ok == st.calls {
			s.best = st
		} else {
			s.note = st.verdict
		}
		return s, nil
	}
	stepCost := c.step + 2*c.cooldown + 3*time.Second
	b := ratesearch.Bisector{Rate: c.startRate}
	limits := ratesearch.Limits{MaxRate: c.maxRate, MinRate: c.minRate, Bisect: c.bisect}
	for {
		if len(s.steps) > 0 && time.Now().Add(stepCost).After(deadline) {
			s.bounded = true
			s.note = "time budget"
			return s, nil
		}
		st, err := r.measure(ctx, d, s, b.Rate)
		if err != nil {
			return s, err
		}
		if p := d.exited(); p != nil {
			return s, fmt.Errorf("%s exited during the step at %d/s: %v", p.Name, b.Rate, p.Err())
		}
		if st.pass && (s.best == nil || st.rate > s.best.rate) {
			s.best = st
		}
		wait := c.cooldown
		if !st.pass {
			wait *= 2
		}
		if err := procs.Sleep(ctx, wait); err != nil {
			return s, err
		}
		if done, bounded, note := b.Next(limits, st.pass); done {
			s.bounded, s.note = bounded, note
			return s, nil
		}
	}
}

// measure runs one step of s at rate, and once more if sipp rather than
// the deployment was the limit. The steps are added to s.
func (r *runner) measure(ctx context.Context, d *deployment, s *search, rate int) (*step, error) {
	calls := max(int(float64(rate)*r.c.step.Seconds()), 1)
	st, err := r.runStep(ctx, d, s.req, rate, calls, 0, "")
	if err != nil {
		return nil, err
	}
	s.steps = append(s.steps, st)
	if !st.senderLimited {
		return st, nil
	}
	logf("         sipp could not send at %d/s with no sign of overload: repeating the step", rate)
	if err := procs.Sleep(ctx, r.c.cooldown); err != nil {
		return nil, err
	}
	if st, err = r.runStep(ctx, d, s.req, rate, calls, 0, ""); err != nil {
		return nil, err
	}
	s.steps = append(s.steps, st)
	return st, nil
}
