package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// step is one sipp run against a server.
type step struct {
	target, kind, label, dir string // kind: capacity, load, avalanche
	mult                     float64
	rate, calls              int // offered rate, phones (calls)
	capacity                 int // the target's C, for goodput / C

	ok, failed, unfinished, notStarted int
	registers, refusals, retrans       int     // REGISTER transactions sent, 503s received, retransmissions
	offered                            float64 // phones started per second while the load was offered
	goodput                            float64 // 200s per second (see retryStep, capacityStep)
	sent                               float64 // capacity steps: calls per second sipp started over the run (its CallRate(C))
	p50, p99, max                      float64 // ms from a phone's first REGISTER to its 200
	lastAt                             float64 // s from the first REGISTER to the last 200
	span                               float64 // s from the first 200 to the last
	samples                            int     // response times sipp wrote
	peakRSS                            map[string]int64
	cpu                                map[string]float64
	rcvbufErrs                         int64
	sippPort                           int   // sipp's local UDP port (-p)
	serverDrops, sippDrops             int64 // datagrams the kernel dropped at the server's socket, at sipp's
	wall                               time.Duration
	pass, senderLimited                bool // capacity steps: the rule's verdict
	verdict                            string
}

// window is how long the step offered its load: the time sipp takes to
// start every phone at the step's rate.
func (st *step) window() time.Duration {
	return time.Duration(float64(st.calls) / float64(st.rate) * float64(time.Second))
}

