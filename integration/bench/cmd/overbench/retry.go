package main

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// retryStep starts phones at rate for the step's window (phones / rate),
// each registering with sipp/register_retry.xml (a 503 is retried after
// its Retry-After; a transaction unanswered for -give-up makes the phone
// give up), and lets them finish for at most -drain after the window.
//
// An overload step's goodput is the 200s received per second from the
// start to the end of the window: what the server delivers under that
// load, not the backlog it clears afterwards. The avalanche's is the
// phones registered per second until the last one was (its lastAt).
func (r *runner) retryStep(ctx context.Context, srv *target.Server, label string, rate, phones, capacity int) (*step, error) {
	kind := "load"
	if label == "avalanche" {
		kind = "avalanche"
	}
	st, err := r.newStep(srv.Name, kind, label, rate, phones, capacity)
	if err != nil {
		return nil, err
	}
	drain := r.drainFor(st.window())
	r.retryStepsLeft--
	// No limit on open calls: a phone waiting out a Retry-After is an open
	// call, and -l would hold back new phones, lowering the offered load.
	// sipp's -timeout only stops new calls, so it has none: the harness
	// ends the step with signals instead.
	args := r.sippArgs(srv, st, "register_retry.xml", phones, rttBatch(phones, kind), r.c.giveUp, 0)
	// Answers to a phone's earlier transactions are ignored, not fatal
	// (register_retry.xml says why), and a phone that gives up sends
	// nothing more (sipp's default "bye" behaviour would send the server
	// a BYE for it).
	args = append(args, "-default_behaviors", "none", "-pause_msg_ign")
	// A phone retransmits until Timer F, not until sipp's default count
	// (9, which runs out at 31.5 s); -recv_timeout then ends the
	// transaction at -give-up.
	n := strconv.Itoa(retransmissionsWithin(r.c.giveUp))
	args = append(args, "-max_retrans", n, "-max_non_invite_retrans", n)
	exitErr, err := r.execSipp(ctx, srv, st, args, st.window()+drain+20*time.Second,
		// A second after the window (sipp takes a moment to start),
		// SIGUSR1: no new phones, so that the load lasts the window also
		// when sipp could not start phones at the rate asked; the phones
		// started finish. (When all have started, it changes nothing.)
		signalAt{st.window() + time.Second, syscall.SIGUSR1},
		// After the drain, SIGTERM: sipp drops the phones still retrying
		// and exits with its statistics. (A second SIGUSR1 would abort
		// them, but sipp 3.6 then waits forever for their count to drop.)
		signalAt{st.window() + time.Second + drain, syscall.SIGTERM})
	if err != nil {
		return st, err
	}
	_, rows, err := st.readCounts(exitErr)
	if err != nil {
		return nil, err
	}
	st.offered, st.goodput = atWindowEnd(rows, st.window().Seconds())
	if kind == "avalanche" {
		st.goodput = 0
		if st.lastAt > 0 {
			st.goodput = float64(st.ok) / st.lastAt
		}
	}
	st.verdict = "ok"
	if st.failed+st.unfinished > 0 {
		st.verdict = fmt.Sprintf("%d gave up, %d still retrying", st.failed, st.unfinished)
	}
	if st.notStarted > 0 {
		st.verdict += fmt.Sprintf("; sipp started %d of %d phones in the window", st.calls-st.notStarted, st.calls)
	}
	st.log()
	fmt.Fprintln(r.steps, st.csv())
	return st, nil
}

// retransmissionsWithin is how many times a phone retransmits a
// non-INVITE request over UDP before d: at T1 (500 ms) after the first
// send, then doubling the interval up to T2 (4 s) (RFC 3261 §17.1.2.2).
func retransmissionsWithin(d time.Duration) int {
	n := 0
	interval := 500 * time.Millisecond
	for at := interval; at < d; at += interval {
		n++
		interval = min(2*interval, 4*time.Second)
	}
	return n
}

// rttBatch is -rtt_freq of a retry step. sipp writes response times in
// batches and drops the last partial one; some phones give up, so no
// batch size is sure to divide the answered calls. Batches of at most
// 100 lose at most 99 of a step's hundreds of thousands of samples
// (under 0.1 %, at the slow end). The avalanche writes every sample: its
// last 200 is the figure.
func rttBatch(phones int, kind string) int {
	if kind == "avalanche" {
		return 1
	}
	return min(max(phones/1000, 1), 100)
}

// atWindowEnd reads, from sipp's statistics of every second, the phones
// started and the 200s received per second from sipp's start to the end
// of the offered window (interpolated between the rows around it).
func atWindowEnd(rows []sippout.Row, window float64) (offered, goodput float64) {
	var prevT, prevStarted, prevOK float64
	for _, row := range rows {
		t := row["CurrentTime"] - row["StartTime"]
		started, ok := row["OutgoingCall(C)"], row["SuccessfulCall(C)"]
		if t >= window && t > prevT {
			f := (window - prevT) / (t - prevT)
			started = prevStarted + f*(started-prevStarted)
			ok = prevOK + f*(ok-prevOK)
			return started / window, ok / window
		}
		prevT, prevStarted, prevOK = t, started, ok
	}
	if prevT <= 0 { // sipp ended before the window did
		return 0, 0
	}
	return prevStarted / prevT, prevOK / prevT
}

// drainFor is how long the phones of a step whose load lasts window may
// still retry after it: -drain, or less (never under 10 s) when the steps
// left would not fit in -budget otherwise. A step costs its window, its
// drain and about 8 s of server start, stop and cooldown; the capacity
// searches not yet run are set aside at -search-budget and 15 s each.
func (r *runner) drainFor(window time.Duration) time.Duration {
	left := r.c.budget - time.Since(r.start) - time.Duration(r.searchesLeft)*(r.c.searchBudget+15*time.Second)
	per := left/time.Duration(max(r.retryStepsLeft, 1)) - window - 8*time.Second
	d := min(r.c.drain, max(per, 10*time.Second))
	if d < r.c.drain {
		logf("         drain cut to %s to fit -budget", d.Round(time.Second))
	}
	return d
}
