// Command scalebench measures a locsvc cluster of -n nodes (16 by
// default), each on a host of its own with its own memcached, R=2:
//
//   - convergence: all nodes launched at once, until every node sees every
//     member alive and every shard healthy;
//   - ownership balance: each shard's share of the key space at R=1 and
//     R=2 (exact, from the ring), and the records each memcached holds
//     after -aors registrations (with sampling noise);
//   - idle cost: each node's and memcached's CPU (utime + stime from
//     /proc/PID/stat) over -idle with no traffic, the bytes each host sends
//     to the others meanwhile (gossip), and each node's VmRSS;
//   - failure detection: a node killed (-9) until every other node sees
//     it dead; the same node started again until all see it alive;
//   - a partition: a third of the hosts split off as a group (they still
//     reach each other) until each side sees only itself, and after the
//     split heals until every node sees every member alive again;
//   - a join: one more node with an empty memcached; the records repair
//     copies to it (the nodes' repair counters, and the new memcached's
//     item count) against the ideal -aors*R/(n+1);
//   - bytes per binding: -bytes-aors AoRs registered over SIP through one
//     node into one memcached (R=1) with one, two and then three bindings
//     each, and memcached's own count of item bytes, slab chunks and
//     memory allocated per AoR (docs/capacity.md builds on these).
//
// Every time is taken by polling each node's Status over gRPC every 250
// ms, so it is a median and a maximum over nodes at that resolution. The
// run fails if a phase does not finish within its bound, or if a sample
// of the registered users is not found at the end.
//
// The hosts are network namespaces on one bridge (needs root), as in the
// integration tests' Hosts: a partition is then a real one (gossip's UDP
// and TCP both stop at the switch), every node binds the same ports on
// its own address, and nothing depends on loopback's special cases. The
// bytes phase needs none of that and runs on 127.0.0.1.
//
// All processes run on this machine: on a small box the figures include
// the contention of tens of processes for its cores, and read best as
// what gossip and repair do at this size, not as latencies to quote.
//
// Output: the tables on stdout and in -out/scalebench.md; in
// -out/scalebench-<UTC time>/ the tables, times.csv (every node's time in
// every phase) and each process's log.
//
// Usage (from the repository root; `make bench-scale` does this):
//
//	make build
//	go run ./integration/bench/cmd/scalebench -locsvc bin/locsvc -out results
//	go run ./integration/bench/cmd/scalebench -locsvc bin/locsvc -n 32 -out results
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

type config struct {
	locsvc      string
	out         string
	n           int
	replicas    int
	profile     string
	aors        int
	idle        time.Duration
	bytesAoRs   int
	memcachedMB int
}

// children are the processes the run started, stopped by PID on the way
// out.
var children = &procs.Table{Grace: 15 * time.Second, Logf: logf}

func main() {
	c := parseFlags()
	ctx := children.Interruptible()
	children.Finish(ctx, run(ctx, c))
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.locsvc, "locsvc", "bin/locsvc", "locsvc binary (make build)")
	flag.StringVar(&c.out, "out", "results", "folder for scalebench.md and the run's folder")
	flag.IntVar(&c.n, "n", 16, "nodes, each on a host of its own with its own memcached")
	flag.IntVar(&c.replicas, "replicas", 2, "replication factor R (--replicas)")
	flag.StringVar(&c.profile, "gossip-profile", "lan", "the nodes' --gossip-profile (local, lan or wan); lan is the default of locsvc serve")
	flag.IntVar(&c.aors, "aors", 20000, "AoRs registered for the balance and join phases")
	flag.DurationVar(&c.idle, "idle", 30*time.Second, "window over which idle CPU and traffic are measured: at least one push/pull interval of the profile (30 s lan)")
	flag.IntVar(&c.bytesAoRs, "bytes-aors", 10000, "AoRs registered over SIP in the bytes-per-binding phase (0: skip it)")
	flag.IntVar(&c.memcachedMB, "memcached-mb", 64, "memory of each memcached (-m)")
	flag.Parse()
	if c.n < 4 || c.n > 240 || c.replicas < 1 || c.aors < 1 || c.idle <= 0 || c.bytesAoRs < 0 {
		fatalf("-n 4 to 240, -replicas, -aors and -idle positive, -bytes-aors >= 0")
	}
	return c
}

// logger writes lines of progress to stderr and, once the run's folder
// exists, to its log there.
var (
	logger = &procs.Logger{Name: "scalebench"}
	logf   = logger.Logf
)

func fatalf(format string, args ...any) {
	logf(format, args...)
	os.Exit(2)
}

// bench is one run.
type bench struct {
	c       config
	dir     string
	net     *network
	members []*member // the cluster: member i on host i
	res     result
}

func run(ctx context.Context, c config) error {
	if st, err := os.Stat(c.locsvc); err != nil || st.IsDir() {
		return fmt.Errorf("locsvc binary %q not found: make build, or pass -locsvc", c.locsvc)
	}
	c.locsvc, _ = filepath.Abs(c.locsvc)
	stamp := time.Now().UTC()
	dir := filepath.Join(c.out, "scalebench-"+stamp.Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dir, _ = filepath.Abs(dir)
	f, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		return err
	}
	defer f.Close()
	logger.SetFile(f)

	nw, err := newNetwork()
	if err != nil {
		return err
	}
	b := &bench{c: c, dir: dir, net: nw, res: result{n: c.n, replicas: c.replicas, profile: c.profile, aors: c.aors, started: stamp}}
	// Processes first, then the namespaces they ran in.
	defer nw.remove()
	defer children.StopAll()
	defer b.stopNodes()
	if err := b.phases(ctx); err != nil {
		return err
	}
	b.stopNodes()
	children.StopAll()
	table := b.res.table(c.locsvc)
	fmt.Print(table)
	for _, p := range []string{filepath.Join(c.out, "scalebench.md"), filepath.Join(dir, "table.md")} {
		if err := os.WriteFile(p, []byte(table), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "times.csv"), []byte(b.res.csv()), 0o644); err != nil {
		return err
	}
	logf("done: %s", filepath.Join(c.out, "scalebench.md"))
	return nil
}

// phases runs every measurement in order; each leaves the cluster whole
// for the next.
func (b *bench) phases(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"start", b.start},
		{"register", b.register},
		{"idle", b.measureIdle},
		{"kill", b.kill},
		{"split", b.split},
		{"join", b.join},
		{"verify", b.verify},
	}
	if b.c.bytesAoRs > 0 {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"bytes", b.bytesPerBinding})
	}
	for _, s := range steps {
		began := time.Now()
		logf("phase %s", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("phase %s: %w", s.name, err)
		}
		logf("phase %s done in %v", s.name, time.Since(began).Round(100*time.Millisecond))
	}
	return nil
}

// seeds are the gossip addresses every node joins through: the first
// three hosts, as an operator would list a few.
func (b *bench) seeds() []string {
	var out []string
	for _, h := range b.net.hosts[:min(3, len(b.net.hosts))] {
		out = append(out, h.hostPort(portGossip))
	}
	return out
}

// newMember starts a memcached on host h.
func (b *bench) newMember(ctx context.Context, h *host) (*member, error) {
	m := &member{id: "node" + strings.TrimPrefix(h.name, "h"), host: h}
	return m, b.startMemcached(ctx, m)
}

// stopNodes stops every node at once: one after the other, each node's
// hand-off (a repair pass, then leaving gossip) would take minutes.
func (b *bench) stopNodes() {
	var wg sync.WaitGroup
	for _, m := range b.members {
		if m.node != nil {
			wg.Go(m.node.Stop)
		}
	}
	wg.Wait()
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") + "\n" }
