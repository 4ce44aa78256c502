// Command connbench measures what holding many SIP connections costs one
// locsvc node: -ws WebSocket (RFC 7118) and -tcp TCP clients, each an
// RFC 5626 outbound UA with one registered flow that it keeps alive. It
// reports
//
//   - memory per connection: the server's VmRSS (/proc/PID/status) and Go
//     heap and stack in use (its /metrics), read after a garbage
//     collection, before any client, -settle (35 s, past the 32 s the
//     server keeps each REGISTER's answer) after the WebSocket clients
//     are all registered, as long after the TCP clients, and at the end
//     of the idle window; each phase's growth divided by its
//     connections;
//   - the CPU of keepalives at idle: every client sends a double-CRLF
//     ping (over WebSocket a text message of it) every -keepalive, at a
//     fixed offset drawn at random so that the pings are spread evenly,
//     and the server's utime + stime (/proc/PID/stat) over -idle is given
//     as a share of one core and per keepalive, beside the empty
//     server's;
//   - the REGISTER refresh rate sustained meanwhile: with every
//     connection held and keeping alive, clients refresh their
//     registration (same Call-ID, CSeq + 1, over their own connection) at
//     each offered rate of -rates for -step; a step is sustained when at
//     least 99 % of the refreshes offered get their 200 within
//     -max-latency (1 s) and the achieved rate is at least 97 % of the
//     offered one. The ladder stops at the first step that is not.
//
// Each client registers <sip:uN@df7jal23ls0d.invalid;transport=ws> (or
// tcp) with +sip.instance and reg-id=1, Supported: outbound, path and
// Expires 3600, and the run fails unless every 200 carries Require:
// outbound. It also fails when a registration fails, a connection is
// lost, or the server does not count the connections the clients hold.
//
// The server under test is `locsvc serve` on the embedded store (no
// memcached) in -mode (redirect by default; registrar and proxy too), with
// --register-rate 0, since all clients come from a few addresses and the
// per-source REGISTER limit would otherwise throttle the generator, and
// --pprof, whose heap and goroutine profiles of each phase are kept for
// the memory breakdown. It listens on 127.0.0.1 on ports picked at run
// time; the clients connect from 127.0.0.2, 127.0.0.3, ..., -per-source
// to an address, so that no address runs short of ephemeral ports.
// connbench raises RLIMIT_NOFILE for itself and the server (see
// raiseNofile) and checks the server's limit, and gives the server
// --sip-max-conns for the clients of each transport (its default, 8192,
// is below the full run's 10,000).
//
// The load generator runs on the same machine as the server and is kept
// light: one parked reader goroutine per client; dialing, refreshes and
// keepalives are written by a few goroutines of their own.
//
// Output: the table on stdout and in -out/connbench.md, and in
// -out/connbench-<UTC time>/ the table, samples.csv (every memory
// sample), idle.csv, steps.csv, the server's command line and log, and
// the heap and goroutine profiles of every phase (go tool pprof
// -sample_index=inuse_space heap-tcp.pb.gz). -smoke is a small quick run
// that fails unless everything worked (integration/connbench_smoke_test.go
// runs it inside `make test`); it measures nothing worth quoting.
//
// The server is started in its own process group and stopped by PID
// (SIGTERM, then SIGKILL to its group) at the end, on error, and on
// SIGINT/SIGTERM; it also gets SIGTERM if connbench itself is killed.
//
// Usage (from the repository root; `make bench-conns` does this):
//
//	make build
//	go run ./integration/bench/cmd/connbench -locsvc bin/locsvc -out results
//	go run ./integration/bench/cmd/connbench -locsvc bin/locsvc -ws 1000 -tcp 1000 -idle 20s -out results
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

type config struct {
	locsvc      string
	out         string
	ws, tcp     int
	keepalive   time.Duration
	idle        time.Duration
	emptyWindow time.Duration
	settle      time.Duration
	mode        string
	rates       []int
	stepLen     time.Duration
	cooldown    time.Duration
	expires     int
	perSource   int
	dialConc    int
	pprof       bool
	memProfRate int
	cpuProfile  bool
	smoke       bool
	serverArgs  []string // more flags for `locsvc serve`
}

// children are the processes the run started, stopped by PID on the way
// out.
var children = &procs.Table{Grace: 30 * time.Second, Logf: logf}

func main() {
	c := parseFlags()
	ctx := children.Interruptible()
	children.Finish(ctx, run(ctx, c))
}

