package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Hosts is a test's own small network: each Host is a network namespace
// with its own address on one switch (a bridge in a namespace of its
// own), so that nodes can bind wildcard addresses, gossip addresses other
// than loopback, and be cut off from the rest. Nothing of it touches the
// machine's own network: the test reaches a host through Host.DialContext,
// and every namespace is removed at the end of the test.
//
// It needs root (ip netns); CI runs as root.
type Hosts struct {
	t    testing.TB
	sw   string // the namespace holding the bridge
	List []*Host
}

// Host is one namespace of Hosts.
type Host struct {
	Name string // h1, h2...: for logs
	NS   string // namespace name
	Addr string // its address on the switch
	port string // its interface on the switch side
	sw   string
}

// hostsSubnet is the /24 every Hosts uses: each one lives in namespaces of
// its own, so two tests using the same addresses never meet.
const hostsSubnet = "10.77.0."

var hostsSeq atomic.Int32

// StartHosts creates n hosts on one switch.
func StartHosts(t testing.TB, n int) *Hosts {
	t.Helper()
	if n < 1 || n > 250 {
		t.Fatalf("StartHosts: %d hosts (1 to 250)", n)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the multi-host tests create network namespaces (ip netns) and need root, as in CI")
	}
	// Namespace names are global to the machine: the PID and a sequence
	// keep parallel tests and test binaries apart.
	prefix := fmt.Sprintf("lsv%d-%d-", os.Getpid(), hostsSeq.Add(1))
	hs := &Hosts{t: t, sw: prefix + "sw"}
	t.Cleanup(hs.remove)
	hs.ip("netns", "add", hs.sw)
	hs.ip("-n", hs.sw, "link", "add", "br0", "type", "bridge")
	hs.ip("-n", hs.sw, "link", "set", "br0", "up")
	for i := range n {
		h := &Host{Name: "h" + strconv.Itoa(i+1), NS: prefix + "h" + strconv.Itoa(i+1),
			Addr: hostsSubnet + strconv.Itoa(i+1), port: "p" + strconv.Itoa(i+1), sw: hs.sw}
		peer := "e" + strconv.Itoa(i+1)
		hs.ip("netns", "add", h.NS)
		hs.ip("-n", hs.sw, "link", "add", h.port, "type", "veth", "peer", "name", peer)
		hs.ip("-n", hs.sw, "link", "set", peer, "netns", h.NS)
		hs.ip("-n", h.NS, "link", "set", peer, "name", "eth0")
		hs.ip("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", "eth0")
		hs.ip("-n", h.NS, "link", "set", "eth0", "up")
		hs.ip("-n", h.NS, "link", "set", "lo", "up")
		hs.ip("-n", hs.sw, "link", "set", h.port, "master", "br0")
		hs.ip("-n", hs.sw, "link", "set", h.port, "up")
		hs.List = append(hs.List, h)
	}
	return hs
}

func (hs *Hosts) ip(args ...string) {
	hs.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		hs.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// remove deletes every namespace; deleting a host's namespace deletes its
// link to the switch with it. Processes started in the hosts are stopped
// first: their cleanups were registered after this one.
func (hs *Hosts) remove() {
	for _, h := range hs.List {
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "netns", "del", hs.sw).Run()
}

// Cut takes hosts off the switch (a partition: they still reach each
// other's loopback, nothing else); Heal puts them back.
func (hs *Hosts) Cut(hosts ...*Host) { hs.setLinks("down", hosts) }

// Heal undoes Cut.
func (hs *Hosts) Heal(hosts ...*Host) { hs.setLinks("up", hosts) }

func (hs *Hosts) setLinks(state string, hosts []*Host) {
	hs.t.Helper()
	for _, h := range hosts {
		hs.ip("-n", hs.sw, "link", "set", h.port, state)
	}
}

// Start runs a program inside the host (ip netns exec execs it, so the
// PID is the program's own and stopping it by PID works as elsewhere).
func (h *Host) Start(t testing.TB, name, path string, env []string, args ...string) *Proc {
	t.Helper()
	if p, err := exec.LookPath(path); err == nil {
		path = p
	}
	return Start(t, name+" on "+h.Name, "ip", env, append([]string{"netns", "exec", h.NS, path}, args...)...)
}

// HostPort is the host's address with port.
func (h *Host) HostPort(port int) string { return net.JoinHostPort(h.Addr, strconv.Itoa(port)) }

// DialContext connects from inside the host, for the test's own clients
// (HTTP, gRPC, memcached) of what runs there. A socket belongs to the
// namespace it was created in, so it is created on a thread moved into
// the host's namespace; that thread is never given back to the scheduler
// (the goroutine ends locked), so no other goroutine runs in the host by
// mistake.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open("/var/run/netns/" + h.NS)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("enter %s: %w", h.NS, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
