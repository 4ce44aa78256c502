package target

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

// Locsvc is how to start a locsvc target.
type Locsvc struct {
	Name  string   // target name (locsvc, baseline)
	Bin   string   // the locsvc binary
	Dir   string   // folder for logs and command lines
	CPUs  string   // taskset CPU list for the node and its shards; empty: unpinned
	Quota *Quota   // a CPU cgroup for the node and its shards; nil: none
	Extra []string // more serve flags, after LocsvcArgs' (a later flag wins)
}

// StartLocsvc starts three memcached shards and one locsvc node on them
// (LocsvcArgs), and waits until the node is ready and answers OPTIONS.
func StartLocsvc(ctx context.Context, t *procs.Table, o Locsvc) (*Server, error) {
	s := &Server{Name: o.Name}
	// locsvc first: it drains and leaves while its shards are still up.
	s.stop = func() {
		for i := len(s.Procs) - 1; i >= 0; i-- {
			s.Procs[i].Stop()
		}
	}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	var shards []string
	for i := range 3 {
		port, err := procs.FreePort()
		if err != nil {
			return fail(err)
		}
		bin, args := o.Quota.Wrap(Pinned(o.CPUs, "memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "256", "-t", "1"))
		p, err := t.Start("memcached", filepath.Join(o.Dir, fmt.Sprintf("memcached-%d.log", i+1)), o.Dir, nil, bin, args...)
		if err != nil {
			return fail(err)
		}
		s.Procs = append(s.Procs, p)
		shards = append(shards, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	for _, a := range shards {
		if err := WaitMemcached(ctx, a, 10*time.Second); err != nil {
			return fail(err)
		}
	}
	ports := make([]int, 4)
	for i := range ports {
		p, err := procs.FreePort()
		if err != nil {
			return fail(err)
		}
		ports[i] = p
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	s.SIP = addr(ports[0])
	httpAddr := addr(ports[2])
	args := append(LocsvcArgs(shards, s.SIP, addr(ports[1]), httpAddr, addr(ports[3])), o.Extra...)
	bin, args := o.Quota.Wrap(Pinned(o.CPUs, o.Bin, args...))
	writeCommand(o.Dir, bin, args)
	// The process is named after the program, not the target: CPU time
	// is summed per program name.
	p, err := t.Start("locsvc", filepath.Join(o.Dir, "locsvc.log"), o.Dir, nil, bin, args...)
	if err != nil {
		return fail(err)
	}
	s.Procs = append(s.Procs, p)
	if err := WaitReady(ctx, p, "http://"+httpAddr+"/readyz", s.SIP, 20*time.Second); err != nil {
		return fail(fmt.Errorf("%w\n%s", err, Tail(filepath.Join(o.Dir, "locsvc.log"))))
	}
	s.Info = "memcached " + strings.Join(shards, ",")
	if o.CPUs != "" {
		s.Info += ", on CPU " + o.CPUs
	}
	s.Info += o.Quota.Describe()
	return s, nil
}

// LocsvcArgs is the command line of every locsvc target (sipbench checks
// an older baseline binary's flags against it).
func LocsvcArgs(shards []string, sip, grpc, http, gossip string) []string {
	return []string{"serve", "--node-id", "bench",
		"--memcached", strings.Join(shards, ","), "--replicas", "2",
		"--sip", sip, "--sip-mode", "redirect", "--domain", "localhost",
		"--grpc", grpc, "--http", http, "--gossip", gossip,
		"--log-level", "warn",
		// sipp sends every REGISTER from one address: the per-source
		// REGISTER limit would measure itself, not the server.
		"--register-rate", "0"}
}
