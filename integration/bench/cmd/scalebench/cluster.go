package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/locsvc/locsvc/api/locsvcv1"
	"github.com/locsvc/locsvc/integration/bench/internal/procs"
)

// member is one host's memcached and the locsvc node fronting it.
type member struct {
	id   string
	host *host
	mc   *procs.Proc
	node *procs.Proc
	args []string // the node's serve flags, to start it again

	conn     *grpc.ClientConn
	cluster  locsvcv1.ClusterServiceClient
	location locsvcv1.LocationServiceClient
	http     *http.Client
}

// The ports every host uses: each host is a namespace of its own.
const (
	portGRPC, portHTTP, portGossip, portMemcached = 7070, 8080, 7946, 11211
)

func (m *member) shard() string { return m.host.hostPort(portMemcached) }

// startMemcached starts the member's memcached and waits until it answers.
func (b *bench) startMemcached(ctx context.Context, m *member) error {
	bin, args := m.host.exec("memcached", "-u", "nobody", "-l", m.host.addr, "-p", strconv.Itoa(portMemcached),
		"-U", "0", "-m", strconv.Itoa(b.c.memcachedMB), "-t", "1")
	p, err := children.Start("memcached "+m.id, filepath.Join(b.dir, "memcached-"+m.id+".log"), b.dir, nil, bin, args...)
	if err != nil {
		return err
	}
	m.mc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := m.stats(ctx, ""); err == nil {
			return nil
		} else if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("memcached on %s: %v", m.host.name, err)
		}
		if err := procs.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// launchNode starts the member's node without waiting for it.
func (b *bench) launchNode(m *member, seeds []string) error {
	h := m.host
	m.args = []string{"serve", "--node-id", m.id,
		"--grpc", h.hostPort(portGRPC), "--http", h.hostPort(portHTTP), "--gossip", h.hostPort(portGossip), "--sip", "",
		"--memcached", m.shard(), "--replicas", strconv.Itoa(b.c.replicas), "--gossip-profile", b.c.profile,
		"--join", strings.Join(seeds, ","), "--log-level", "info",
		// The hosts are the bench's own namespaces, reached by nothing
		// else: the API needs no token there.
		"--api-allow-open"}
	return b.relaunch(m)
}

// relaunch starts the node again with the flags it had.
func (b *bench) relaunch(m *member) error {
	bin, args := m.host.exec(b.c.locsvc, m.args...)
	p, err := children.Start("locsvc "+m.id, filepath.Join(b.dir, "locsvc-"+m.id+".log"), b.dir, nil, bin, args...)
	if err != nil {
		return err
	}
	m.node = p
	if m.conn == nil {
		m.http = &http.Client{Transport: &http.Transport{DialContext: m.host.dial}, Timeout: 5 * time.Second}
		m.conn, err = grpc.NewClient(m.host.hostPort(portGRPC), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return m.host.dial(ctx, "tcp", a) }))
		if err != nil {
			return err
		}
		m.cluster = locsvcv1.NewClusterServiceClient(m.conn)
		m.location = locsvcv1.NewLocationServiceClient(m.conn)
	}
	return nil
}

// waitReady waits until the node's /readyz answers 200.
func (m *member) waitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.host.hostPort(portHTTP)+"/readyz", nil)
		resp, err := m.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if m.node.Exited() {
			return fmt.Errorf("node %s exited: %v", m.id, m.node.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not ready after %v: %v", m.id, d, err)
		}
		if err := procs.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// view is what a node sees: members alive and nodes whose shards are
// healthy, by ID, sorted; and its repair counters.
type view struct {
	alive, healthy []string
	repairing      bool
	copied         uint64
	ownership      map[string]float64 // shard ID -> share
}

func (m *member) view(ctx context.Context) (view, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := m.cluster.Status(ctx, &locsvcv1.StatusRequest{})
	if err != nil {
		return view{}, err
	}
	v := view{ownership: map[string]float64{}}
	for _, mb := range st.Members {
		if mb.Alive {
			v.alive = append(v.alive, mb.NodeId)
		}
	}
	for _, s := range st.Shards {
		if s.Healthy {
			v.healthy = append(v.healthy, s.NodeId)
		}
		v.ownership[s.Id] = s.Ownership
	}
	slices.Sort(v.alive)
	slices.Sort(v.healthy)
	if r := st.Repair; r != nil {
		v.repairing, v.copied = r.Running, r.KeysCopied
	}
	return v, nil
}

// stats reads memcached's "stats" (or "stats <group>") from inside the
// member's host.
func (m *member) stats(ctx context.Context, group string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := m.host.dial(ctx, "tcp", m.shard())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "%s\r\n", strings.TrimSpace("stats "+group)); err != nil {
		return nil, err
	}
	return readStats(bufio.NewReader(c))
}

// readStats parses "STAT name value" lines up to END; values that are not
// numbers are left out.
func readStats(r *bufio.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimSpace(line)
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("memcached stats: %q", line)
		}
		if v, err := strconv.ParseFloat(f[2], 64); err == nil {
			out[f[1]] = v
		}
	}
}
