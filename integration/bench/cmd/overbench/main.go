// Command overbench measures whether a SIP registrar keeps its goodput
// (REGISTERs answered 200 per second) when offered more than it can
// serve, for one locsvc node (redirect mode, 3 memcached shards, R=2,
// overload control at its defaults) and for the Kamailio reference
// (integration/bench/kamailio-ref.cfg), in one run.
//
// The server under test runs alone on one CPU (-server-cpus, taskset),
// locsvc with its memcached shards, Kamailio with its workers; sipp runs
// on another (-sipp-cpus), so that three times the server's capacity can
// be offered. For each target, on freshly started processes each time:
//
//  1. Capacity C: the highest sustainable REGISTER rate, by sipbench's
//     rule and search (package ratesearch) with sipp/register.xml, in
//     -search-step steps.
//  2. Overload: for each multiple of C in -loads (1.5, 2, 3), phones start
//     registering at that rate for -load-step (20 s), each one with
//     sipp/register_retry.xml: a 503 makes the phone wait its Retry-After
//     and send a new transaction; a transaction unanswered for -give-up
//     (Timer F, 32 s) makes it give up. The step runs until every phone
//     has registered or given up, or -drain (45 s) after the load ended;
//     then sipp is stopped and the phones still retrying are counted
//     apart.
//  3. Avalanche: -avalanche-phones distinct phones (100,000) start
//     registering within a few seconds (-avalanche-rate 10,000/s), with
//     the same scenario: the time until every one holds a binding.
//
// The run keeps to -budget (9m30s): the searches stop at -search-budget
// each (C is then a lower bound, marked >=), and the drains of the last
// steps shrink when the rest would not fit.
//
// Per step it reports the phones started per second while the load was
// offered, REGISTER transactions sent, phones that gave up or were still
// retrying at the end, the time from a phone's first REGISTER to its 200
// (p50, p99), sipp's retransmissions as a share of the REGISTERs, the
// goodput while the load was offered (and as a multiple of C), and the
// server's peak RSS (VmHWM of locsvc; of Kamailio's processes summed).
// Everything goes to -out/overbench-<UTC time>/: a folder per step (the
// sipp command, its statistics, counts, response times and errors), the
// server logs, steps.csv, table.md and overload.svg (goodput against
// offered load, one line per target); the table and the figure are also
// copied to -out/overload.md and -out/overload.svg.
//
// -smoke runs every phase of both targets in a few seconds at tiny rates,
// unpinned, and fails when the harness broke: a phase that did not run,
// sipp output it could not read, a step where fewer than half the phones
// registered, no table or figure (integration/overbench_smoke_test.go
// runs it in `make test`). It measures nothing.
//
// All traffic is on 127.0.0.1 on ports picked at run time; every process
// is started in its own process group and stopped by PID (package
// procs).
//
// Usage (from the repository root; `make bench-overload` does this):
//
//	go build -o bin/locsvc ./cmd/locsvc
//	go run ./integration/bench/cmd/overbench -locsvc bin/locsvc -out results
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

type config struct {
	locsvc, assets, out     string
	targets                 []string
	serverCPUs, sippCPUs    string
	serverShare             float64 // -server-cpu-share: 0 for a whole CPU
	users                   int
	searchStep              time.Duration
	startRate, maxRate      int
	minRate, bisect         int
	searchBudget, budget    time.Duration
	loads                   []float64
	loadStep                time.Duration
	giveUp, drain, cooldown time.Duration
	avalanchePhones         int
	avalancheRate           int
	kamChildren, kamShmMB   int
	locsvcFlags             []string
	given                   map[string]int // -capacity: C per target, not searched
	smoke                   bool
}

// children are the processes the run started, stopped by PID on the way
// out.
var children = &procs.Table{Grace: 10 * time.Second, Logf: logf}

// retrySteps is how many steps with the retrying phones each target
// runs: the loads and the avalanche, unless it has no phones.
func (c *config) retrySteps() int {
	if c.avalanchePhones == 0 {
		return len(c.loads)
	}
	return len(c.loads) + 1
}

