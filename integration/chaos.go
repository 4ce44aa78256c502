package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
)

// newChaosNodeSpec fixes a chaos node's addresses once, so that a
// restarted node comes back where it was: memberlist takes a dead member
// back only at the address it had, and sipp and the test keep talking to
// the same ports.
func newChaosNodeSpec(t testing.TB, id string, bench bool, args ...string) NodeOptions {
	return NodeOptions{ID: id, GRPC: FreeAddr(t), HTTP: FreeAddr(t), SIP: FreeAddr(t), Gossip: FreeAddr(t),
		Args: args, Bench: bench}
}

// Chaos users: distinct per REGISTER, each with one contact derived from
// its number, so that any answer can be checked without a lookup table.
func chaosUser(i int) string     { return "chaos" + strconv.Itoa(i) }
func chaosHostPort(i int) string { return fmt.Sprintf("127.0.0.1:%d", 20000+i%40000) }
func chaosContact(i int) string  { return "sip:" + chaosUser(i) + "@" + chaosHostPort(i) }
func chaosAoR(i int) string      { return "sip:" + chaosUser(i) + "@localhost" }
func chaosUserNumber(u string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(u, "chaos"))
	return n, err == nil && strings.HasPrefix(u, "chaos")
}

// chaosPhase counts what happened to the calls of the rounds that started
// in one phase of the run.
type chaosPhase struct {
	Name                string
	Start               time.Duration // since the load began
	RegSent, Reg200     int
	RegOther, RegSilent int            // answered otherwise / not at all
	RegCodes            map[string]int // the other answers by code
	InvSent, InvOK      int
	InvFailed           int
}

// chaosLoad sends rounds of sipp load to the nodes' SIP ports: in each
// round every node not paused gets one sipp REGISTER run of fresh users and
// one sipp INVITE run of users whose REGISTER got 200 OK in an earlier
// round. Rounds make "registered before the INVITE was sent" exact: the
// INVITE's user list is written only after the REGISTER's sipp has ended.
type chaosLoad struct {
	dir      string
	sip      []string // SIP address of node i
	regRate  int      // per node and second
	invRate  int
	round    time.Duration
	rng      *rand.Rand
	began    time.Time
	cancel   context.CancelFunc
	finished chan struct{}
	reserved map[int]bool // ports of the nodes and shards, which come back on them

	mu        sync.Mutex
	cond      *sync.Cond
	paused    []bool
	inFlight  []bool
	stopping  bool
	nextUser  int
	confirmed []int // users whose REGISTER got 200 OK, in order
	lastRound []int // those confirmed by the last round
	phases    []*chaosPhase
	failures  []string // the first failed INVITEs, described
	harness   []error  // sipp runs that did not run (not locsvc's fault)
}

// startChaosLoad starts the load on the nodes at sip; sipp never binds a
// port of reserved (addresses of processes that will be restarted on them).
func startChaosLoad(t testing.TB, sip, reserved []string, regRate, invRate int, round time.Duration) *chaosLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &chaosLoad{dir: t.TempDir(), sip: sip, regRate: regRate, invRate: invRate, round: round, reserved: map[int]bool{},
		rng: rand.New(rand.NewPCG(1, 2)), began: time.Now(), cancel: cancel, finished: make(chan struct{}),
		paused: make([]bool, len(sip)), inFlight: make([]bool, len(sip)),
		phases: []*chaosPhase{{Name: "steady"}}}
	l.cond = sync.NewCond(&l.mu)
	for _, a := range reserved {
		_, port, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(port)
		l.reserved[n] = true
	}
	go l.run(ctx)
	// On a failed test this kills the sipp in flight; after Stop it is a
	// no-op.
	t.Cleanup(func() { cancel(); <-l.finished })
	return l
}

// Phase starts a new phase for the rounds that start from now on.
func (l *chaosLoad) Phase(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases = append(l.phases, &chaosPhase{Name: name, Start: time.Since(l.began)})
}

// Pause stops sending to node i and waits for its round in flight to end,
// so that nothing is on its way to the node when it is killed.
func (l *chaosLoad) Pause(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused[i] = true
	for l.inFlight[i] {
		l.cond.Wait()
	}
}

// Resume sends to node i again from the next round.
func (l *chaosLoad) Resume(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused[i] = false
}