func parseFlags() config {
	var c config
	var rates, serverArgs string
	flag.StringVar(&c.locsvc, "locsvc", "bin/locsvc", "locsvc binary (make build)")
	flag.StringVar(&c.out, "out", "results", "folder for the table and the raw data")
	flag.IntVar(&c.ws, "ws", 10000, "WebSocket clients, connected first")
	flag.IntVar(&c.tcp, "tcp", 10000, "TCP clients, connected after the WebSocket ones")
	flag.DurationVar(&c.keepalive, "keepalive", 30*time.Second, "each client's keepalive interval (0: none)")
	flag.DurationVar(&c.idle, "idle", 60*time.Second, "idle window over which the keepalives' CPU is measured")
	flag.DurationVar(&c.emptyWindow, "empty-window", 10*time.Second, "window over which the empty server's CPU is measured first")
	flag.DurationVar(&c.settle, "settle", 35*time.Second, "wait after a phase's clients are registered before its memory is read (the server keeps each REGISTER's answer for 32 s, for retransmissions)")
	flag.StringVar(&c.mode, "mode", "redirect", "server --sip-mode: registrar, redirect or proxy")
	flag.StringVar(&rates, "rates", "1000,2000,4000,8000,16000,32000", "offered REGISTER refresh rates of the ladder, per second, in order (empty: no ladder)")
	flag.DurationVar(&c.stepLen, "step", 5*time.Second, "length of one ladder step")
	flag.DurationVar(&c.cooldown, "cooldown", 2*time.Second, "pause after each ladder step")
	flag.DurationVar(&maxLatency, "max-latency", time.Second, "a refresh counts as sustained when its 200 comes within this")
	flag.IntVar(&c.expires, "expires", 3600, "Expires of every REGISTER, seconds")
	flag.IntVar(&c.perSource, "per-source", 4000, "clients per loopback source address (127.0.0.2, 127.0.0.3, ...)")
	flag.IntVar(&c.dialConc, "dial-concurrency", 64, "clients connecting and registering at once")
	flag.BoolVar(&c.pprof, "pprof", true, "run the server with --pprof and keep each phase's heap and goroutine profiles")
	flag.IntVar(&c.memProfRate, "memprofilerate", 0, "the server's runtime.MemProfileRate (GODEBUG=memprofilerate=N; 0: Go's default, one sample per 512 KB): 1 records every allocation, for an exact breakdown, at a CPU cost that makes the run's other figures worthless")
	flag.BoolVar(&c.cpuProfile, "cpuprofile", false, "keep a CPU profile of the server over the idle window (needs -pprof; the profiler's own cost is then in the idle CPU figure)")
	flag.StringVar(&serverArgs, "server-args", "", "more flags for `locsvc serve`, space-separated")
	flag.BoolVar(&c.smoke, "smoke", false, "small quick run (200 WS + 200 TCP, 1 s keepalives, 2 s idle, one 1 s step at 200/s): fails unless everything worked")
	flag.Parse()
	if c.smoke {
		c.ws, c.tcp = 200, 200
		c.keepalive, c.idle, c.emptyWindow, c.settle = time.Second, 2*time.Second, 500*time.Millisecond, 300*time.Millisecond
		rates, c.stepLen, c.cooldown = "200", time.Second, 0
	}
	c.serverArgs = strings.Fields(serverArgs)
	for r := range strings.SplitSeq(rates, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		n, err := strconv.Atoi(r)
		if err != nil || n <= 0 {
			fatalf("-rates: %q is no positive rate", r)
		}
		c.rates = append(c.rates, n)
	}
	switch {
	case c.ws < 0 || c.tcp < 0 || c.ws+c.tcp == 0:
		fatalf("-ws and -tcp: at least one client, none negative")
	case !slices.Contains([]string{"registrar", "redirect", "proxy"}, c.mode):
		fatalf("-mode: registrar, redirect or proxy, got %q", c.mode)
	case c.perSource <= 0 || 2+(c.ws+c.tcp-1)/c.perSource > 254:
		fatalf("-per-source: %d clients need more than 127.0.0.2-127.0.0.254 at %d an address", c.ws+c.tcp, c.perSource)
	case c.cpuProfile && !c.pprof:
		fatalf("-cpuprofile needs -pprof")
	case c.dialConc <= 0 || c.stepLen <= 0 || c.idle < 0 || c.keepalive < 0 || maxLatency <= 0:
		fatalf("-dial-concurrency, -step, -idle, -keepalive, -max-latency: must be positive")
	}
	return c
}