func main() {
	c := parseFlags()
	ctx := children.Interruptible()
	children.Finish(ctx, run(ctx, c))
}

func parseFlags() config {
	var c config
	var targets, loads, locsvcFlags, given string
	flag.StringVar(&c.locsvc, "locsvc", "bin/locsvc", "locsvc binary (build it without -race: go build -o bin/locsvc ./cmd/locsvc)")
	flag.StringVar(&c.assets, "assets", "", "folder with kamailio-ref.cfg and sipp/ (default: integration/bench, found from the source or the working directory)")
	flag.StringVar(&c.out, "out", "results", "folder for raw output, the table and the figure")
	flag.StringVar(&targets, "targets", "locsvc,kamailio", "targets, in order: locsvc, kamailio")
	flag.StringVar(&c.serverCPUs, "server-cpus", "1", "CPUs (taskset -c) of the server under test and its memcached shards; empty: not pinned")
	flag.Float64Var(&c.serverShare, "server-cpu-share", 0, "cap the server under test and its shards at this share of a CPU (a cgroup; needs root), e.g. 0.5 so that sipp on its one CPU can offer 3x C; 0: no cap")
	flag.StringVar(&c.sippCPUs, "sipp-cpus", "0", "CPUs (taskset -c) of sipp; empty: not pinned")
	flag.IntVar(&c.users, "users", 100000, "distinct phones in the injection file (at least -avalanche-phones)")
	flag.DurationVar(&c.searchStep, "search-step", 5*time.Second, "length of one step of the capacity search")
	flag.IntVar(&c.startRate, "start-rate", 2000, "first rate of the capacity search (REGISTERs/s)")
	flag.IntVar(&c.maxRate, "max-rate", 64000, "highest rate of the capacity search")
	flag.IntVar(&c.minRate, "min-rate", 50, "lowest rate of the capacity search: below it the search gives up")
	flag.IntVar(&c.bisect, "bisect", 2, "bisection steps of the capacity search after its doubling phase")
	flag.DurationVar(&c.searchBudget, "search-budget", 80*time.Second, "time for one target's capacity search; it stops early (C reported with >=) when it runs out")
	flag.DurationVar(&c.budget, "budget", 9*time.Minute+30*time.Second, "time for the whole run: the drains of the last steps shrink (to no less than 10 s) to fit it")
	flag.StringVar(&loads, "loads", "1.5,2,3", "offered loads, as multiples of the target's own C")
	flag.DurationVar(&c.loadStep, "load-step", 20*time.Second, "how long each load is offered")
	flag.DurationVar(&c.giveUp, "give-up", 32*time.Second, "a phone gives up when one of its transactions is unanswered this long (Timer F)")
	flag.DurationVar(&c.drain, "drain", 45*time.Second, "after the load ends, how long phones may still retry; those still retrying then are counted apart")
	flag.DurationVar(&c.cooldown, "cooldown", 2*time.Second, "pause after each step")
	flag.IntVar(&c.avalanchePhones, "avalanche-phones", 100000, "distinct phones of the avalanche (0: no avalanche)")
	flag.IntVar(&c.avalancheRate, "avalanche-rate", 10000, "rate at which the avalanche's phones start (phones/s)")
	flag.IntVar(&c.kamChildren, "kam-children", 4, "Kamailio UDP worker processes")
	flag.IntVar(&c.kamShmMB, "kam-shm", 256, "Kamailio shared memory, MB (its location table lives there; 64, the default, is short for the avalanche)")
	flag.StringVar(&locsvcFlags, "locsvc-flags", "", "more `locsvc serve` flags, space-separated (e.g. --overload-target=0 for the node without overload control)")
	flag.StringVar(&given, "capacity", "", "C of some targets, not searched: `target=rate,...` (e.g. locsvc=6000 to run the overload steps again with the C of an earlier run)")
	flag.BoolVar(&c.smoke, "smoke", false, "every phase of every target in a few seconds at tiny rates, unpinned; fail if the harness broke")
	flag.Parse()
	c.targets = strings.Split(targets, ",")
	for _, t := range c.targets {
		if t != "locsvc" && t != "kamailio" {
			fatalf("unknown target %q (want locsvc, kamailio)", t)
		}
	}
	for _, f := range strings.Split(loads, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			fatalf("-loads: bad multiple %q", f)
		}
		c.loads = append(c.loads, v)
	}
	c.locsvcFlags = strings.Fields(locsvcFlags)
	c.given = map[string]int{}
	for _, kv := range strings.Split(given, ",") {
		if kv == "" {
			continue
		}
		t, v, _ := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			fatalf("-capacity: bad %q (want target=rate)", kv)
		}
		c.given[t] = n
	}
	if c.smoke {
		smokeDefaults(&c)
	}
	if c.users < c.avalanchePhones {
		c.users = c.avalanchePhones
	}
	return c
}

