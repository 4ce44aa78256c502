package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// network is the run's own switch: every host a network namespace with
// one address on a bridge that lives in a namespace of its own, as the
// integration tests' Hosts (integration/hosts.go) are. Nothing touches
// the machine's own network; the benchmark reaches a host by creating
// its sockets inside the host's namespace (host.dial).
type network struct {
	prefix string // of every namespace name: unique to this process
	sw     string // the namespace holding the bridges
	hosts  []*host
}

// host is one namespace of the network.
type host struct {
	name string // h1, h2...
	ns   string
	addr string // on the switch
	port string // its interface on the switch side
	mac  string // of its eth0: fixed, so that neighbours can be told it
}

// subnet is every run's /24; each run lives in namespaces of its own, so
// two runs (or a run and a test) never meet.
const subnet = "10.78.0."

func newNetwork() (*network, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("scalebench creates network namespaces (ip netns) and needs root")
	}
	nw := &network{prefix: fmt.Sprintf("lsb%d-", os.Getpid())}
	nw.sw = nw.prefix + "sw"
	err := ipAll(
		[]string{"netns", "add", nw.sw},
		[]string{"-n", nw.sw, "link", "add", "br0", "type", "bridge"},
		[]string{"-n", nw.sw, "link", "set", "br0", "up"},
		// br1 holds the hosts split off from the rest (split).
		[]string{"-n", nw.sw, "link", "add", "br1", "type", "bridge"},
		[]string{"-n", nw.sw, "link", "set", "br1", "up"},
	)
	if err != nil {
		nw.remove()
		return nil, err
	}
	return nw, nil
}

// add creates one more host on the switch and tells it and every other
// host each other's hardware address (see neighbours).
func (nw *network) add() (*host, error) {
	h, err := nw.create()
	if err != nil {
		return nil, err
	}
	if err := neighbours(h, nw.hosts); err != nil {
		return nil, err
	}
	for _, o := range nw.hosts {
		if o != h {
			if err := neighbours(o, []*host{h}); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// addMany creates n hosts at once: the neighbour entries then take one
// ip command per host instead of one per pair.
func (nw *network) addMany(n int) error {
	for range n {
		if _, err := nw.create(); err != nil {
			return err
		}
	}
	for _, h := range nw.hosts {
		if err := neighbours(h, nw.hosts); err != nil {
			return err
		}
	}
	return nil
}

func (nw *network) create() (*host, error) {
	if len(nw.hosts) >= 250 {
		return nil, fmt.Errorf("at most 250 hosts on %s0/24", subnet)
	}
	n := len(nw.hosts) + 1
	i := strconv.Itoa(n)
	h := &host{name: "h" + i, ns: nw.prefix + "h" + i, addr: subnet + i, port: "p" + i,
		mac: fmt.Sprintf("02:00:0a:4e:00:%02x", n)}
	peer := "e" + i
	nw.hosts = append(nw.hosts, h)
	return h, ipAll(
		[]string{"netns", "add", h.ns},
		[]string{"-n", nw.sw, "link", "add", h.port, "type", "veth", "peer", "name", peer},
		[]string{"-n", nw.sw, "link", "set", peer, "netns", h.ns},
		[]string{"-n", h.ns, "link", "set", peer, "name", "eth0"},
		[]string{"-n", h.ns, "link", "set", "eth0", "address", h.mac},
		[]string{"-n", h.ns, "addr", "add", h.addr + "/24", "dev", "eth0"},
		[]string{"-n", h.ns, "link", "set", "eth0", "up"},
		[]string{"-n", h.ns, "link", "set", "lo", "up"},
		[]string{"-n", nw.sw, "link", "set", h.port, "master", "br0"},
		[]string{"-n", nw.sw, "link", "set", h.port, "up"},
	)
}

// neighbours gives h permanent ARP entries for others. The kernel keeps
// one ARP table for all namespaces, capped at gc_thresh3 (1,024 by
// default) entries that may be collected: 33 hosts that all talk to each
// other need 1,056, and past the cap new entries fail, so connections
// between hosts fail at random ("no route to host", SYNs lost for tens of
// seconds). Permanent entries are exempt from the cap, and raising it
// would change the machine's settings.
func neighbours(h *host, others []*host) error {
	var batch strings.Builder
	for _, o := range others {
		if o != h {
			fmt.Fprintf(&batch, "neigh replace %s lladdr %s dev eth0 nud permanent\n", o.addr, o.mac)
		}
	}
	cmd := exec.Command("ip", "-n", h.ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -n %s -batch (neighbours): %v: %s", h.ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// remove deletes every namespace (a host's link goes with it). The
// processes in them must have been stopped first.
func (nw *network) remove() {
	for _, h := range nw.hosts {
		_ = exec.Command("ip", "netns", "del", h.ns).Run()
	}
	_ = exec.Command("ip", "netns", "del", nw.sw).Run()
}

// split moves hosts to the second bridge: they reach each other, not the
// rest (a rack that lost its uplink). reunite moves them back.
func (nw *network) split(side []*host) error   { return nw.attach(side, "br1") }
func (nw *network) reunite(side []*host) error { return nw.attach(side, "br0") }

func (nw *network) attach(side []*host, bridge string) error {
	var cmds [][]string
	for _, h := range side {
		cmds = append(cmds, []string{"-n", nw.sw, "link", "set", h.port, "master", bridge})
	}
	return ipAll(cmds...)
}

func ipAll(cmds ...[]string) error {
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// sent is how many bytes the host has sent on its link to the switch:
// between nodes on different hosts that is gossip and memcached traffic
// (a node reaches its own memcached through the host's loopback).
func (h *host) sent() (int64, error) {
	out, err := exec.Command("ip", "-n", h.ns, "-s", "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		return 0, fmt.Errorf("ip -n %s -s link: %w", h.ns, err)
	}
	var links []struct {
		Stats struct {
			TX struct {
				Bytes int64 `json:"bytes"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -n %s -s link: %q: %v", h.ns, out, err)
	}
	return links[0].Stats.TX.Bytes, nil
}

// hostPort is the host's address with port.
func (h *host) hostPort(port int) string { return net.JoinHostPort(h.addr, strconv.Itoa(port)) }

// exec is the command line that runs bin inside the host: ip netns exec
// execs it, so the PID is bin's own and signals reach it directly.
func (h *host) exec(bin string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", h.ns, bin}, args...)
}

// dial connects from inside the host. A socket belongs to the namespace
// it was created in, so it is created on a thread moved into the host's
// namespace and moved back before the thread runs anything else. The
// thread must outlive the call: the children were started with
// Pdeathsig, which fires when the thread that forked one exits, and any
// thread may have forked one.
func (h *host) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer home.Close()
	ns, err := os.Open("/var/run/netns/" + h.ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter %s: %w", h.ns, err)
	}
	// While the goroutine waits for the connection, its locked thread
	// runs nothing else.
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) != nil {
		// Still in the host: let the thread die with the goroutine's
		// lock rather than run other goroutines there. Pdeathsig may
		// then stop a child: the run fails loudly, not wrongly.
		return c, err
	}
	runtime.UnlockOSThread()
	return c, err
}
