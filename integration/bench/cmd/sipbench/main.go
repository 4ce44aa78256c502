// Command sipbench measures the highest sustainable SIP REGISTER and
// INVITE->302 rates of one locsvc node (3 memcached shards, R=2, redirect
// mode) and of a Kamailio 5.6 reference registrar (usrloc in memory,
// integration/bench/kamailio-ref.cfg) on the same machine, with sipp, and
// prints a comparison table.
//
// Each target runs alone, and each search on freshly started processes
// (the overload that ends one search must not weigh on the next); before
// the INVITE search every user is registered once. For each request type
// the rate is searched by doubling from -start-rate until a step fails,
// then by bisection (-bisect steps), each step one sipp run of -step at a
// fixed rate over distinct users read from an injection file (-users). A
// step is sustainable when
//
//   - no call failed (a timeout, an unexpected answer, a 302 without a
//     Contact),
//   - sipp retransmitted fewer than 0.1 % of the calls' requests (over UDP
//     an overloaded server shows as retransmissions, not failures), and
//   - the achieved rate (answered calls over the span of their answers) is
//     at least 97 % of the offered rate.
//
// Response times (p50, p99) come from sipp's -trace_rtt file of the best
// sustainable step (sipp measures in whole milliseconds). Everything sipp
// wrote, the server logs, a CSV of all steps and the table go to
// -out/sipbench-<UTC time>/; the table is also copied to -out/sipbench.md.
//
// -baseline BIN adds the target "baseline": another locsvc binary (say
// the previous release) started exactly as -locsvc is (same shards, same
// flags; sipbench checks first that its `serve -h` lists them all). The
// table then gives, per request type, locsvc/baseline ratios of the
// sustainable rates and of p50/p99, so that a change's speed is a ratio
// measured on the same machine at the same time. The baseline and locsvc
// searches interleave: per request type one runs right after the other,
// the order alternating between request types (see schedule). In -smoke
// mode, which measures nothing, a target's processes stay up for all its
// steps, so baseline's run beside locsvc's.
//
// -smoke runs one short low-rate step of each request type against each
// target and exits non-zero unless every call succeeded
// (integration/bench_smoke_test.go runs it inside `make test`).
//
// All traffic is on 127.0.0.1, on ports picked at run time. Every process
// sipbench starts runs in its own process group and is stopped by PID
// (SIGTERM, then SIGKILL to its group) at the end, on error, and on
// SIGINT/SIGTERM; children also get SIGTERM if sipbench itself is killed.
//
// Usage (from the repository root; `make bench-sip` does this):
//
//	go build -o bin/locsvc ./cmd/locsvc
//	go run ./integration/bench/cmd/sipbench -locsvc bin/locsvc -out results
//	go run ./integration/bench/cmd/sipbench -locsvc bin/locsvc -baseline /tmp/locsvc-base.bin -out results
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/ratesearch"
	"github.com/locsvc/locsvc/integration/bench/internal/sippout"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

type config struct {
	locsvc      string
	baseline    string
	assets      string
	out         string
	users       int
	step        time.Duration
	startRate   int
	maxRate     int
	minRate     int
	bisect      int
	budget      time.Duration
	cooldown    time.Duration
	kamChildren int
	targets     []string
	requests    []request
	preloadRate int
	smoke       bool
	smokeRate   int
}

// server is a running target.
type server = target.Server

// children are the processes the run started, stopped by PID on the way
// out.
var children = &procs.Table{Grace: 10 * time.Second, Logf: logf}

func main() {
	c := parseFlags()
	ctx := children.Interruptible()
	children.Finish(ctx, run(ctx, c))
}