// Stop lets the round in flight finish and ends the load.
func (l *chaosLoad) Stop() {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	<-l.finished
	l.cancel()
}

// Confirmed is a copy of the users whose REGISTER got 200 OK so far.
func (l *chaosLoad) Confirmed() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.confirmed...)
}

func (l *chaosLoad) run(ctx context.Context) {
	defer close(l.finished)
	for k := 0; ctx.Err() == nil; k++ {
		plan, ok := l.planRound()
		if !ok {
			return
		}
		results := l.sendRound(ctx, k, plan)
		l.recordRound(ctx, plan, results)
	}
}

// chaosRound is what one round sends: to each target node, the fresh
// users to register and the confirmed users to call.
type chaosRound struct {
	phase   *chaosPhase
	targets []int   // nodes not paused
	regs    [][]int // per target
	invs    [][]int // per target
}

// chaosRoundResult is one sipp run of a round.
type chaosRoundResult struct {
	kind string // "register" or "invite"
	out  chaosSippOutcome
}

// planRound marks the nodes not paused as in flight and picks the round's
// users; false when the load is stopping. The users are picked under l.mu
// so that the INVITEs only go to users confirmed by rounds already over.
func (l *chaosLoad) planRound() (chaosRound, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return chaosRound{}, false
	}
	var p chaosRound
	for i := range l.sip {
		if !l.paused[i] {
			p.targets = append(p.targets, i)
			l.inFlight[i] = true
		}
	}
	p.phase = l.phases[len(l.phases)-1]
	perNode := int(float64(l.regRate) * l.round.Seconds())
	p.regs = make([][]int, len(p.targets))
	for j := range p.targets {
		for range perNode {
			p.regs[j] = append(p.regs[j], l.nextUser)
			l.nextUser++
		}
	}
	p.invs = l.pickInvites(len(p.targets), int(float64(l.invRate)*l.round.Seconds()))
	return p, true
}

// sendRound runs round k's sipp runs, all at once, and waits for them.
func (l *chaosLoad) sendRound(ctx context.Context, k int, p chaosRound) []chaosRoundResult {
	results := make(chan chaosRoundResult, 2*len(p.targets))
	var wg sync.WaitGroup
	for j, node := range p.targets {
		wg.Go(func() {
			results <- chaosRoundResult{"register", l.runSipp(ctx, "chaos_register.xml", fmt.Sprintf("r%04d-node%d-reg", k, node+1), l.sip[node], l.regRate, p.regs[j])}
		})
		if len(p.invs[j]) > 0 {
			wg.Go(func() {
				results <- chaosRoundResult{"invite", l.runSipp(ctx, "chaos_invite.xml", fmt.Sprintf("r%04d-node%d-inv", k, node+1), l.sip[node], l.invRate, p.invs[j])}
			})
		}
	}
	wg.Wait()
	close(results)
	var out []chaosRoundResult
	for r := range results {
		out = append(out, r)
	}
	return out
}

// recordRound counts a round's answers into its phase, adds the users it
// registered to the confirmed ones and lets Pause waiters go on.
func (l *chaosLoad) recordRound(ctx context.Context, p chaosRound, results []chaosRoundResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var confirmed []int
	for _, r := range results {
		if r.out.err != nil {
			// A sipp that did not run because the load was cancelled is
			// not a harness failure.
			if ctx.Err() == nil {
				l.harness = append(l.harness, r.out.err)
			}
			continue
		}
		switch r.kind {
		case "register":
			confirmed = append(confirmed, p.phase.countRegisters(r.out)...)
		case "invite":
			l.countInvites(p.phase, r.out)
		}
	}
	l.confirmed = append(l.confirmed, confirmed...)
	l.lastRound = confirmed
	for _, i := range p.targets {
		l.inFlight[i] = false
	}
	l.cond.Broadcast()
}

// countRegisters counts one REGISTER run's answers and returns the users
// that got 200 OK. Users sipp never sent to are not counted: the run was
// cut short, which says nothing about the server.
func (ph *chaosPhase) countRegisters(out chaosSippOutcome) []int {
	var confirmed []int
	for _, u := range out.users {
		if !out.sent[u] {
			continue
		}
		ph.RegSent++
		switch a := out.answer[u]; {
		case a == "200":
			ph.Reg200++
			confirmed = append(confirmed, u)
		case a == "":
			ph.RegSilent++
		default:
			ph.RegOther++
			if ph.RegCodes == nil {
				ph.RegCodes = map[string]int{}
			}
			ph.RegCodes[a]++
		}
	}
	return confirmed
}

