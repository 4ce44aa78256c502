package main

import (
	"context"
	"fmt"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/ratesearch"
	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// searchCapacity finds the target's C: the highest sustainable REGISTER
// rate by sipbench's rule (package ratesearch), with the server and sipp
// pinned as for the rest of the run. The steps are shorter than
// sipbench's (-search-step) so that the whole run fits in 10 minutes.
func (r *runner) searchCapacity(ctx context.Context, srv *target.Server, res *result) error {
	if r.c.smoke {
		// One step, whose rate stands for C; it need not pass the rule
		// (see smokeCheck), only answer most of its calls.
		st, err := r.capacityStep(ctx, srv, r.c.startRate)
		if err != nil {
			return err
		}
		res.search = append(res.search, st)
		if st.ok > 0 && st.ok >= st.calls/2 {
			res.capacity = st
		} else {
			res.note = st.verdict
		}
		return nil
	}
	deadline := time.Now().Add(r.c.searchBudget)
	stepCost := r.c.searchStep + 2*r.c.cooldown + 3*time.Second
	limits := ratesearch.Limits{MaxRate: r.c.maxRate, MinRate: r.c.minRate, Bisect: r.c.bisect}
	b := ratesearch.Bisector{Rate: r.c.startRate}
	for {
		if len(res.search) > 0 && time.Now().Add(stepCost).After(deadline) {
			res.bounded, res.note = true, "time budget"
			return nil
		}
		st, err := r.measureRate(ctx, srv, res, b.Rate)
		if err != nil {
			return err
		}
		if st.pass && (res.capacity == nil || st.rate > res.capacity.rate) {
			res.capacity = st
		}
		pause := r.c.cooldown
		if !st.pass {
			pause *= 2
		}
		if err := procs.Sleep(ctx, pause); err != nil {
			return err
		}
		if done, bounded, note := b.Next(limits, st.pass); done {
			res.bounded, res.note = bounded, note
			if st.senderLimited {
				// sipp could not offer more: the server's limit is
				// higher still.
				res.bounded, res.note = true, "sipp could send no faster"
			}
			return nil
		}
	}
}

// givenCapacity is a C passed with -capacity, standing in for a search.
func givenCapacity(name string, c int) *step {
	return &step{target: name, kind: "capacity", label: "given", rate: c, goodput: float64(c), capacity: c}
}

// measureRate runs one search step at rate, and once more if sipp rather
// than the server was the limit.
func (r *runner) measureRate(ctx context.Context, srv *target.Server, res *result, rate int) (*step, error) {
	st, err := r.capacityStep(ctx, srv, rate)
	if err != nil {
		return nil, err
	}
	res.search = append(res.search, st)
	if !st.senderLimited {
		return st, nil
	}
	logf("         sipp could not send at %d/s with no sign of server overload: repeating the step", rate)
	if err := procs.Sleep(ctx, r.c.cooldown); err != nil {
		return nil, err
	}
	if st, err = r.capacityStep(ctx, srv, rate); err != nil {
		return nil, err
	}
	res.search = append(res.search, st)
	return st, nil
}

// capacityStep is one step of the search: sipbench's REGISTER step
// (sipp/register.xml, one REGISTER per call, 4 s receive timeout) at a
// fixed rate. Its goodput is the achieved rate: answered calls over the
// span of their answers.
func (r *runner) capacityStep(ctx context.Context, srv *target.Server, rate int) (*step, error) {
	calls := max(int(float64(rate)*r.c.searchStep.Seconds()), 1)
	st, err := r.newStep(srv.Name, "capacity", fmt.Sprintf("capacity-%06d", rate), rate, calls, 0)
	if err != nil {
		return nil, err
	}
	timeout := st.window() + 8*time.Second
	args := r.sippArgs(srv, st, "register.xml", max(rate*4, 100), sippout.RttFreq(calls), 4*time.Second, timeout)
	exitErr, err := r.execSipp(ctx, srv, st, args, timeout+20*time.Second)
	if err != nil {
		return st, err
	}
	last, _, err := st.readCounts(exitErr)
	if err != nil {
		return nil, err
	}
	st.sent = last["CallRate(C)"]
	st.failed += st.unfinished + st.notStarted // never answered before sipp gave up
	if st.samples > 0 {                        // with none (all in a partial batch sipp dropped), no span
		st.goodput = float64(st.ok) / (st.span + 1/float64(rate))
	}
	st.offered = st.sent
	st.pass, st.senderLimited, st.verdict = ratesearch.Verdict(ratesearch.Outcome{
		Rate: rate, Calls: calls, Failed: st.failed, Retrans: st.retrans, Achieved: st.goodput, Sent: st.sent})
	st.log()
	fmt.Fprintln(r.steps, st.csv())
	return st, nil
}
