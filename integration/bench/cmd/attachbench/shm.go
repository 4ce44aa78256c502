package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// memStat is what the sampler saw of one Kamailio during a step: its
// shared memory (core.shmmem real_used) against its tm transactions in
// memory (tm.stats current).
type memStat struct {
	kam      string
	base     int64 // real_used before the step
	peakUsed int64
	peakTx   int64
	total    int64   // the -m it runs with, in bytes
	maxUsed  int64   // core.shmmem max_used at the end of the step
	perTx    float64 // bytes per transaction: slope of real_used over transactions, least squares; NaN without spread
	samples  int
}

// sampler reads every Kamailio of a deployment every -sample-every while
// a step runs, and writes each reading to shm.csv.
type sampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	stats  []memStat
}

const sampleCSVHeader = "deployment,request,offered_per_s,kamailio,t_s,real_used,current,waiting,total"

func (r *runner) startSampler(ctx context.Context, d *deployment, st *step) *sampler {
	loop, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, done: make(chan struct{})}
	t0 := time.Now()
	series := make([][]memSample, len(d.kams))
	read := func() {
		for i, k := range d.kams {
			m, err := k.sample(ctx)
			if err != nil {
				continue // the step's verdict does not depend on it; a gap shows in shm.csv
			}
			series[i] = append(series[i], m)
			fmt.Fprintf(r.samples, "%s,%s,%d,%s,%.2f,%d,%d,%d,%d\n", d.name, st.req, st.rate, k.name,
				m.at.Sub(t0).Seconds(), m.realUsed, m.current, m.waiting, m.total)
		}
	}
	read() // the base, before sipp starts
	go func() {
		defer close(s.done)
		tick := time.NewTicker(r.c.sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-loop.Done():
				read() // one more, after the last answer
				for i, k := range d.kams {
					s.stats = append(s.stats, summarize(k.name, series[i]))
				}
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return s
}

// stop ends the sampling and returns one memStat per Kamailio.
func (s *sampler) stop() []memStat {
	s.cancel()
	<-s.done
	return s.stats
}

func summarize(name string, ms []memSample) memStat {
	st := memStat{kam: name, perTx: math.NaN(), samples: len(ms)}
	if len(ms) == 0 {
		return st
	}
	st.base, st.total, st.maxUsed = ms[0].realUsed, ms[0].total, ms[len(ms)-1].maxUsed
	distinct := map[int64]bool{}
	var sx, sy, sxx, sxy float64
	for _, m := range ms {
		st.peakUsed = max(st.peakUsed, m.realUsed)
		st.peakTx = max(st.peakTx, m.current)
		distinct[m.current] = true
		x, y := float64(m.current), float64(m.realUsed)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(ms))
	if v := sxx - sx*sx/n; len(distinct) >= 4 && v > 0 {
		st.perTx = (sxy - sx*sy/n) / v
	}
	return st
}

func memString(ms []memStat) string {
	var parts []string
	for _, m := range ms {
		p := fmt.Sprintf("%s %d txns %s", m.kam, m.peakTx, mb(float64(m.peakUsed)))
		if !math.IsNaN(m.perTx) {
			p += " " + kb(m.perTx) + "/txn"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; shm: " + strings.Join(parts, ", ")
}

// memFit is a Kamailio's shared memory per transaction and how long a
// request's transaction stays in memory, from the passing steps of one
// search (medians over the steps).
type memFit struct {
	kam      string
	req      request
	perTx    float64 // bytes
	lifetime float64 // seconds: transactions in memory at the level / achieved rate; NaN if unknown
	base     int64   // real_used at rest (the lowest before any step)
	steps    int
}

// fitMemory is kam's memFit over the passing steps of s; the lifetime
// only from those that ran long enough to reach the level (NaN if none
// did, as in -smoke).
func fitMemory(s *search, kam string) (memFit, bool) {
	f := memFit{kam: kam, req: s.req, base: math.MaxInt64, lifetime: math.NaN()}
	var per, life []float64
	for _, st := range s.steps {
		for _, m := range st.mem {
			if m.kam != kam {
				continue
			}
			if m.base > 0 {
				f.base = min(f.base, m.base)
			}
			if !st.pass || math.IsNaN(m.perTx) || st.achieved <= 0 {
				continue
			}
			per = append(per, m.perTx)
			// Only a step that ran well past the transactions' life
			// reached the level where in memory = rate × life.
			if l := float64(m.peakTx) / st.achieved; float64(st.calls)/float64(st.rate) >= 1.5*l {
				life = append(life, l)
			}
		}
	}
	if len(per) == 0 || f.base == math.MaxInt64 {
		return f, false
	}
	f.perTx, f.steps = median(per), len(per)
	if len(life) > 0 {
		f.lifetime = median(life)
	}
	return f, true
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// shmFor is the shared memory a Kamailio needs for rate requests per
// second whose transactions live life seconds: base + rate × life × perTx.
func (f memFit) shmFor(rate, life float64) float64 {
	return float64(f.base) + rate*life*f.perTx
}

// maxRate is the request rate that fills shmBytes of shared memory.
func (f memFit) maxRate(shmBytes int64) float64 {
	return (float64(shmBytes) - float64(f.base)) / (f.lifetime * f.perTx)
}