func parseFlags() config {
	var c config
	var targets, requests string
	flag.StringVar(&c.locsvc, "locsvc", "bin/locsvc", "locsvc binary (build it without -race: go build -o bin/locsvc ./cmd/locsvc)")
	flag.StringVar(&c.baseline, "baseline", "", "another locsvc binary (e.g. the previous release), run as target \"baseline\" exactly as -locsvc is; the table gets the ratios locsvc/baseline")
	flag.StringVar(&c.assets, "assets", "", "folder with kamailio-ref.cfg and sipp/ (default: integration/bench, found from the source or the working directory)")
	flag.StringVar(&c.out, "out", "results", "folder for raw sipp output, logs and the table")
	flag.IntVar(&c.users, "users", 20000, "distinct users in the injection file")
	flag.DurationVar(&c.step, "step", 10*time.Second, "length of one rate step")
	flag.IntVar(&c.startRate, "start-rate", 1000, "first offered rate (calls/s)")
	flag.IntVar(&c.maxRate, "max-rate", 64000, "highest offered rate: the search stops there")
	flag.IntVar(&c.minRate, "min-rate", 50, "lowest offered rate: below it the search gives up")
	flag.IntVar(&c.bisect, "bisect", 3, "bisection steps after the doubling phase")
	flag.DurationVar(&c.budget, "budget", 8*time.Minute, "time for the whole run; each search gets a share and stops early (reported with >=) when it runs out")
	flag.DurationVar(&c.cooldown, "cooldown", 2*time.Second, "pause after each step so the server drains (doubled after a failed step)")
	flag.IntVar(&c.kamChildren, "kam-children", 4, "Kamailio UDP worker processes")
	flag.StringVar(&targets, "targets", "", "targets to measure, in order (default locsvc,kamailio; baseline,locsvc,kamailio with -baseline); baseline and locsvc searches interleave")
	flag.StringVar(&requests, "requests", "register,invite", "request types to search")
	flag.IntVar(&c.preloadRate, "preload-rate", 0, "rate of the registration of every user before the INVITE search (0: two thirds of the REGISTER rate found, else 1000/s)")
	flag.BoolVar(&c.smoke, "smoke", false, "one short low-rate step of each request type per target; fail unless every call succeeded")
	flag.IntVar(&c.smokeRate, "smoke-rate", 100, "offered rate of the -smoke steps")
	flag.Parse()
	if targets == "" {
		targets = "locsvc,kamailio"
		if c.baseline != "" {
			targets = "baseline,locsvc,kamailio"
		}
	}
	c.targets = strings.Split(targets, ",")
	for _, t := range c.targets {
		switch {
		case t != "locsvc" && t != "kamailio" && t != "baseline":
			fatalf("unknown target %q (want locsvc, baseline, kamailio)", t)
		case t == "baseline" && c.baseline == "":
			fatalf("target baseline needs -baseline BIN")
		}
	}
	for _, q := range strings.Split(requests, ",") {
		if q != string(register) && q != string(invite) {
			fatalf("unknown request %q (want register, invite)", q)
		}
		c.requests = append(c.requests, request(q))
	}
	if c.smoke {
		c.step = 2 * time.Second
		c.users = c.smokeRate * 2
	}
	return c
}

// logf writes a line of progress to stderr.
var logf = (&procs.Logger{Name: "sipbench"}).Logf

func fatalf(format string, args ...any) {
	logf(format, args...)
	children.StopAll()
	os.Exit(1)
}

// ---- the run ----

type request string

const (
	register request = "register"
	invite   request = "invite"
	preload  request = "preload" // register every user once, resending on 5xx
)

var scenarioFile = map[request]string{register: "register.xml", invite: "invite_302.xml", preload: "register_preload.xml"}

// search is the outcome of one rate search.
type search struct {
	target  string
	req     request
	best    *step // highest sustainable step; nil if none
	bounded bool  // stopped by the time budget or -max-rate before the limit was found
	note    string
	steps   []*step
}

// found is what s found, as the table shows it.
func (s *search) found() ratesearch.Best {
	b := ratesearch.Best{Ran: true, Bounded: s.bounded, Note: s.note}
	if st := s.best; st != nil {
		b.Found, b.Rate, b.P50, b.P99, b.OK, b.CPU = true, st.rate, st.p50, st.p99, st.ok, st.serverCPU()
	}
	return b
}

type runner struct {
	c        config
	dir      string
	usersCSV string
	steps    *os.File // steps.csv
	start    time.Time
	left     int // searches not yet run
}

