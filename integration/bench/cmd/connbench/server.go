package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
	"github.com/locsvc/locsvc/integration/bench/internal/target"
)

// ---- file descriptors ----

// raiseNofile sets this process's RLIMIT_NOFILE to at least need, soft and
// hard. It is the one place the limit is raised, and it covers the
// server too: Go raises its own soft limit at start and, when it did,
// gives exec'd children the original one back, but an explicit
// syscall.Setrlimit of RLIMIT_NOFILE turns that restore off, so the
// locsvc child inherits exactly this limit from its fork, before its
// first instruction. Raising it on the child afterwards (syscall.Prlimit
// on its pid) would race the child runtime's own adjustment at start;
// prlimit(1) would work too but adds a tool to the PATH. startServer
// checks /proc/PID/limits of the child all the same. Raising the hard
// limit needs CAP_SYS_RESOURCE (root) when it is below need.
func raiseNofile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	want := lim
	want.Cur = max(lim.Cur, need)
	want.Max = max(lim.Max, want.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("RLIMIT_NOFILE %d:%d -> %d:%d: %v (raising the hard limit needs root or CAP_SYS_RESOURCE; or run with fewer -ws/-tcp)",
			lim.Cur, lim.Max, want.Cur, want.Max, err)
	}
	return nil
}

// childNofile is the soft "Max open files" of a running process.
func childNofile(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseUint(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no Max open files line")
}

// ---- the server under test ----

type server struct {
	p       *procs.Proc
	sip     string // UDP and TCP
	ws      string // "" without WebSocket clients
	httpURL string
	dir     string
	args    []string
}

// serveArgs is the server's command line: the embedded store, one SIP
// front end, no per-source REGISTER limit (every client comes from a few
// loopback addresses, so the limit would measure itself), the profiler
// for the memory breakdown.
func serveArgs(c config, sip, ws, grpc, http, gossip string) []string {
	args := []string{"serve", "--node-id", "connbench",
		"--sip", sip, "--sip-mode", c.mode, "--domain", "localhost",
		"--grpc", grpc, "--http", http, "--gossip", gossip,
		"--log-level", "warn", "--register-rate", "0",
		// Room for every client of the larger transport, and the checks'.
		"--sip-max-conns", strconv.Itoa(max(c.ws, c.tcp) + 64)}
	if ws != "" {
		args = append(args, "--sip-ws", ws)
	}
	if c.pprof {
		args = append(args, "--pprof")
	}
	return append(args, c.serverArgs...)
}

// serveFlags is the set of flags `BIN serve -h` lists.
func serveFlags(ctx context.Context, bin string) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "serve", "-h").CombinedOutput() // -h may exit non-zero
	have := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "  -") {
			have["--"+strings.TrimLeft(f[0], "-")] = true
		}
	}
	return have
}

// startServer starts locsvc on ports picked now, retrying when one was
// taken between picking and binding, and waits until it serves.
func startServer(ctx context.Context, c config, dir string, need uint64) (*server, error) {
	var last error
	for attempt := range 3 {
		s, err := tryStart(ctx, c, dir, need)
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
		last = err
		logf("locsvc did not start (attempt %d): %v", attempt+1, err)
	}
	return nil, last
}

func tryStart(ctx context.Context, c config, dir string, need uint64) (*server, error) {
	ports := make([]string, 5)
	for i := range ports {
		p, err := procs.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	s := &server{sip: ports[0], httpURL: "http://" + ports[3], dir: dir}
	if c.ws > 0 {
		s.ws = ports[1]
	}
	s.args = serveArgs(c, s.sip, s.ws, ports[2], ports[3], ports[4])
	var env []string
	if c.memProfRate > 0 {
		env = append(env, "GODEBUG=memprofilerate="+strconv.Itoa(c.memProfRate))
	}
	_ = os.WriteFile(filepath.Join(dir, "command.txt"), []byte(strings.Join(append(env, c.locsvc), " ")+" "+strings.Join(s.args, " ")+"\n"), 0o644)
	p, err := children.Start("locsvc", filepath.Join(dir, "locsvc.log"), dir, env, c.locsvc, s.args...)
	if err != nil {
		return nil, err
	}
	s.p = p
	if err := s.waitReady(ctx, 20*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%w\n%s", err, target.Tail(filepath.Join(dir, "locsvc.log")))
	}
	if n, err := childNofile(p.PID()); err != nil || n < need {
		p.Stop()
		return nil, fmt.Errorf("locsvc (pid %d) may open %d files (%v), the run needs %d", p.PID(), n, err, need)
	}
	return s, nil
}

// waitReady waits for /readyz and for the SIP TCP and WebSocket ports to
// take connections.
func (s *server) waitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if s.p.Exited() {
			return fmt.Errorf("locsvc exited: %v", s.p.Err())
		}
		last = s.ready()
		if last == nil {
			return nil
		}
		if err := procs.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("locsvc not ready after %v: %v", d, last)
}

func (s *server) ready() error {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(s.httpURL + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	for _, a := range []string{s.sip, s.ws} {
		if a == "" {
			continue
		}
		conn, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return err
		}
		conn.Close()
	}
	return nil
}

// sample is the server's state at one moment.
type sample struct {
	phase      string
	at         time.Time
	rss        int64 // VmRSS, bytes
	rssAnon    int64 // RssAnon: the heap, stacks and other private memory
	heapInuse  float64
	stackInuse float64
	goroutines float64
	wsConns    float64
	tcpConns   float64
	cpuTicks   int64 // utime + stime, 1/clkTck s
}

const clkTck = 100 // USER_HZ on Linux

// sample reads the server's memory after a garbage collection (with
// -pprof: fetching the heap profile with gc=1 runs one, so that heap in
// use is live memory, not the garbage of the handshakes just done) and
// keeps the heap profile and a goroutine summary in the run's folder.
func (s *server) sample(phase string, withProfiles bool) (sample, error) {
	if withProfiles {
		for _, p := range []struct{ path, file string }{
			{"/debug/pprof/heap?gc=1", "heap-" + phase + ".pb.gz"},
			{"/debug/pprof/goroutine?debug=1", "goroutines-" + phase + ".txt"},
		} {
			if err := s.fetch(p.path, filepath.Join(s.dir, p.file), 30*time.Second); err != nil {
				return sample{}, err
			}
		}
	}
	m, err := s.metrics()
	if err != nil {
		return sample{}, err
	}
	sm := sample{phase: phase, at: time.Now(), heapInuse: m["go_memstats_heap_inuse_bytes"],
		stackInuse: m["go_memstats_stack_inuse_bytes"], goroutines: m["go_goroutines"],
		wsConns: m["locsvc_sip_ws_connections"], tcpConns: m["locsvc_sip_tcp_connections"]}
	st, err := procStatus(s.p.PID())
	if err != nil {
		return sample{}, err
	}
	sm.rss, sm.rssAnon = st["VmRSS"], st["RssAnon"]
	if sm.cpuTicks, err = procs.CPUTicks(s.p.PID()); err != nil {
		return sample{}, err
	}
	return sm, nil
}

// fetch saves what GET path answers in file.
func (s *server) fetch(path, file string, timeout time.Duration) error {
	cl := http.Client{Timeout: timeout}
	resp, err := cl.Get(s.httpURL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// metrics reads the unlabelled series of /metrics.
func (s *server) metrics() (map[string]float64, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(s.httpURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}

// procStatus reads the kB fields of /proc/PID/status, in bytes.
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		f := strings.Fields(v)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		out[k] = n << 10
	}
	return out, nil
}