// countInvites counts one INVITE run's answers into ph and describes the
// first failures. Called with l.mu held.
func (l *chaosLoad) countInvites(ph *chaosPhase, out chaosSippOutcome) {
	for _, u := range out.users {
		if !out.sent[u] {
			continue
		}
		ph.InvSent++
		a := out.answer[u]
		if a == "302 "+chaosContact(u) {
			ph.InvOK++
			continue
		}
		ph.InvFailed++
		if len(l.failures) < 10 {
			if a == "" {
				a = "no answer logged; sipp errors: " + excerpt(out.errors, chaosUser(u)+"@")
			}
			l.failures = append(l.failures, fmt.Sprintf("+%v %s INVITE %s (contact %s): %s",
				time.Since(l.began).Round(time.Millisecond), out.name, chaosUser(u), chaosContact(u), a))
		}
	}
}

// pickInvites chooses n distinct confirmed users for each of nodes: half
// from the last round (just registered, the riskiest: their copies are the
// newest), the rest from all confirmed users. Called with l.mu held.
func (l *chaosLoad) pickInvites(nodes, n int) [][]int {
	out := make([][]int, nodes)
	want := min(nodes*n, len(l.confirmed))
	taken := make(map[int]bool, want)
	var picked []int
	for _, i := range l.rng.Perm(len(l.lastRound)) {
		if len(picked) >= want/2 {
			break
		}
		u := l.lastRound[i]
		taken[u] = true
		picked = append(picked, u)
	}
	for len(picked) < want {
		u := l.confirmed[l.rng.IntN(len(l.confirmed))]
		if !taken[u] {
			taken[u] = true
			picked = append(picked, u)
		}
	}
	for i, u := range picked {
		out[i%nodes] = append(out[i%nodes], u)
	}
	return out
}

// chaosSippOutcome is what one sipp run logged per user: "SENT user" and
// the answer line (without the user) the scenario logs.
type chaosSippOutcome struct {
	name   string
	users  []int
	sent   map[int]bool
	answer map[int]string // "200", "302 URI", "503"...
	errors string         // the -trace_err log
	err    error
}

// runSipp runs one sipp over users at rate calls/s against target and
// reads its log. It is killed (by PID) when ctx ends.
func (l *chaosLoad) runSipp(ctx context.Context, scenario, name, target string, rate int, users []int) chaosSippOutcome {
	out := chaosSippOutcome{name: name, users: users, sent: map[int]bool{}, answer: map[int]string{}}
	dir := filepath.Join(l.dir, name)
	injection, err := writeChaosInjection(dir, users)
	if err != nil {
		out.err = err
		return out
	}
	sf, err := filepath.Abs(filepath.Join("sipp", scenario))
	if err != nil {
		out.err = err
		return out
	}
	logFile, errFile := filepath.Join(dir, "calls.log"), filepath.Join(dir, "errors.log")
	// -timeout bounds the run well past its calls; -recv_timeout gives up
	// on one call after 5 s (sipp retransmits over UDP meanwhile), which
	// leaves its user without an answer line.
	runFor := time.Duration(len(users))*time.Second/time.Duration(rate) + 15*time.Second
	args := func(port int) []string {
		return []string{"-sf", sf, "-inf", injection, "-key", "domain", "localhost",
			"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "u1",
			"-r", strconv.Itoa(rate), "-rp", "1000", "-m", strconv.Itoa(len(users)),
			"-recv_timeout", "5000", "-timeout", strconv.Itoa(int(runFor/time.Second)) + "s", "-nostdin",
			"-trace_logs", "-log_file", logFile, "-trace_err", "-error_file", errFile,
			target}
	}
	output, runErr, err := l.execSipp(ctx, dir, args, logFile, errFile)
	if err != nil {
		out.err = err
		return out
	}
	if b, err := os.ReadFile(errFile); err == nil {
		out.errors = string(b)
	}
	if err := out.readLog(logFile); err != nil {
		out.err = err
		return out
	}
	// sipp exits 1 when some call failed; that is the server's part and
	// is judged per user by the caller. Anything else, with nothing sent,
	// means sipp itself did not run.
	var exit *exec.ExitError
	if runErr != nil && len(out.sent) == 0 && (!errors.As(runErr, &exit) || exit.ExitCode() != 1) {
		out.err = fmt.Errorf("sipp %s: %v\n%s", name, runErr, excerpt(string(output), ""))
	}
	return out
}