// logger writes lines of progress to stderr and, once the run's folder
// exists, to its log there.
var (
	logger = &procs.Logger{Name: "connbench"}
	logf   = logger.Logf
)

func fatalf(format string, args ...any) {
	logf(format, args...)
	os.Exit(2)
}

// bench is one run: the server, the clients and what they counted.
type bench struct {
	c   config
	srv *server
	dir string

	runID      string // in Call-IDs and branches
	uuidPrefix string // of the +sip.instance URNs

	clients []*client                // by id: WS first, then TCP
	slots   []atomic.Pointer[client] // keepalive cycle positions
	slotOf  []int                    // client id -> slot
	order   []*client                // refresh order (shuffled)
	cursor  int

	mu          sync.Mutex
	httpClients map[string]*http.Client // one per source address
	firstErr    error

	readers sync.WaitGroup
	kaDone  sync.WaitGroup
	closing atomic.Bool
	lost    atomic.Int64 // connections that ended before the run did
	kaSent  atomic.Int64
	kaErrs  atomic.Int64
	pongs   atomic.Int64
	wsPings atomic.Int64 // WebSocket Pings the server sent
	stray   atomic.Int64 // answers to no REGISTER waiting
}

func (b *bench) noteErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.firstErr == nil {
		b.firstErr = err
		logf("%v", err)
	}
}

// result is what the table shows.
type result struct {
	samples          []sample
	wsTime, tcpTime  time.Duration
	empty            idleWindow
	idle             idleWindow
	idleMissingPongs int64
	steps            []*step
	genRSS           int64
	failure          error
}

// idleWindow is the CPU over a window with no REGISTER traffic.
type idleWindow struct {
	dur       time.Duration
	kaSent    int64
	pongs     int64
	kaTotal   int64   // keepalives sent since the start, at the window's end
	wsPings   int64   // WebSocket Pings of the server
	serverCPU float64 // s
	genCPU    float64 // s
}

func run(ctx context.Context, c config) error {
	if st, err := os.Stat(c.locsvc); err != nil || st.IsDir() {
		return fmt.Errorf("locsvc binary %q not found: make build, or pass -locsvc", c.locsvc)
	}
	c.locsvc, _ = filepath.Abs(c.locsvc)
	have := serveFlags(ctx, c.locsvc)
	for _, f := range []string{"--sip-ws", "--register-rate", "--pprof", "--sip-max-conns"} {
		if !have[f] {
			return fmt.Errorf("%s serve has no %s", c.locsvc, f)
		}
	}
	// Every client is one descriptor here and one in the server; the rest
	// is room for the server's listeners, log and profiles (a few dozen).
	need := uint64(c.ws+c.tcp) + 256
	if err := raiseNofile(need); err != nil {
		return err
	}

	stamp := time.Now().UTC().Format("20060102-150405")
	name := "connbench-" + stamp
	if c.smoke {
		name = "connbench-smoke-" + stamp
	}
	dir, err := filepath.Abs(filepath.Join(c.out, name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lf, err := os.Create(filepath.Join(dir, "connbench.log"))
	if err != nil {
		return err
	}
	logger.SetFile(lf)
	defer func() {
		logger.SetFile(nil)
		lf.Close()
	}()
	logf("writing to %s", dir)

	srv, err := startServer(ctx, c, dir, need)
	if err != nil {
		return err
	}
	defer func() {
		t0 := time.Now()
		srv.p.Stop()
		logf("locsvc stopped (%s)", time.Since(t0).Round(100*time.Millisecond))
	}()
	logf("locsvc (pid %d) up: SIP %s, WebSocket %s, --sip-mode %s", srv.p.PID(), srv.sip, srv.ws, c.mode)

	b := newBench(c, srv, dir)
	res := b.measure(ctx)
	b.closeClients()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	st, _ := procStatus(os.Getpid())
	res.genRSS = st["VmRSS"]
	table := b.table(res)
	fmt.Print(table)
	_ = os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644)
	if !c.smoke {
		_ = os.WriteFile(filepath.Join(c.out, "connbench.md"), []byte(table), 0o644)
	}
	b.writeCSVs(res)
	if res.failure != nil {
		return res.failure
	}
	if c.smoke {
		if err := smokeCheck(res); err != nil {
			return err
		}
		logf("smoke passed")
	}
	return nil
}

func newBench(c config, srv *server, dir string) *bench {
	n := c.ws + c.tcp
	b := &bench{c: c, srv: srv, dir: dir, httpClients: map[string]*http.Client{},
		clients: make([]*client, n), slots: make([]atomic.Pointer[client], n), slotOf: make([]int, n)}
	h := fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
	b.runID = h[:8]
	b.uuidPrefix = h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20]
	for i, s := range rand.Perm(n) {
		b.slotOf[i] = s
	}
	return b
}