func run(ctx context.Context, c config) error {
	if err := checkTools(c); err != nil {
		return err
	}
	if c.assets == "" {
		c.assets = procs.Assets()
	}
	for _, f := range []string{"kamailio-ref.cfg", "sipp/register.xml", "sipp/invite_302.xml", "sipp/register_preload.xml"} {
		if _, err := os.Stat(filepath.Join(c.assets, f)); err != nil {
			return fmt.Errorf("assets: %v (set -assets to integration/bench)", err)
		}
	}
	c.assets, _ = filepath.Abs(c.assets)
	c.locsvc, _ = filepath.Abs(c.locsvc)
	if c.baseline != "" {
		c.baseline, _ = filepath.Abs(c.baseline)
	}
	if err := checkServeFlags(ctx, c); err != nil {
		return err
	}

	stamp := time.Now().UTC().Format("20060102-150405")
	name := "sipbench-" + stamp
	if c.smoke {
		name = "sipbench-smoke-" + stamp
	}
	dir, err := filepath.Abs(filepath.Join(c.out, name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := &runner{c: c, dir: dir, start: time.Now()}
	logf("writing to %s", dir)
	if err := r.writeUsers(); err != nil {
		return err
	}
	r.steps, err = os.Create(filepath.Join(dir, "steps.csv"))
	if err != nil {
		return err
	}
	defer r.steps.Close()
	fmt.Fprintln(r.steps, stepCSVHeader)

	results, runErr := r.runJobs(ctx, schedule(c.targets, c.requests))
	table := r.table(results)
	fmt.Print(table)
	_ = os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644)
	if !c.smoke {
		_ = os.WriteFile(filepath.Join(c.out, "sipbench.md"), []byte(table), 0o644)
	}
	if runErr != nil {
		return runErr
	}
	if c.smoke {
		for _, s := range results {
			if s.best == nil {
				return fmt.Errorf("smoke: %s %s failed: %s", s.target, s.req, s.note)
			}
		}
		logf("smoke passed (%s)", time.Since(r.start).Round(time.Second/10))
	} else {
		logf("done in %s", time.Since(r.start).Round(time.Second))
	}
	return nil
}

func checkTools(c config) error {
	var missing []string
	for _, t := range []string{"sipp", "memcached", "kamailio"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not on PATH: %s (Debian: apt-get install sip-tester memcached kamailio; .ci/run installs them)", strings.Join(missing, ", "))
	}
	if st, err := os.Stat(c.locsvc); err != nil || st.IsDir() {
		return fmt.Errorf("locsvc binary %q not found: build it without -race (make build) or pass -locsvc", c.locsvc)
	}
	if c.baseline == "" {
		return nil
	}
	if st, err := os.Stat(c.baseline); err != nil || st.IsDir() {
		return fmt.Errorf("baseline binary %q not found (docs/BENCHMARKS.md, SIP path, builds one from a git revision)", c.baseline)
	}
	return nil
}

// checkServeFlags fails unless every locsvc binary of the run knows every
// flag sipbench passes to it: an older baseline would otherwise fail only
// when its turn comes, possibly minutes into the run. It reads the flag
// list of `BIN serve -h`; a binary whose help lists no flags at all is
// let through (its start-up will tell).
func checkServeFlags(ctx context.Context, c config) error {
	bins := map[string]string{}
	for _, t := range c.targets {
		switch t {
		case "locsvc":
			bins[t] = c.locsvc
		case "baseline":
			bins[t] = c.baseline
		}
	}
	var want []string
	for _, a := range target.LocsvcArgs(nil, "", "", "", "") {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			want = append(want, name)
		}
	}
	for t, bin := range bins {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, _ := exec.CommandContext(ctx, bin, "serve", "-h").CombinedOutput() // -h may exit non-zero
		cancel()
		have := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "  -") {
				have[strings.TrimLeft(f[0], "-")] = true
			}
		}
		if len(have) == 0 {
			logf("%s: %s serve -h lists no flags; not checking them", t, bin)
			continue
		}
		var missing []string
		for _, name := range want {
			if !have[name] {
				missing = append(missing, "--"+name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s binary %s has no %s (sipbench passes them to every locsvc target)", t, bin, strings.Join(missing, ", "))
		}
	}
	return nil
}

