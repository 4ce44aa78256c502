package main

import (
	"context"
	"fmt"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/ratesearch"
)

// checkResult is the sizing check: A's edge at -check-mb offered rates
// below and above the one predicted to fill its shared memory.
type checkResult struct {
	mb        int
	base      int64
	predicted float64 // REGISTER/s that fill -check-mb, by the fit
	steps     []checkStep
}

type checkStep struct {
	factor     float64 // of predicted
	st         *step
	outOfShm   int // edge log lines reporting shared memory exhausted during the step
	peakUsed   int64
	total      int64
	answered5x int // calls that failed: 500 "No error" (t_relay out of memory) or no answer
}

// outOfShmLine matches what Kamailio 5.6 logs when a shared memory
// allocation fails: "could not allocate shared memory from shm pool"
// (core and modules), tm's "no more shm memory!", the allocators' "Free
// fragment not found!".
var outOfShmLine = regexp.MustCompile(`could not allocate shared memory|no more shm memory|Free fragment not found`)

// shmCheck starts A with the edge at -check-mb and offers it 0.7 and 1.3
// times the REGISTER rate that fit predicts fills it, -check-step each.
func (r *runner) shmCheck(ctx context.Context, fit memFit) (*checkResult, error) {
	d, err := startDeployment(ctx, r.c, attached, filepath.Join(r.dir, "check"), r.c.checkMB)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	m, err := d.entry.sample(ctx)
	if err != nil {
		return nil, err
	}
	fit.base = m.realUsed
	res := &checkResult{mb: r.c.checkMB, base: m.realUsed, predicted: fit.maxRate(m.total)}
	logf("sizing check: edge -m %d, %s per transaction, life %.2f s: predicted to fill at %.0f REGISTER/s",
		r.c.checkMB, kb(fit.perTx), fit.lifetime, res.predicted)
	for _, f := range []float64{0.7, 1.3} {
		rate := ratesearch.RoundRate(int(f * res.predicted))
		before := countLines(d.entry.log, outOfShmLine)
		st, err := r.runStep(ctx, d, register, rate, int(float64(rate)*r.c.checkStep.Seconds()), 0, fmt.Sprintf("check-%s-%06d", fmtFactor(f), rate))
		if err != nil {
			return res, err
		}
		cs := checkStep{factor: f, st: st, outOfShm: countLines(d.entry.log, outOfShmLine) - before, answered5x: st.failed}
		for _, ms := range st.mem {
			cs.peakUsed, cs.total = ms.peakUsed, ms.total
		}
		res.steps = append(res.steps, cs)
		logf("sizing check at %d/s (%s of predicted): %s, edge peak shm %s of %s, %d out-of-shm log lines",
			rate, fmtFactor(f), st.verdict, mb(float64(cs.peakUsed)), mb(float64(cs.total)), cs.outOfShm)
		if d.entry.proc.Exited() {
			logf("sizing check: the edge exited")
			break
		}
		// Let the transactions of this step expire before the next.
		r.waitDrained(ctx, d.entry, 20*time.Second)
	}
	return res, nil
}

// waitDrained waits until k holds no transaction, up to d.
func (r *runner) waitDrained(ctx context.Context, k *kam, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, err := k.sample(ctx)
		if err != nil || m.current == 0 {
			return
		}
		if procs.Sleep(ctx, 500*time.Millisecond) != nil {
			return
		}
	}
}

func countLines(path string, re *regexp.Regexp) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return len(re.FindAllIndex(b, -1))
}

func fmtFactor(f float64) string { return fmt.Sprintf("%.1fx", f) }
