package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/locsvc/locsvc/api/locsvcv1"
)

// Three hosts, each with its own memcached on the host's address and a
// node whose listeners are bound to wildcard addresses, told the host's
// address with --advertise. Every node reports every member's gossip,
// gRPC, HTTP and SIP address (over gRPC and HTTP) as that member's host
// address with the listener's port, and each shard at its host; a user
// registered through node 1 is found through node 3.
func TestHostsWildcardAdvertise(t *testing.T) {
	hs := StartHosts(t, 3)
	token := NewAPIToken()
	var nodes []*Node
	byID := map[string]*Host{}
	for i, h := range hs.List {
		m := h.StartMemcached(t)
		args := []string{"--memcached", m.Addr, "--advertise", h.Addr, "--replicas", "2", "--gossip-profile", "local",
			"--allow-open"} // SIP without digest auth on a test network of its own
		if i > 0 {
			args = append(args, "--join", nodes[0].Gossip)
		}
		id := fmt.Sprintf("node%d", i+1)
		byID[id] = h
		nodes = append(nodes, StartNode(t, NodeOptions{ID: id, Host: h, Wildcard: true, APIToken: token, Args: args}))
	}

	statusGRPC := func(n *Node) (*locsvcv1.StatusResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return n.Cluster.Status(ctx, &locsvcv1.StatusRequest{})
	}
	WaitFor(t, 30*time.Second, "3 alive members and 3 healthy shards on every node", func() bool {
		for _, n := range nodes {
			st, err := statusGRPC(n)
			if err != nil || len(st.Members) != 3 || len(st.Shards) != 3 {
				return false
			}
			for _, m := range st.Members {
				if !m.Alive {
					return false
				}
			}
			for _, s := range st.Shards {
				if !s.Healthy {
					return false
				}
			}
		}
		return true
	})

	statusHTTP := func(n *Node) (*locsvcv1.StatusResponse, error) {
		resp, err := n.HTTPClient.Get(n.HTTPBase + "/v1/status")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s %v: %s", resp.Status, err, body)
		}
		var st locsvcv1.StatusResponse
		return &st, protojson.Unmarshal(body, &st)
	}
	hostPort := func(h *Host, port int) string { return net.JoinHostPort(h.Addr, strconv.Itoa(port)) }
	for _, n := range nodes {
		for how, get := range map[string]func(*Node) (*locsvcv1.StatusResponse, error){"gRPC": statusGRPC, "HTTP": statusHTTP} {
			st, err := get(n)
			if err != nil {
				t.Fatalf("%s status of %s: %v", how, n.ID, err)
			}
			for _, m := range st.Members {
				h := byID[m.NodeId]
				want := []string{hostPort(h, defaultPorts.gossip), hostPort(h, defaultPorts.grpc),
					hostPort(h, defaultPorts.http), hostPort(h, defaultPorts.sip)}
				got := []string{m.GossipAddr, m.GrpcAddr, m.HttpAddr, m.SipAddr}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, over %s: member %s gossip/gRPC/HTTP/SIP %v, want %v", n.ID, how, m.NodeId, got, want)
				}
			}
			for _, s := range st.Shards {
				if h := byID[s.NodeId]; s.Addr != hostPort(h, 11211) {
					t.Errorf("%s, over %s: shard %s of %s not at its host %s", n.ID, how, s.Addr, s.NodeId, h.Addr)
				}
			}
		}
	}

	if failed := RegisterMany(t, nodes[0], 0, 20, 4); failed != 0 {
		t.Fatalf("%d of 20 registrations through node 1 failed", failed)
	}
	if missing := LookupMany(t, nodes[2], 0, 20, 4); missing != 0 {
		t.Fatalf("%d of 20 users registered through node 1 not found through node 3", missing)
	}
}

// A listener on every address without an advertised one, and a loopback
// shard on a node that gossips beyond loopback, are refused at start:
// exit status 2 and the flag to set named.
func TestServeRefusesUnadvertisedAddresses(t *testing.T) {
	port := func() string { return strconv.Itoa(FreePort(t)) }
	advertise := "--advertise HOST"
	serveRefused(t, []string{`--grpc "0.0.0.0:`, advertise, "--grpc-advertise HOST:PORT"},
		"--sip", "", "--grpc", "0.0.0.0:"+port(), "--api-allow-open")
	serveRefused(t, []string{`--http "[::]:`, advertise, "--http-advertise HOST:PORT"},
		"--sip", "", "--http", "[::]:"+port(), "--api-allow-open")
	serveRefused(t, []string{`--sip "0.0.0.0:`, advertise, "--sip-advertise HOST:PORT"},
		"--sip", "0.0.0.0:"+port(), "--allow-open")
	serveRefused(t, []string{`--gossip "0.0.0.0:`, advertise, "--gossip-advertise HOST:PORT"},
		"--sip", "", "--memcached", "127.0.0.1:"+port(), "--gossip", "0.0.0.0:"+port())
	serveRefused(t, []string{"--advertise: \"127.0.0.1:7070\" has a port"}, "--sip", "", "--advertise", "127.0.0.1:7070")

	// On a host of its own, so that the non-loopback gossip address is
	// one the node could bind.
	h := StartHosts(t, 1).List[0]
	mc := "127.0.0.1:" + port()
	p := h.Start(t, "locsvc loopback-shard", LocsvcBinary(t), nil, "serve", "--sip", "", "--memcached", mc,
		"--gossip", h.HostPort(defaultPorts.gossip))
	exited, err := p.Wait(30 * time.Second)
	if !exited {
		t.Fatalf("a node fronting %s and gossiping on %s started:\n%s", mc, h.Addr, p.Output())
	}
	var ee *exec.ExitError
	want := `--memcached "` + mc + `" is not an address other machines can use`
	if !asExit(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(p.Output(), want) ||
		!strings.Contains(p.Output(), "(as "+h.HostPort(defaultPorts.gossip)+")") {
		t.Errorf("err=%v, want exit 2 and %q:\n%s", err, want, p.Output())
	}
}