func (r *runner) writeUsers() error {
	r.usersCSV = filepath.Join(r.dir, "users.csv")
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := range r.c.users {
		// A contact of its own per user, fixed across runs: a REGISTER
		// refreshes one binding instead of adding one per sipp port.
		fmt.Fprintf(&b, "bench%06d;127.0.0.1:%d\n", i, 10000+i%50000)
	}
	return os.WriteFile(r.usersCSV, []byte(b.String()), 0o644)
}

// job is one search of a run.
type job struct {
	target string
	req    request
}

// schedule orders the searches: each target's requests in turn, in the
// order of targets, except that baseline and locsvc, when both run,
// interleave: for each request type the two searches run one after the
// other (where the first of them stands in targets), so the ratio of a
// request type compares searches a few minutes apart rather than the
// whole run apart, and the order of the two alternates from one request
// type to the next (baseline, locsvc for REGISTER; locsvc, baseline for
// INVITE), so that running first or second (drift of the machine's load
// over the run) does not favour the same binary in every row.
func schedule(targets []string, requests []request) []job {
	var pair []string
	for _, t := range targets {
		if t == "baseline" || t == "locsvc" {
			pair = append(pair, t)
		}
	}
	paired := len(pair) == 2
	var jobs []job
	for _, t := range targets {
		if !paired || t != pair[0] && t != pair[1] {
			for _, q := range requests {
				jobs = append(jobs, job{t, q})
			}
			continue
		}
		if t != pair[0] {
			continue // scheduled with pair[0]
		}
		for i, q := range requests {
			first, second := pair[0], pair[1]
			if i%2 == 1 {
				first, second = second, first
			}
			jobs = append(jobs, job{first, q}, job{second, q})
		}
	}
	return jobs
}

// targetState is what a target's searches share.
type targetState struct {
	srv        *server
	registered bool    // every user registered on srv (by a -smoke REGISTER step)
	reg        *search // its REGISTER search, if it ran
	abandoned  bool    // a preload failed: its later searches do not run
	lastJob    int     // index of its last job
}

// runJobs runs the searches in order. Each search runs on freshly started
// processes, so that the overload that ends one search does not weigh on
// the next; before an INVITE search every user is registered once, so
// that each INVITE finds a binding. In -smoke mode one set of processes
// serves all of a target's steps (the REGISTER step registers every user).
func (r *runner) runJobs(ctx context.Context, jobs []job) ([]*search, error) {
	r.left = len(jobs)
	states := map[string]*targetState{}
	for i, j := range jobs {
		if states[j.target] == nil {
			states[j.target] = &targetState{}
		}
		states[j.target].lastJob = i
	}
	defer func() {
		for name, ts := range states {
			r.stopServer(name, ts)
		}
	}()
	var out []*search
	for i, j := range jobs {
		ts := states[j.target]
		if ts.abandoned {
			r.left--
			continue
		}
		s, err := r.runJob(ctx, ts, j)
		if s != nil {
			out = append(out, s)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", j.target, err)
		}
		if !r.c.smoke || i == ts.lastJob {
			r.stopServer(j.target, ts)
		}
	}
	return out, nil
}

// runJob runs one search, starting the target's processes if none run.
func (r *runner) runJob(ctx context.Context, ts *targetState, j job) (*search, error) {
	if ts.srv == nil {
		srv, err := r.startServer(ctx, j.target, filepath.Join(r.dir, j.target, "server-"+string(j.req)))
		if err != nil {
			return nil, err
		}
		ts.srv, ts.registered = srv, false
	}
	if j.req == invite && !ts.registered {
		if note, err := r.preload(ctx, ts.srv, ts.reg); err != nil || note != "" {
			r.left--
			ts.abandoned = true
			return &search{target: j.target, req: invite, note: note}, err
		}
	}
	s, err := r.search(ctx, ts.srv, j.req)
	if j.req == register {
		ts.reg = s
		ts.registered = r.c.smoke && err == nil
	}
	return s, err
}

func (r *runner) stopServer(name string, ts *targetState) {
	if ts.srv == nil {
		return
	}
	t0 := time.Now()
	ts.srv.Stop()
	logf("%s stopped (%s)", name, time.Since(t0).Round(100*time.Millisecond))
	ts.srv = nil
}