// measure runs the phases in order; the first failure ends it, with what
// was measured until then kept.
func (b *bench) measure(ctx context.Context) (res *result) {
	res = &result{}
	kaCtx, stopKA := context.WithCancel(ctx)
	defer func() {
		stopKA()
		b.kaDone.Wait()
	}()
	fail := func(err error) *result {
		res.failure = err
		return res
	}
	take := func(phase string, settle time.Duration) error {
		if err := procs.Sleep(ctx, settle); err != nil {
			return err
		}
		s, err := b.srv.sample(phase, b.c.pprof)
		if err != nil {
			return fmt.Errorf("sample %s: %w", phase, err)
		}
		res.samples = append(res.samples, s)
		logf("%-6s RSS %s, heap in use %s, stacks %s, %0.f goroutines, connections ws %0.f tcp %0.f",
			phase, mb(float64(s.rss)), mb(s.heapInuse), mb(s.stackInuse), s.goroutines, s.wsConns, s.tcpConns)
		return nil
	}
	if err := take("empty", min(b.c.settle, 2*time.Second)); err != nil {
		return fail(err)
	}
	w, err := b.window(ctx, b.c.emptyWindow)
	if err != nil {
		return fail(err)
	}
	res.empty = w
	logf("empty server: CPU %.2f %% of a core over %v", 100*w.serverCPU/w.dur.Seconds(), w.dur)

	b.kaDone.Add(1)
	go b.keepaliveLoop(kaCtx)
	for _, ph := range []struct {
		k     kind
		first int
		n     int
		name  string
		took  *time.Duration
	}{{kindWS, 0, b.c.ws, "ws", &res.wsTime}, {kindTCP, b.c.ws, b.c.tcp, "tcp", &res.tcpTime}} {
		if ph.n == 0 {
			continue
		}
		logf("connecting and registering %d %s clients", ph.n, ph.k)
		d, err := b.connect(ctx, ph.k, ph.first, ph.n)
		if err != nil {
			return fail(err)
		}
		*ph.took = d
		logf("%d %s clients registered in %s (%.0f/s)", ph.n, ph.k, d.Round(10*time.Millisecond), float64(ph.n)/d.Seconds())
		if err := take(ph.name, b.c.settle); err != nil {
			return fail(err)
		}
		if err := b.check(); err != nil {
			return fail(err)
		}
	}
	last := res.samples[len(res.samples)-1]
	if int(last.wsConns) != b.c.ws || (b.c.mode != "proxy" && int(last.tcpConns) != b.c.tcp) {
		// Proxy mode's TCP is sipgo's, which the server does not count.
		return fail(fmt.Errorf("the server counts %0.f WebSocket and %0.f TCP connections, the clients hold %d and %d", last.wsConns, last.tcpConns, b.c.ws, b.c.tcp))
	}

	logf("idle for %v: %d connections keep alive every %v", b.c.idle, b.c.ws+b.c.tcp, b.c.keepalive)
	profiled := make(chan error, 1)
	if b.c.cpuProfile {
		go func() {
			secs := max(int(b.c.idle.Seconds()), 1)
			profiled <- b.srv.fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(b.dir, "cpu-idle.pb.gz"),
				time.Duration(secs)*time.Second+30*time.Second)
		}()
	} else {
		profiled <- nil
	}
	w, err = b.window(ctx, b.c.idle)
	if err == nil {
		err = <-profiled
	}
	if err != nil {
		return fail(err)
	}
	res.idle = w
	// Pongs still on their way when the window closed arrive well within
	// this, even from a race-built server on a busy machine; any still
	// missing were not sent. (Pongs of keepalives sent in the meantime
	// could hide as many missing ones: a second's worth at most.)
	if err := procs.Sleep(ctx, time.Second); err != nil {
		return fail(err)
	}
	res.idleMissingPongs = max(w.kaTotal-b.pongs.Load(), 0)
	logf("idle: %d keepalives, %d pongs, %d server WebSocket Pings, server CPU %.2f %% of a core, %.1f µs per keepalive",
		w.kaSent, w.pongs, w.wsPings, pct(w.serverCPU, w.dur), perEvent(w, res.empty, w.kaSent))
	if err := b.check(); err != nil {
		return fail(err)
	}
	// Memory once more, after the idle window's traffic: VmRSS keeps
	// growing after the phases were read, towards the heap's size.
	if err := take("idle", 0); err != nil {
		return fail(err)
	}

	b.order = make([]*client, len(b.clients))
	for i, s := range rand.Perm(len(b.clients)) {
		b.order[i] = b.clients[s]
	}
	for i, rate := range b.c.rates {
		if i > 0 {
			if err := procs.Sleep(ctx, b.c.cooldown); err != nil {
				return fail(err)
			}
		}
		s, err := b.runStep(ctx, rate)
		if err != nil {
			return fail(err)
		}
		res.steps = append(res.steps, s)
		logf("refresh %6d/s: %-4s sent %d, 200 %d (within %v: %d), other %d, unanswered %d, achieved %.0f/s, p50 %.1f ms, p99 %.1f ms, %.0f µs CPU per REGISTER%s",
			rate, map[bool]string{true: "PASS", false: "FAIL"}[s.pass], s.sent, s.ok, maxLatency, s.within, s.other, s.unanswered,
			s.achieved(), msf(s.percentile(50)), msf(s.percentile(99)), s.cpuPerRegister(), map[bool]string{true: "", false: ": " + s.verdict}[s.pass])
		if err := b.check(); err != nil {
			return fail(err)
		}
		if !s.pass {
			break
		}
	}
	if n := b.stray.Load(); n > 0 {
		logf("%d answers came after their REGISTER was given up", n)
	}
	return res
}

