package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/ratesearch"
	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

type request string

const (
	register request = "register"
	invite   request = "invite"
	preload  request = "preload" // register every user once from the phone's port, resending on 5xx
)

var scenarioFile = map[request]string{register: "register.xml", invite: "invite_busy.xml", preload: "register_preload.xml"}

var requestTitle = map[request]string{register: "REGISTER -> 200", invite: "INVITE -> phone's 486 + ACK"}

// step is one sipp run at a fixed rate, and its verdict.
type step struct {
	deployment, dir string
	req             request
	rate, calls     int

	ok, failed, retrans int
	achieved            float64 // answered calls per second
	sent                float64 // calls per second sipp started: below the offered rate, sipp was the limit
	p50, p99            float64 // ms
	cpu                 float64 // CPU seconds of the deployment's processes
	sippCPU             float64
	wall                time.Duration
	mem                 []memStat // per Kamailio of the deployment
	pass                bool
	senderLimited       bool // failed only because sipp sent below the offered rate
	verdict             string
}

// runStep runs one sipp step of calls at rate against d and judges it by
// the rule of a sustainable step. localPort 0 picks a free port; label
// names the step's folder (default: request and rate).
func (r *runner) runStep(ctx context.Context, d *deployment, req request, rate, calls, localPort int, label string) (*step, error) {
	if label == "" {
		label = fmt.Sprintf("%s-%06d", req, rate)
	}
	dir := filepath.Join(d.dir, label)
	for i := 2; ; i++ {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		dir = filepath.Join(d.dir, fmt.Sprintf("%s-%d", label, i))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	st := &step{deployment: d.name, dir: dir, req: req, rate: rate, calls: calls}
	if localPort == 0 {
		p, err := procs.FreePort()
		if err != nil {
			return nil, err
		}
		localPort = p
	}
	run := r.sipp(d, st, localPort)
	args := run.SippArgs()
	_ = os.WriteFile(filepath.Join(dir, "command.txt"), []byte("sipp "+strings.Join(args, " ")+"\n"), 0o644)

	sampler := r.startSampler(ctx, d, st)
	cpu0 := d.cpuTicks()
	t0 := time.Now()
	p, err := children.Start("sipp", filepath.Join(dir, "sipp.out"), dir, nil, "sipp", args...)
	if err != nil {
		sampler.stop()
		return nil, err
	}
	var exitErr error
	select {
	case <-p.Done():
		exitErr = p.Err()
	case <-ctx.Done():
		p.Stop()
		sampler.stop()
		return nil, ctx.Err()
	case <-time.After(run.Duration() + 20*time.Second):
		p.Stop()
		exitErr = errors.New("sipp did not end: killed")
	}
	st.wall = time.Since(t0)
	st.cpu = float64(d.cpuTicks()-cpu0) / target.ClkTck
	st.sippCPU = p.CPUSeconds()
	st.mem = sampler.stop()
	if err := st.readResults(exitErr); err != nil {
		return nil, err
	}
	st.judge()
	logf("%-8s %-8s %6d/s x %6d: %-4s sent %6.0f/s, achieved %6.0f/s, retrans %d, failed %d, p50 %s p99 %s, %.2f cores%s",
		d.name, req, rate, calls, map[bool]string{true: "PASS", false: "FAIL"}[st.pass], st.sent, st.achieved, st.retrans, st.failed,
		ratesearch.Ms(st.p50), ratesearch.Ms(st.p99), st.cpu/st.wall.Seconds(), memString(st.mem))
	if !st.pass {
		logf("         %s", st.verdict)
	}
	fmt.Fprintln(r.steps, st.csv())
	return st, nil
}

// sipp is the step as ratesearch runs it.
func (r *runner) sipp(d *deployment, st *step, port int) ratesearch.Step {
	return ratesearch.Step{Scenario: filepath.Join(r.c.assets, "sipp", scenarioFile[st.req]), UsersCSV: r.usersCSV,
		Dir: st.dir, Target: d.entry.sip, Port: port, Rate: st.rate, Calls: st.calls}
}

// startPhone starts the phone every user is registered at: sipp in
// server mode (phone_busy.xml) on the phone's port, until stopped.
func (r *runner) startPhone(d *deployment) (*procs.Proc, error) {
	dir := d.dir
	args := []string{"-sf", filepath.Join(r.c.assets, "sipp", "phone_busy.xml"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(r.phonePort), "-t", "u1",
		"-buff_size", "4194304", "-nostdin",
		"-trace_stat", "-stf", filepath.Join(dir, "phone-stat.csv"), "-fd", "1"}
	_ = os.WriteFile(filepath.Join(dir, "phone-command.txt"), []byte("sipp "+strings.Join(args, " ")+"\n"), 0o644)
	p, err := children.Start("phone", filepath.Join(dir, "phone.out"), dir, nil, "sipp", args...)
	if err != nil {
		return nil, err
	}
	// sipp binds at once; a port taken meanwhile makes it exit.
	if err := procs.Sleep(context.Background(), 300*time.Millisecond); err != nil {
		return nil, err
	}
	if p.Exited() {
		return nil, fmt.Errorf("phone sipp on port %d exited: %v\n%s", r.phonePort, p.Err(), target.Tail(filepath.Join(dir, "phone.out")))
	}
	return p, nil
}

// readResults reads the counts, the achieved rate and the response times
// from sipp's files.
func (st *step) readResults(exitErr error) error {
	stats, err := sippout.ReadStat(filepath.Join(st.dir, "stat.csv"))
	if err != nil {
		return fmt.Errorf("sipp %s at %d/s gave no statistics (%v; exit: %v); see %s", st.req, st.rate, err, exitErr, st.dir)
	}
	st.ok, st.failed, st.retrans = int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"]), int(stats["Retransmissions(C)"])
	st.sent = stats["CallRate(C)"]
	if lost := st.calls - st.ok - st.failed; lost > 0 { // never answered before sipp gave up
		st.failed += lost
	}
	rtt, err := sippout.ReadRTT(st.dir)
	if err != nil {
		return err
	}
	st.p50, st.p99 = sippout.Percentile(rtt.Sorted, 50), sippout.Percentile(rtt.Sorted, 99)
	switch {
	case st.req == preload: // no response times: over the whole run
		st.achieved = float64(st.ok) / st.wall.Seconds()
	case st.ok > 0 && len(rtt.Sorted) > 0:
		st.achieved = float64(st.ok) / (rtt.Span()/1000 + 1/float64(st.rate))
	}
	return nil
}

// judge sets pass, senderLimited and verdict by the rule of a
// sustainable step (ratesearch.Verdict, sipbench's); a preload passes
// when every user got registered.
func (st *step) judge() {
	if st.req == preload {
		st.pass, st.verdict = st.failed == 0 && st.ok >= st.calls, "ok"
		if !st.pass {
			st.verdict = fmt.Sprintf("%d of %d not registered", st.calls-st.ok, st.calls)
		}
		return
	}
	st.pass, st.senderLimited, st.verdict = ratesearch.Verdict(ratesearch.Outcome{
		Rate: st.rate, Calls: st.calls, Failed: st.failed, Retrans: st.retrans, Achieved: st.achieved, Sent: st.sent})
}

const stepCSVHeader = "deployment,request,offered_per_s,calls,sent_per_s,successful,failed,retransmissions,achieved_per_s,p50_ms,p99_ms,cpu_deployment_s,cpu_sipp_s,wall_s,pass,verdict,dir"

func (st *step) csv() string {
	return fmt.Sprintf("%s,%s,%d,%d,%.1f,%d,%d,%d,%.1f,%g,%g,%.2f,%.2f,%.2f,%t,%q,%s",
		st.deployment, st.req, st.rate, st.calls, st.sent, st.ok, st.failed, st.retrans, st.achieved, st.p50, st.p99,
		st.cpu, st.sippCPU, st.wall.Seconds(), st.pass, st.verdict, st.dir)
}