// startServer starts a target's processes, logging to dir.
func (r *runner) startServer(ctx context.Context, name, dir string) (*server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	srv, err := target.Start(ctx, logf, name, func() (*server, error) {
		switch name {
		case "locsvc":
			return target.StartLocsvc(ctx, children, target.Locsvc{Name: name, Bin: r.c.locsvc, Dir: dir})
		case "baseline":
			return target.StartLocsvc(ctx, children, target.Locsvc{Name: name, Bin: r.c.baseline, Dir: dir})
		}
		return target.StartKamailio(ctx, children, target.Kamailio{
			Config: filepath.Join(r.c.assets, "kamailio-ref.cfg"), Dir: dir, Children: r.c.kamChildren})
	})
	if err != nil {
		return nil, err
	}
	logf("%s up at %s (%s)", name, srv.SIP, srv.Info)
	return srv, nil
}

// preload registers every user once: at -preload-rate, or two thirds of
// the sustainable REGISTER rate; once more at a third of that if some
// failed. A REGISTER answered 5xx is sent again (register_preload.xml). A
// non-empty note says it did not succeed.
func (r *runner) preload(ctx context.Context, srv *server, reg *search) (string, error) {
	rate := 1000
	switch {
	case r.c.preloadRate > 0:
		rate = r.c.preloadRate
	case reg != nil && reg.best != nil:
		rate = max(r.c.minRate*4, reg.best.rate*2/3)
	case reg != nil:
		rate = r.c.minRate * 4
	}
	for attempt := 1; ; attempt++ {
		logf("%s: registering all %d users at %d/s", srv.Name, r.c.users, rate)
		st, err := r.runStep(ctx, srv, preload, rate, r.c.users, "register-preload")
		if err != nil {
			return "preload: " + err.Error(), err
		}
		if st.failed == 0 && st.ok >= r.c.users {
			return "", procs.Sleep(ctx, r.c.cooldown)
		}
		if attempt == 2 {
			return fmt.Sprintf("preload: %d of %d REGISTERs failed", st.failed, r.c.users), nil
		}
		if err := procs.Sleep(ctx, 2*r.c.cooldown); err != nil {
			return "", err
		}
		rate = max(rate/3, r.c.minRate)
	}
}

// search finds the highest sustainable rate for one request type.
func (r *runner) search(ctx context.Context, srv *server, req request) (*search, error) {
	defer func() { r.left-- }()
	if r.c.smoke {
		return r.smokeSearch(ctx, srv, req)
	}
	s := &search{target: srv.Name, req: req}
	c := r.c
	// This search's share of the remaining budget.
	share := (c.budget - time.Since(r.start)) / time.Duration(max(r.left, 1))
	deadline := time.Now().Add(share)
	stepCost := c.step + 2*c.cooldown + 3*time.Second
	b := ratesearch.Bisector{Rate: c.startRate}
	limits := ratesearch.Limits{MaxRate: c.maxRate, MinRate: c.minRate, Bisect: c.bisect}
	for {
		if len(s.steps) > 0 && time.Now().Add(stepCost).After(deadline) {
			s.bounded = true
			s.note = "time budget"
			return s, nil
		}
		st, err := r.measure(ctx, srv, s, b.Rate)
		if err != nil {
			return s, err
		}
		if st.pass && (s.best == nil || st.rate > s.best.rate) {
			s.best = st
		}
		if err := procs.Sleep(ctx, cooldown(c, st)); err != nil {
			return s, err
		}
		if done, bounded, note := b.Next(limits, st.pass); done {
			s.bounded, s.note = bounded, note
			return s, nil
		}
	}
}