// newStep creates the step's folder under the target's (a label run twice
// keeps both) and picks the port sipp sends from.
func (r *runner) newStep(target, kind, label string, rate, calls, capacity int) (*step, error) {
	dir := filepath.Join(r.dir, target, label)
	for i := 2; ; i++ {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		dir = filepath.Join(r.dir, target, fmt.Sprintf("%s-%d", label, i))
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	st := &step{target: target, kind: kind, label: label, dir: dir, rate: rate, calls: calls, capacity: capacity, sippPort: port}
	return st, os.MkdirAll(dir, 0o755)
}

// sippArgs is the part of a sipp command line every step shares: one UDP
// socket (-t u1, so -max_socket does not apply), the injection file, the
// rate, statistics every second, response times, errors, and per-message
// counts. limit is -l, the most calls open at once: sipp starts calls
// more slowly than asked once it is reached. timeout (if not 0) is
// sipp's -timeout, after which it starts no more calls and waits for the
// open ones.
func (r *runner) sippArgs(srv *target.Server, st *step, scenario string, limit, rttFreq int, recvTimeout, timeout time.Duration) []string {
	args := []string{
		"-sf", filepath.Join(r.c.assets, "sipp", scenario),
		"-inf", r.usersCSV,
		"-key", "domain", "localhost",
		"-i", "127.0.0.1", "-p", strconv.Itoa(st.sippPort), "-t", "u1",
		"-r", strconv.Itoa(st.rate), "-rp", "1000", "-m", strconv.Itoa(st.calls),
		"-l", strconv.Itoa(limit),
		"-buff_size", "4194304",
		"-recv_timeout", strconv.Itoa(int(recvTimeout / time.Millisecond)),
		"-nostdin",
		"-trace_stat", "-stf", filepath.Join(st.dir, "stat.csv"), "-fd", "1",
		"-trace_rtt", "-rtt_freq", strconv.Itoa(rttFreq),
		"-trace_counts",
		"-trace_err", "-error_file", filepath.Join(st.dir, "errors.log"), "-max_log_size", "2000000",
	}
	if timeout > 0 {
		args = append(args, "-timeout", strconv.Itoa(int(timeout/time.Second))+"s")
	}
	return args
}

// signalAt is a signal the harness sends sipp at a time after its start.
type signalAt struct {
	after time.Duration
	sig   syscall.Signal
}

// execSipp runs sipp with args (the server's address appended) on
// -sipp-cpus, sends it the signals asked for at their times, and records
// its wall time, the CPU time of sipp and of the server, the kernel's UDP
// receive-buffer drops, and the server's peak memory so far. It stops
// sipp if it has not ended after limit. exitErr is how sipp ended; err is
// set when it could not run or ctx ended.
func (r *runner) execSipp(ctx context.Context, srv *target.Server, st *step, args []string, limit time.Duration, signals ...signalAt) (exitErr, err error) {
	args = append(args, srv.SIP)
	bin, args := target.Pinned(r.c.sippCPUs, "sipp", args...)
	_ = os.WriteFile(filepath.Join(st.dir, "command.txt"), []byte(bin+" "+strings.Join(args, " ")+"\n"), 0o644)
	before := sippout.RcvbufErrors()
	cpu0 := srv.CPUTicks()
	t0 := time.Now()
	// taskset execs sipp: the PID is sipp's.
	p, err := children.Start("sipp", filepath.Join(st.dir, "sipp.out"), st.dir, nil, bin, args...)
	if err != nil {
		return nil, err
	}
	deadline := time.After(limit)
	// The sockets' drop counts are read while sipp runs: a socket that
	// closed is no longer listed.
	serverPort := 0
	if _, p, err := net.SplitHostPort(srv.SIP); err == nil {
		serverPort, _ = strconv.Atoi(p)
	}
	drops0 := sippout.UDPDrops(serverPort)
	readDrops := func() {
		d := sippout.UDPDrops(serverPort, st.sippPort)
		st.serverDrops = max(st.serverDrops, d[serverPort]-drops0[serverPort])
		st.sippDrops = max(st.sippDrops, d[st.sippPort])
	}
	poll := time.NewTicker(500 * time.Millisecond)
	defer poll.Stop()
	for exitErr == nil {
		var next <-chan time.Time
		if len(signals) > 0 {
			next = time.After(time.Until(t0.Add(signals[0].after)))
		}
		select {
		case <-p.Done():
			exitErr = p.Err()
			if exitErr == nil {
				exitErr = errDone
			}
		case <-next:
			_ = syscall.Kill(p.PID(), signals[0].sig)
			signals = signals[1:]
		case <-poll.C:
			readDrops()
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-deadline:
			p.Stop()
			exitErr = errors.New("sipp did not end: killed")
		}
	}
	if exitErr == errDone {
		exitErr = nil
	}
	st.wall = time.Since(t0)
	st.peakRSS = srv.PeakRSS()
	cpu1 := srv.CPUTicks()
	st.rcvbufErrs = sippout.RcvbufErrors() - before
	st.cpu = map[string]float64{"sipp": p.CPUSeconds()}
	for k, v := range cpu1 {
		st.cpu[k] = float64(v-cpu0[k]) / target.ClkTck
	}
	return exitErr, nil
}

// errDone marks, inside execSipp, a sipp that exited cleanly.
var errDone = errors.New("done")

// readCounts sets the step's REGISTER transactions, refusals and the
// outcome of its phones from sipp's statistics and message counts.
func (st *step) readCounts(exitErr error) (sippout.Row, []sippout.Row, error) {
	rows, err := sippout.ReadStatRows(filepath.Join(st.dir, "stat.csv"))
	if err != nil {
		return nil, nil, fmt.Errorf("sipp %s at %d/s gave no statistics (%v; exit: %v); see %s", st.label, st.rate, err, exitErr, st.dir)
	}
	last, err := sippout.ReadStat(filepath.Join(st.dir, "stat.csv"))
	if err != nil {
		return nil, nil, err
	}
	st.ok, st.failed, st.retrans = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"]), int(last["Retransmissions(C)"])
	started := int(last["OutgoingCall(C)"])
	st.notStarted = max(st.calls-started, 0)
	st.unfinished = max(started-st.ok-st.failed, 0)
	files, _ := filepath.Glob(filepath.Join(st.dir, "*_counts.csv"))
	if len(files) != 1 {
		return nil, nil, fmt.Errorf("sipp %s: %d -trace_counts files in %s", st.label, len(files), st.dir)
	}
	counts, err := sippout.ReadCounts(files[0])
	if err != nil {
		return nil, nil, err
	}
	st.registers, st.refusals = 0, 0
	for k, v := range counts {
		switch {
		case strings.HasSuffix(k, "_REGISTER_Sent"):
			st.registers += int(v)
		case strings.HasSuffix(k, "_503_Recv"):
			st.refusals += int(v)
		}
	}
	rtt, err := sippout.ReadRTT(st.dir)
	if err != nil {
		return nil, nil, err
	}
	if s := rtt.Sorted; len(s) > 0 {
		st.p50, st.p99, st.max = sippout.Percentile(s, 50), sippout.Percentile(s, 99), s[len(s)-1]
		st.lastAt = (rtt.Last - rtt.FirstStart) / 1000
		st.span = rtt.Span() / 1000
		st.samples = len(s)
	}
	return last, rows, nil
}

func (st *step) retransPct() float64 {
	if st.registers == 0 {
		return 0
	}
	return 100 * float64(st.retrans) / float64(st.registers)
}

// serverRSS is the peak RSS of the program that answers SIP: locsvc, or
// Kamailio's processes summed.
func (st *step) serverRSS() int64 {
	if v, ok := st.peakRSS["locsvc"]; ok {
		return v
	}
	return st.peakRSS["kamailio"]
}

func (st *step) serverCPU() float64 {
	var s float64
	for k, v := range st.cpu {
		if k != "sipp" {
			s += v
		}
	}
	return s
}