// writeChaosInjection creates dir and writes the sipp injection file of
// users in it.
func writeChaosInjection(dir string, users []int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for _, u := range users {
		fmt.Fprintf(&inf, "%s;%s\n", chaosUser(u), chaosHostPort(u))
	}
	injection := filepath.Join(dir, "users.csv")
	return injection, os.WriteFile(injection, []byte(inf.String()), 0o644)
}

// execSipp runs sipp with args(port) on a free local port and returns its
// output and exit error; err is set only when no port could be found.
// A port found free can be taken before sipp binds it (several sipp
// start at once); sipp then exits at once, having sent nothing, and
// another port is tried.
func (l *chaosLoad) execSipp(ctx context.Context, dir string, args func(port int) []string, logFile, errFile string) (output []byte, runErr, err error) {
	for attempt := 0; ; attempt++ {
		os.Remove(logFile)
		os.Remove(errFile)
		port, err := freeUDPPort()
		if err == nil && l.reserved[port] {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		cmd := exec.CommandContext(ctx, "sipp", args(port)...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second
		output, runErr = cmd.CombinedOutput()
		if runErr == nil || attempt >= 4 || !strings.Contains(string(output), "Unable to bind") {
			return output, runErr, nil
		}
	}
}

// readLog reads the scenario's log: "SENT user" when a request went out,
// "<code> user [detail]" for its answer. A missing log means nothing was
// sent, not an error.
func (out *chaosSippOutcome) readLog(logFile string) error {
	b, err := os.ReadFile(logFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		code, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		user, detail, _ := strings.Cut(rest, " ")
		u, ok := chaosUserNumber(user)
		if !ok {
			continue
		}
		if code == "SENT" {
			out.sent[u] = true
		} else {
			out.answer[u] = strings.TrimSpace(code + " " + detail)
		}
	}
	return nil
}

// freeUDPPort is a loopback UDP port that was free a moment ago, for a
// sipp started off the test's goroutine (FreePort may call t.Fatal).
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// excerpt is up to 600 bytes of s around the first occurrence of near.
func excerpt(s, near string) string {
	i := 0
	if near != "" {
		i = max(strings.Index(s, near)-300, 0)
	}
	return strings.TrimSpace(s[i:min(i+600, len(s))])
}

// chaosUnderReplicated counts users missing from a shard of their replica
// set under r, reading every live memcached directly, without logging
// (it is polled).
func chaosUnderReplicated(c *Cluster, r *ring.Ring, users []int, replicas int) (int, error) {
	keys := make([]string, len(users))
	for i, u := range users {
		keys[i] = locsvc.StoreKey(chaosAoR(u))
	}
	return c.underReplicated(r, keys, replicas, 0)
}

// chaosLookupAll looks every user up through every node (gRPC Lookup) and
// returns, per node, the users whose contact was missing and the lookups
// that failed.
func chaosLookupAll(t testing.TB, nodes []*Node, users []int) (missing, failed [][]int) {
	missing, failed = make([][]int, len(nodes)), make([][]int, len(nodes))
	for ni, n := range nodes {
		var mu sync.Mutex
		parallel(t, 0, len(users), 16, func(ctx context.Context, i int) error {
			u := users[i]
			res, err := n.Location.Lookup(ctx, &locsvcv1.LookupRequest{Aor: chaosAoR(u)})
			if err != nil {
				mu.Lock()
				failed[ni] = append(failed[ni], u)
				mu.Unlock()
				return fmt.Errorf("%s via %s: %w", chaosAoR(u), n.ID, err)
			}
			for _, b := range res.Bindings {
				if b.Uri == chaosContact(u) {
					return nil
				}
			}
			mu.Lock()
			missing[ni] = append(missing[ni], u)
			mu.Unlock()
			return fmt.Errorf("%s via %s: contact %s missing (bindings %v)", chaosAoR(u), n.ID, chaosContact(u), res.Bindings)
		})
	}
	return missing, failed
}
