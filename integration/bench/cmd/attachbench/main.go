// Command attachbench compares two ways of running a replicated SIP
// registrar the way an operator would, with the same sipp load on the
// same machine:
//
//   - A, attached: a Kamailio edge running the shipped SIP-style config
//     (integration/kamailio/sip-style.cfg: REGISTER forwarded to locsvc
//     with the edge's Path, INVITE sent to locsvc, whose 302 the edge
//     follows to the phone) in front of a 2-node locsvc cluster (each node
//     on its own memcached, R=2, redirect mode, --register-rate 0, the
//     edge trusted);
//   - B, dmq: two Kamailio nodes (integration/bench/kamailio-dmq.cfg:
//     registrar + usrloc in memory, replicated to each other by dmq and
//     dmq_usrloc; INVITE looked up and relayed to the phone).
//
// All the load goes to one entry point of each deployment: the edge (A),
// node 1 (B). Users register their contact at one "phone", a sipp in
// server mode that answers every INVITE 486 Busy Here, so that in both
// deployments an INVITE is one transaction routed to the binding and
// back: A's edge asks locsvc and follows the 302, B's node looks the user
// up in its own table.
//
// For REGISTER and for INVITE it finds each deployment's highest
// sustainable rate as sipbench does: one sipp run per step (-step) at a
// fixed rate, doubling from -start-rate until a step fails, then -bisect
// bisections; a step is sustainable when no call failed, retransmissions
// stay under 0.1 % of the calls and the achieved rate is at least 97 % of
// the offered one. Each search runs on freshly started processes; before
// an INVITE search every user is registered once from the phone's port,
// since A's edge routes a call to the address the REGISTER came from
// (its Path's received=). The searches alternate (REGISTER: A then B;
// INVITE: B then A) so that a drift of the machine's load does not favour
// one deployment in both rows.
//
// While every step runs it reads each Kamailio's shared memory and tm
// transactions with kamcmd (core.shmmem real_used, tm.stats current)
// every -sample-every, and fits the bytes per transaction and how long a
// request's transaction stays in memory. From A's edge it derives the
// shared memory (-m) the edge needs for a REGISTER rate, and checks it:
// an edge started at -check-mb (Kamailio's default, 64 MB) is offered
// 0.7 and 1.3 times the rate predicted to fill it, and should pass the
// first and run out of shared memory in the second.
//
// Output: the tables on stdout and in -out/attachbench.md, and in
// -out/attachbench-<UTC time>/: table.md, steps.csv (every step),
// shm.csv (every memory reading), users.csv, and per deployment the
// processes' command lines and logs and one folder per step with sipp's
// command line, screen, stat.csv, *_rtt.csv and errors.log. -smoke runs
// one short low-rate step of each request per deployment and checks the
// replication, and fails unless every call succeeded and the memory was
// read (integration/attachbench_smoke_test.go runs it in `make test`); it
// measures nothing worth quoting.
//
// Everything listens on 127.0.0.1, on ports picked at run time. Every
// process runs in its own process group and is stopped by PID (SIGTERM,
// then SIGKILL to its group) at the end, on error and on SIGINT/SIGTERM;
// children also get SIGTERM if attachbench is killed.
//
// Usage (from the repository root; `make bench-attached` does this):
//
//	make build
//	go run ./integration/bench/cmd/attachbench -locsvc bin/locsvc -out results
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