// smokeDefaults shrinks every phase to seconds at tiny rates and leaves
// the processes unpinned, for the flags not given on the command line.
func smokeDefaults(c *config) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// Unpinned: `make test` runs the smoke beside every other test, and
	// one CPU shared by all of them would be the slowest choice.
	for name, cpus := range map[string]*string{"server-cpus": &c.serverCPUs, "sipp-cpus": &c.sippCPUs} {
		if !set[name] {
			*cpus = ""
		}
	}
	small := []struct {
		name string
		dur  *time.Duration
		d    time.Duration
		n    *int
		v    int
	}{
		{name: "search-step", dur: &c.searchStep, d: 2 * time.Second},
		{name: "load-step", dur: &c.loadStep, d: 2 * time.Second},
		{name: "drain", dur: &c.drain, d: 10 * time.Second},
		{name: "cooldown", dur: &c.cooldown, d: 500 * time.Millisecond},
		{name: "start-rate", n: &c.startRate, v: 50},
		{name: "avalanche-phones", n: &c.avalanchePhones, v: 300},
		{name: "avalanche-rate", n: &c.avalancheRate, v: 150},
		// sipp reads the whole injection file at its start.
		{name: "users", n: &c.users, v: 300},
	}
	for _, s := range small {
		switch {
		case set[s.name]:
		case s.dur != nil:
			*s.dur = s.d
		default:
			*s.n = s.v
		}
	}
}

// logf writes a line of progress to stderr.
var logf = (&procs.Logger{Name: "overbench"}).Logf

func fatalf(format string, args ...any) {
	logf(format, args...)
	children.StopAll()
	os.Exit(1)
}

// runner holds what the steps of a run share.
type runner struct {
	c        config
	dir      string
	usersCSV string
	steps    *os.File // steps.csv
	start    time.Time
	// Work not yet done, for -budget: capacity searches, and overload
	// and avalanche steps.
	searchesLeft, retryStepsLeft int
	quota                        *target.Quota // -server-cpu-share; nil: none
}