// window measures the server's and the generator's CPU and the
// keepalives over d.
func (b *bench) window(ctx context.Context, d time.Duration) (idleWindow, error) {
	pid := b.srv.p.PID()
	s0, err := procs.CPUTicks(pid)
	if err != nil {
		return idleWindow{}, err
	}
	g0, _ := procs.CPUTicks(os.Getpid())
	ka0, p0, w0, t0 := b.kaSent.Load(), b.pongs.Load(), b.wsPings.Load(), time.Now()
	if err := procs.Sleep(ctx, d); err != nil {
		return idleWindow{}, err
	}
	s1, err := procs.CPUTicks(pid)
	if err != nil {
		return idleWindow{}, err
	}
	g1, _ := procs.CPUTicks(os.Getpid())
	ka1 := b.kaSent.Load()
	return idleWindow{dur: time.Since(t0), kaSent: ka1 - ka0, pongs: b.pongs.Load() - p0, kaTotal: ka1, wsPings: b.wsPings.Load() - w0,
		serverCPU: float64(s1-s0) / clkTck, genCPU: float64(g1-g0) / clkTck}, nil
}

// check fails the run once a connection was lost or the server died.
func (b *bench) check() error {
	if b.srv.p.Exited() {
		return fmt.Errorf("locsvc exited: %v\n%s", b.srv.p.Err(), target.Tail(filepath.Join(b.dir, "locsvc.log")))
	}
	if n := b.lost.Load(); n > 0 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return fmt.Errorf("%d connections lost; the first: %v", n, b.firstErr)
	}
	return nil
}

// closeClients ends every connection (no close handshake: the server
// just sees them go) and waits for the readers.
func (b *bench) closeClients() {
	b.closing.Store(true)
	for _, c := range b.clients {
		if c != nil {
			c.close()
		}
	}
	b.readers.Wait()
}

// perEvent is the server CPU over the idle window, net of what the empty
// server spends in as long, per event (µs).
func perEvent(w, empty idleWindow, events int64) float64 {
	if events == 0 {
		return 0
	}
	base := 0.0
	if empty.dur > 0 {
		base = empty.serverCPU / empty.dur.Seconds() * w.dur.Seconds()
	}
	return max(w.serverCPU-base, 0) / float64(events) * 1e6
}

// smokeCheck is what -smoke demands beyond a run without failure: every
// keepalive answered and the one ladder step sustained.
func smokeCheck(res *result) error {
	var errs []error
	if res.idle.kaSent == 0 {
		errs = append(errs, errors.New("no keepalive sent in the idle window"))
	}
	if res.idleMissingPongs != 0 {
		errs = append(errs, fmt.Errorf("%d keepalives got no pong", res.idleMissingPongs))
	}
	if len(res.steps) == 0 || !res.steps[0].pass {
		errs = append(errs, errors.New("the refresh step was not sustained"))
	}
	return errors.Join(errs...)
}