// smokeSearch is one step at -smoke-rate: it passes only if every call
// succeeded.
func (r *runner) smokeSearch(ctx context.Context, srv *server, req request) (*search, error) {
	s := &search{target: srv.Name, req: req}
	st, err := r.runStep(ctx, srv, req, r.c.smokeRate, r.c.users, "")
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

// measure runs one step of s at rate, and once more if sipp rather than
// the server was the limit. The steps are added to s.
func (r *runner) measure(ctx context.Context, srv *server, s *search, rate int) (*step, error) {
	calls := max(int(float64(rate)*r.c.step.Seconds()), 1)
	st, err := r.runStep(ctx, srv, s.req, rate, calls, "")
	if err != nil {
		return nil, err
	}
	s.steps = append(s.steps, st)
	if !st.senderLimited {
		return st, nil
	}
	// The server kept up with what sipp sent, but sipp did not get the
	// CPU to send at the offered rate (a busy machine): no verdict on the
	// server. Once more.
	logf("         sipp could not send at %d/s with no sign of server overload: repeating the step", rate)
	if err := procs.Sleep(ctx, r.c.cooldown); err != nil {
		return nil, err
	}
	if st, err = r.runStep(ctx, srv, s.req, rate, calls, ""); err != nil {
		return nil, err
	}
	s.steps = append(s.steps, st)
	return st, nil
}

func cooldown(c config, st *step) time.Duration {
	if st.pass {
		return c.cooldown
	}
	return 2 * c.cooldown
}

// ---- one sipp step ----

type step struct {
	target, dir string
	req         request
	rate, calls int

	ok, failed, retrans int
	achieved            float64 // answered calls per second
	sent                float64 // calls per second sipp started (its CallRate(C)): below the offered rate, sipp was the limit
	p50, p99, max       float64 // ms
	rcvbufErrs          int64   // kernel UDP RcvbufErrors during the step (whole machine)
	cpu                 map[string]float64
	wall                time.Duration
	pass                bool
	senderLimited       bool // failed only because sipp sent below the offered rate
	verdict             string
}

// runStep runs one sipp step of calls at rate against srv and judges it;
// label names its folder (default: request and rate).
func (r *runner) runStep(ctx context.Context, srv *server, req request, rate, calls int, label string) (*step, error) {
	dir, err := r.stepDir(srv, req, rate, label)
	if err != nil {
		return nil, err
	}
	st := &step{target: srv.Name, dir: dir, req: req, rate: rate, calls: calls}
	exitErr, err := r.execSipp(ctx, srv, st)
	if err != nil {
		return st, err
	}
	if err := st.readResults(exitErr); err != nil {
		return nil, err
	}
	st.judge()
	logf("%-8s %-8s %6d/s x %6d: %-4s sent %6.0f/s, achieved %6.0f/s, retrans %d, failed %d, p50 %s p99 %s, cpu %s, rcvbuf errors %+d",
		srv.Name, req, rate, calls, map[bool]string{true: "PASS", false: "FAIL"}[st.pass], st.sent, st.achieved, st.retrans, st.failed,
		ratesearch.Ms(st.p50), ratesearch.Ms(st.p99), cpuString(st), st.rcvbufErrs)
	if !st.pass {
		logf("         %s", st.verdict)
	}
	fmt.Fprintln(r.steps, st.csv())
	return st, nil
}

// stepDir creates the folder of a step. A rate tried twice keeps both
// runs.
func (r *runner) stepDir(srv *server, req request, rate int, label string) (string, error) {
	if label == "" {
		label = fmt.Sprintf("%s-%06d", req, rate)
	}
	dir := filepath.Join(r.dir, srv.Name, label)
	for i := 2; ; i++ {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		dir = filepath.Join(r.dir, srv.Name, fmt.Sprintf("%s-%d", label, i))
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// sipp is the step as ratesearch runs it.
func (r *runner) sipp(srv *server, st *step, port int) ratesearch.Step {
	return ratesearch.Step{Scenario: filepath.Join(r.c.assets, "sipp", scenarioFile[st.req]), UsersCSV: r.usersCSV,
		Dir: st.dir, Target: srv.SIP, Port: port, Rate: st.rate, Calls: st.calls}
}

// execSipp runs the step's sipp and records its wall time, the CPU time
// of sipp and of the server, and the kernel's UDP receive-buffer drops.
// exitErr is how sipp ended; err is set when it could not run or ctx
// ended.
func (r *runner) execSipp(ctx context.Context, srv *server, st *step) (exitErr, err error) {
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	run := r.sipp(srv, st, port)
	args := run.SippArgs()
	_ = os.WriteFile(filepath.Join(st.dir, "command.txt"), []byte("sipp "+strings.Join(args, " ")+"\n"), 0o644)
	before := sippout.RcvbufErrors()
	cpu0 := srv.CPUTicks()
	t0 := time.Now()
	p, err := children.Start("sipp", filepath.Join(st.dir, "sipp.out"), st.dir, nil, "sipp", args...)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.Done():
		exitErr = p.Err()
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	case <-time.After(run.Duration() + 20*time.Second):
		p.Stop()
		exitErr = errors.New("sipp did not end: killed")
	}
	st.wall = time.Since(t0)
	cpu1 := srv.CPUTicks()
	st.rcvbufErrs = sippout.RcvbufErrors() - before
	st.cpu = map[string]float64{"sipp": p.CPUSeconds()}
	for k, v := range cpu1 {
		st.cpu[k] = float64(v-cpu0[k]) / target.ClkTck
	}
	return exitErr, nil
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
	if rtts := rtt.Sorted; len(rtts) > 0 {
		st.p50, st.p99, st.max = sippout.Percentile(rtts, 50), sippout.Percentile(rtts, 99), rtts[len(rtts)-1]
	}
	span := time.Duration(rtt.Span() * float64(time.Millisecond))
	switch {
	case st.req == preload: // no response times: over the whole run
		st.achieved = float64(st.ok) / st.wall.Seconds()
	case st.ok > 0:
		st.achieved = float64(st.ok) / (span.Seconds() + 1/float64(st.rate))
	}
	return nil
}

// judge sets pass, senderLimited and verdict by the rule of a
// sustainable step (ratesearch.Verdict); a preload only has to register
// every user.
func (st *step) judge() {
	if st.req == preload {
		st.pass = st.failed == 0 && st.ok >= st.calls
		st.verdict = "ok"
		if !st.pass {
			st.verdict = fmt.Sprintf("%d of %d not registered", st.calls-st.ok, st.calls)
		}
		return
	}
	st.pass, st.senderLimited, st.verdict = ratesearch.Verdict(ratesearch.Outcome{
		Rate: st.rate, Calls: st.calls, Failed: st.failed, Retrans: st.retrans, Achieved: st.achieved, Sent: st.sent})
}

const stepCSVHeader = "target,request,offered_per_s,calls,sent_per_s,successful,failed,retransmissions,achieved_per_s,p50_ms,p99_ms,max_ms,rcvbuf_errors,cpu_server_s,cpu_sipp_s,wall_s,pass,verdict,dir"

func (st *step) serverCPU() float64 {
	var s float64
	for k, v := range st.cpu {
		if k != "sipp" {
			s += v
		}
	}
	return s
}

func (st *step) csv() string {
	return fmt.Sprintf("%s,%s,%d,%d,%.1f,%d,%d,%d,%.1f,%g,%g,%g,%d,%.2f,%.2f,%.2f,%t,%q,%s",
		st.target, st.req, st.rate, st.calls, st.sent, st.ok, st.failed, st.retrans, st.achieved, st.p50, st.p99, st.max,
		st.rcvbufErrs, st.serverCPU(), st.cpu["sipp"], st.wall.Seconds(), st.pass, st.verdict, st.dir)
}

func cpuString(st *step) string {
	keys := make([]string, 0, len(st.cpu))
	for k := range st.cpu {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	secs := st.wall.Seconds()
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, st.cpu[k]/secs))
	}
	return strings.Join(parts, " ") + " cores"
}

