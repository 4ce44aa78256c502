package main

import (
	"context"
	"fmt"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// step is one rung of the refresh ladder: REGISTER refreshes (same
// Call-ID, CSeq + 1, over each client's own connection) at one offered
// rate for -step, while every connection is held and keeps alive.
type step struct {
	rate    int
	offered int // refreshes due at the rate over the step
	sent    int
	busy    int // due while every client still waited for an answer: not sent
	sendErr int

	mu         sync.Mutex // the fields the readers write
	lats       []time.Duration
	ok         int // 200s
	other      int // other final answers
	within     int // 200s within -max-latency
	noRequire  int // 200s without Require: outbound
	lastAnswer time.Time

	unanswered int // no final answer by -max-latency + 1 s after the last send
	start      time.Time
	sendEnd    time.Time
	cpu        float64 // server CPU seconds over the step and its drain
	genCPU     float64 // the generator's, over the same time
	wall       time.Duration
	pass       bool
	verdict    string
}

func (s *step) answered(r response, lat time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lats = append(s.lats, lat)
	s.lastAnswer = time.Now()
	if r.code != 200 {
		s.other++
		return
	}
	s.ok++
	if lat <= maxLatency {
		s.within++
	}
	if !r.requireOutbound {
		s.noRequire++
	}
}

// maxLatency is the response time within which a refresh counts as
// sustained (-max-latency).
var maxLatency = time.Second

// runStep offers refreshes at rate for -step, paced every millisecond
// from one goroutine, each to the next client in a fixed shuffled order
// that is not still waiting for an answer; then waits up to -max-latency
// + 1 s for the answers and gives up on the rest.
func (b *bench) runStep(ctx context.Context, rate int) (*step, error) {
	s := &step{rate: rate, offered: max(1, int(float64(rate)*b.c.stepLen.Seconds()))}
	cpu0, err := procs.CPUTicks(b.srv.p.PID())
	if err != nil {
		return nil, err
	}
	gen0, _ := procs.CPUTicks(os.Getpid())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	s.start = time.Now()
	for done := 0; done < s.offered; {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		due := min(s.offered, int(float64(rate)*time.Since(s.start).Seconds())+1)
		for ; done < due; done++ {
			c := b.nextIdle()
			if c == nil { // all waiting: the server is far behind
				s.busy += due - done
				done = due
				break
			}
			if err := c.register(s); err != nil {
				s.sendErr++
				b.noteErr(fmt.Errorf("%s client %d: refresh: %v", c.kind, c.id, err))
				continue
			}
			s.sent++
		}
	}
	s.sendEnd = time.Now()
	for deadline := s.sendEnd.Add(maxLatency + time.Second); time.Now().Before(deadline); {
		s.mu.Lock()
		all := s.ok+s.other >= s.sent
		s.mu.Unlock()
		if all {
			break
		}
		if err := procs.Sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	for _, c := range b.clients {
		if p := c.pend.Load(); p != nil && p.to == answerSink(s) && c.pend.CompareAndSwap(p, nil) {
			s.unanswered++
		}
	}
	cpu1, err := procs.CPUTicks(b.srv.p.PID())
	if err != nil {
		return nil, err
	}
	gen1, _ := procs.CPUTicks(os.Getpid())
	s.cpu, s.genCPU = float64(cpu1-cpu0)/clkTck, float64(gen1-gen0)/clkTck
	s.wall = time.Since(s.start)
	s.judge()
	return s, nil
}

// nextIdle is the next client in refresh order with no REGISTER waiting,
// or nil when every one is waiting.
func (b *bench) nextIdle() *client {
	for range len(b.order) {
		c := b.order[b.cursor]
		b.cursor = (b.cursor + 1) % len(b.order)
		if c.pend.Load() == nil {
			return c
		}
	}
	return nil
}

// achieved is the 200s over the time from the first send to the last
// answer, plus one interval between sends (the first send is at the
// step's start, the last one interval before its end): below the offered
// rate when answers fall behind.
func (s *step) achieved() float64 {
	if s.ok == 0 {
		return 0
	}
	return float64(s.ok) / (s.lastAnswer.Sub(s.start).Seconds() + 1/float64(s.rate))
}

// judge: a step is sustained when at least 99 % of the refreshes offered
// got their 200 within -max-latency, the achieved rate is at least 97 %
// of the offered one, and every 200 carried Require: outbound. A refresh
// that could not be sent because every client still waited for an
// answer counts as not answered in time: with few clients and a high
// rate, each refreshes many times a second.
func (s *step) judge() {
	var why []string
	if float64(s.within) < 0.99*float64(s.offered) {
		why = append(why, fmt.Sprintf("%.1f %% answered 200 within %v", 100*float64(s.within)/float64(s.offered), maxLatency))
	}
	if a := s.achieved(); a < 0.97*float64(s.rate) {
		why = append(why, fmt.Sprintf("achieved %.0f/s < 97 %%", a))
	}
	if s.noRequire > 0 {
		why = append(why, fmt.Sprintf("%d 200s without Require: outbound", s.noRequire))
	}
	if s.busy > 0 && len(why) > 0 {
		// Not a reason of its own (they count as not answered in time),
		// but it says why so many were not.
		why = append(why, fmt.Sprintf("%d not sent: every client still waiting", s.busy))
	}
	s.pass = len(why) == 0
	s.verdict = "sustained"
	if !s.pass {
		s.verdict = strings.Join(why, ", ")
	}
}

func (s *step) percentile(p float64) time.Duration {
	if len(s.lats) == 0 {
		return 0
	}
	l := slices.Clone(s.lats)
	slices.Sort(l)
	i := min(max(int(p/100*float64(len(l))+0.5)-1, 0), len(l)-1)
	return l[i]
}

const stepCSVHeader = "offered_per_s,step_s,offered,sent,busy,send_errors,ok_200,other,within_max_latency,no_require_outbound,unanswered,achieved_per_s,p50_ms,p99_ms,max_ms,server_cpu_s,cpu_us_per_register,generator_cpu_s,wall_s,pass,verdict"

func (s *step) csv(stepLen time.Duration) string {
	return fmt.Sprintf("%d,%g,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.1f,%.2f,%.2f,%.2f,%.2f,%.1f,%.2f,%.2f,%t,%q",
		s.rate, stepLen.Seconds(), s.offered, s.sent, s.busy, s.sendErr, s.ok, s.other, s.within, s.noRequire, s.unanswered,
		s.achieved(), msf(s.percentile(50)), msf(s.percentile(99)), msf(s.percentile(100)), s.cpu, s.cpuPerRegister(),
		s.genCPU, s.wall.Seconds(), s.pass, s.verdict)
}

func (s *step) cpuPerRegister() float64 {
	if s.ok == 0 {
		return 0
	}
	return s.cpu / float64(s.ok) * 1e6
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