func run(ctx context.Context, c config) error {
	if err := checkTools(c); err != nil {
		return err
	}
	if c.assets == "" {
		c.assets = procs.Assets()
	}
	for _, f := range []string{"kamailio-ref.cfg", "sipp/register.xml", "sipp/register_retry.xml"} {
		if _, err := os.Stat(filepath.Join(c.assets, f)); err != nil {
			return fmt.Errorf("assets: %v (set -assets to integration/bench)", err)
		}
	}
	c.assets, _ = filepath.Abs(c.assets)
	c.locsvc, _ = filepath.Abs(c.locsvc)
	if err := checkPinning(ctx, &c); err != nil {
		return err
	}
	name := "overbench-" + time.Now().UTC().Format("20060102-150405")
	if c.smoke {
		name = "overbench-smoke-" + time.Now().UTC().Format("20060102-150405")
	}
	dir, err := filepath.Abs(filepath.Join(c.out, name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := &runner{c: c, dir: dir, start: time.Now(), retryStepsLeft: len(c.targets) * c.retrySteps()}
	if c.serverShare != 0 {
		if r.quota, err = target.NewQuota(name, c.serverShare); err != nil {
			return fmt.Errorf("-server-cpu-share: %w", err)
		}
		// After the servers have stopped (children.Finish stops what is
		// left only after run returns; every step stops its own).
		defer func() {
			if err := r.quota.Remove(); err != nil {
				logf("%v", err)
			}
		}()
	}
	for _, t := range c.targets {
		if _, given := c.given[t]; !given {
			r.searchesLeft++
		}
	}
	logf("writing to %s", dir)
	if err := r.writeUsers(); err != nil {
		return err
	}
	if r.steps, err = os.Create(filepath.Join(dir, "steps.csv")); err != nil {
		return err
	}
	defer r.steps.Close()
	fmt.Fprintln(r.steps, stepCSVHeader)

	var results []*result
	var runErr error
	for _, t := range c.targets {
		res, err := r.measureTarget(ctx, t)
		results = append(results, res)
		if err != nil {
			runErr = fmt.Errorf("%s: %w", t, err)
			break
		}
	}
	table := r.table(results)
	fmt.Print(table)
	svg := figure(results, r.c)
	outputs := map[string]string{filepath.Join(dir, "table.md"): table, filepath.Join(dir, "overload.svg"): svg}
	if !c.smoke {
		outputs[filepath.Join(c.out, "overload.md")] = table
		outputs[filepath.Join(c.out, "overload.svg")] = svg
	}
	for path, text := range outputs {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return runErr
	}
	if c.smoke {
		if err := smokeCheck(c, results); err != nil {
			return fmt.Errorf("smoke: %w", err)
		}
		if n := strings.Count(svg, "<polyline"); n != len(results) {
			return fmt.Errorf("smoke: %d lines in the figure for %d targets", n, len(results))
		}
		logf("smoke passed (%s)", time.Since(r.start).Round(time.Second/10))
		return nil
	}
	logf("done in %s", time.Since(r.start).Round(time.Second))
	return nil
}

func checkTools(c config) error {
	var missing []string
	for _, t := range []string{"sipp", "memcached", "kamailio"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if c.serverCPUs != "" || c.sippCPUs != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			missing = append(missing, "taskset")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not on PATH: %s (Debian: apt-get install sip-tester memcached kamailio util-linux)", strings.Join(missing, ", "))
	}
	if st, err := os.Stat(c.locsvc); err != nil || st.IsDir() {
		return fmt.Errorf("locsvc binary %q not found: build it without -race (make build) or pass -locsvc", c.locsvc)
	}
	return nil
}

// checkPinning fails when the CPUs asked for cannot be used here; in
// -smoke mode, which measures nothing, it runs unpinned instead (a CI
// machine may have one CPU).
func checkPinning(ctx context.Context, c *config) error {
	for _, cpus := range []*string{&c.serverCPUs, &c.sippCPUs} {
		if err := target.CheckCPUs(ctx, *cpus); err != nil {
			if !c.smoke {
				return fmt.Errorf("%v (pass -server-cpus and -sipp-cpus that exist here, or empty ones)", err)
			}
			logf("smoke: %v: running unpinned", err)
			c.serverCPUs, c.sippCPUs = "", ""
			return nil
		}
	}
	if c.serverCPUs != "" && c.serverCPUs == c.sippCPUs {
		logf("warning: the server and sipp share CPUs %s", c.serverCPUs)
	}
	return nil
}

// writeUsers writes the injection file: one distinct phone per line, each
// with a fixed contact of its own, read in order (so the avalanche's
// phones are all distinct).
func (r *runner) writeUsers() error {
	r.usersCSV = filepath.Join(r.dir, "users.csv")
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := range r.c.users {
		fmt.Fprintf(&b, "phone%06d;127.0.0.1:%d\n", i, 10000+i%50000)
	}
	return os.WriteFile(r.usersCSV, []byte(b.String()), 0o644)
}