// ---- the table ----

// column is one column of the table: its header and its cell per request
// type.
type column struct {
	head string
	cell func(q request) string
}

func (r *runner) table(results []*search) string {
	find := func(t string) func(request) ratesearch.Best {
		return func(q request) ratesearch.Best {
			for _, s := range results {
				if s.target == t && s.req == q {
					return s.found()
				}
			}
			return ratesearch.Best{}
		}
	}
	l, k, b := find("locsvc"), find("kamailio"), find("baseline")
	cols := []column{{"request", func(q request) string {
		return map[request]string{register: "REGISTER -> 200", invite: "INVITE -> 302 + ACK"}[q]
	}}}
	if slices.Contains(r.c.targets, "baseline") {
		cols = append(cols,
			column{"baseline", func(q request) string { return b(q).RateCell() }},
			column{"locsvc", func(q request) string { return l(q).RateCell() }},
			column{"locsvc / baseline", func(q request) string { return ratesearch.RateRatio(l(q), b(q)) }},
			column{"Kamailio", func(q request) string { return k(q).RateCell() }},
			column{"locsvc / Kamailio", func(q request) string { return ratesearch.RateRatio(l(q), k(q)) }},
			column{"baseline p50 / p99", func(q request) string { return b(q).LatCell() }},
			column{"locsvc p50 / p99", func(q request) string { return l(q).LatCell() }},
			column{"locsvc / baseline p50 / p99", func(q request) string { return ratesearch.LatRatio(l(q), b(q)) }},
			column{"Kamailio p50 / p99", func(q request) string { return k(q).LatCell() }},
			column{"baseline CPU/req", func(q request) string { return b(q).CPUCell() }},
			column{"locsvc CPU/req", func(q request) string { return l(q).CPUCell() }},
			column{"Kamailio CPU/req", func(q request) string { return k(q).CPUCell() }})
	} else {
		cols = append(cols,
			column{"locsvc", func(q request) string { return l(q).RateCell() }},
			column{"Kamailio", func(q request) string { return k(q).RateCell() }},
			column{"ratio", func(q request) string { return ratesearch.RateRatio(l(q), k(q)) }},
			column{"locsvc p50 / p99", func(q request) string { return l(q).LatCell() }},
			column{"Kamailio p50 / p99", func(q request) string { return k(q).LatCell() }},
			column{"locsvc CPU/req", func(q request) string { return l(q).CPUCell() }},
			column{"Kamailio CPU/req", func(q request) string { return k(q).CPUCell() }})
	}
	var sb strings.Builder
	r.tableHead(&sb)
	row := func(cell func(column) string) {
		var cells []string
		for _, c := range cols {
			cells = append(cells, cell(c))
		}
		fmt.Fprintf(&sb, "| %s |\n", strings.Join(cells, " | "))
	}
	row(func(c column) string { return c.head })
	row(func(column) string { return "---" })
	for _, q := range []request{register, invite} {
		row(func(c column) string { return c.cell(q) })
	}
	r.tableFoot(&sb)
	return sb.String()
}