type config struct {
	locsvc      string
	assets      string // integration/bench
	kamDir      string // integration/kamailio
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
	shmMB       int
	checkMB     int
	checkStep   time.Duration
	sampleEvery time.Duration
	preloadRate int
	requests    []request
	smoke       bool
	smokeRate   int
}

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
	var requests string
	flag.StringVar(&c.locsvc, "locsvc", "bin/locsvc", "locsvc binary (build it without -race: make build)")
	flag.StringVar(&c.assets, "assets", "", "folder with kamailio-dmq.cfg and sipp/ (default: integration/bench, found from the source or the working directory)")
	flag.StringVar(&c.out, "out", "results", "folder for the table and the raw data")
	flag.IntVar(&c.users, "users", 20000, "distinct users in the injection file")
	flag.DurationVar(&c.step, "step", 10*time.Second, "length of one rate step")
	flag.IntVar(&c.startRate, "start-rate", 1000, "first offered rate (calls/s)")
	flag.IntVar(&c.maxRate, "max-rate", 64000, "highest offered rate: the search stops there")
	flag.IntVar(&c.minRate, "min-rate", 50, "lowest offered rate: below it the search gives up")
	flag.IntVar(&c.bisect, "bisect", 3, "bisection steps after the doubling phase")
	flag.DurationVar(&c.budget, "budget", 7*time.Minute, "time for the four searches; each gets a share and stops early (reported with >=) when it runs out")
	flag.DurationVar(&c.cooldown, "cooldown", 2*time.Second, "pause after each step (doubled after a failed step)")
	flag.IntVar(&c.kamChildren, "kam-children", 4, "UDP worker processes per listener of B's nodes (the edge's config has 4)")
	flag.IntVar(&c.shmMB, "shm-mb", 1024, "shared memory (-m, MB) of every Kamailio during the searches, so that it is not the limit")
	flag.IntVar(&c.checkMB, "check-mb", 64, "-m of the edge in the sizing check (64: Kamailio's default); 0 skips the check")
	flag.DurationVar(&c.checkStep, "check-step", 12*time.Second, "length of each step of the sizing check (past the transactions' life)")
	flag.DurationVar(&c.sampleEvery, "sample-every", 500*time.Millisecond, "interval of the kamcmd memory readings during a step")
	flag.IntVar(&c.preloadRate, "preload-rate", 0, "rate of the registration of every user before an INVITE search (0: two thirds of that deployment's REGISTER rate, else 1000/s)")
	flag.StringVar(&requests, "requests", "register,invite", "request types to search")
	flag.BoolVar(&c.smoke, "smoke", false, "one short low-rate step of each request per deployment; fail unless every call succeeded, the replication is seen and the memory was read")
	flag.IntVar(&c.smokeRate, "smoke-rate", 50, "offered rate of the -smoke steps")
	flag.Parse()
	for _, q := range strings.Split(requests, ",") {
		if q != string(register) && q != string(invite) {
			fatalf("unknown request %q (want register, invite)", q)
		}
		c.requests = append(c.requests, request(q))
	}
	if c.smoke {
		c.step = 2 * time.Second
		c.users = c.smokeRate * 2
		c.shmMB = 64
		c.checkMB = 0
		c.sampleEvery = 250 * time.Millisecond
	}
	return c
}

// logf writes a line of progress to stderr.
var logf = (&procs.Logger{Name: "attachbench"}).Logf

func fatalf(format string, args ...any) {
	logf(format, args...)
	children.StopAll()
	os.Exit(1)
}

// writeUsers writes the injection file: every user's contact is the
// phone.
func (r *runner) writeUsers() error {
	r.usersCSV = filepath.Join(r.dir, "users.csv")
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := range r.c.users {
		fmt.Fprintf(&b, "bench%06d;127.0.0.1:%d\n", i, r.phonePort)
	}
	return os.WriteFile(r.usersCSV, []byte(b.String()), 0o644)
}

func checkTools(c config) error {
	var missing []string
	for _, t := range []string{"sipp", "memcached", "kamailio", "kamcmd"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not on PATH: %s (Debian: apt-get install sip-tester memcached kamailio)", strings.Join(missing, ", "))
	}
	if st, err := os.Stat(c.locsvc); err != nil || st.IsDir() {
		return fmt.Errorf("locsvc binary %q not found: build it without -race (make build) or pass -locsvc", c.locsvc)
	}
	return nil
}