func (r *runner) tableHead(b *strings.Builder) {
	mode := fmt.Sprintf("sustainable rate: no failed call, retransmissions < 0.1 %% of calls, achieved >= 97 %% of offered; %s steps, %d users", r.c.step, r.c.users)
	if r.c.smoke {
		mode = fmt.Sprintf("smoke: one %s step at %d/s per row, %d users", r.c.step, r.c.smokeRate, r.c.users)
	}
	fmt.Fprintf(b, "\n## sipbench %s\n\n%s. p50/p99: sipp response times (1 ms resolution) at that rate. CPU: server CPU time per answered request at that rate.",
		time.Now().UTC().Format(time.RFC3339), mode)
	fmt.Fprintf(b, " A ratio marked >= or <= is a bound (a search ran out of its budget or reached -max-rate first), ~ when both did.")
	if slices.Contains(r.c.targets, "baseline") {
		fmt.Fprintf(b, " Latency ratios compare each binary at its own sustainable rate; - where a time is under 1 ms.")
	}
	fmt.Fprintf(b, "\n\n")
}

func (r *runner) tableFoot(b *strings.Builder) {
	fmt.Fprintf(b, "\nlocsvc: 1 node, --sip-mode redirect, 3 memcached shards (-t 1), --replicas 2. Kamailio: kamailio-ref.cfg, usrloc db_mode 0, %d UDP children. Raw data: %s\n", r.c.kamChildren, r.dir)
	if slices.Contains(r.c.targets, "baseline") {
		var order []string
		for _, j := range schedule(r.c.targets, r.c.requests) {
			order = append(order, j.target+" "+string(j.req))
		}
		fmt.Fprintf(b, "\nlocsvc: %s (version %s). baseline: %s (version %s), run the same way. Search order: %s.\n",
			r.c.locsvc, binVersion(r.c.locsvc), r.c.baseline, binVersion(r.c.baseline), strings.Join(order, ", "))
	}
}

// binVersion is what `bin version` prints: `make bench-sip-vs` deletes
// its baseline binary after the run, so the path alone would not say
// which build it was.
func binVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" && !strings.Contains(v, "\n") {
		return v
	}
	return "unknown"
}
