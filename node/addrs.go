package node

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// A node names itself in four places: gossip metadata (its gRPC, HTTP
// and SIP addresses, read by every member's Status and status page), its
// gossip address, the Via and Path of SIP (sipfront), and its own Status.
// Each must be an address the reader can use: a listener on 0.0.0.0 or
// [::] names none, and a loopback one names the reader's own machine.

// service is one listener whose address the node announces.
type service struct {
	flag, advFlag string // "--grpc", "--grpc-advertise"
	listen, adv   string // their values
	ipOnly        bool   // memberlist announces an IP, never a name
}

// onRing reports whether the node is a gossip member.
func (c *Config) onRing() bool {
	return c.Locator == "" && (len(c.Memcached) > 0 || len(c.Join) > 0)
}

// services are the listeners the node announces: gossip on a ring, gRPC
// and HTTP unless it is a front end of a remote cluster (whose HTTP
// serves only health and metrics, announced nowhere), SIP when served.
func (c *Config) services() []service {
	var out []service
	if c.onRing() {
		out = append(out, service{"--gossip", "--gossip-advertise", c.Gossip, c.GossipAdvertise, true})
	}
	if c.Locator == "" {
		out = append(out, service{"--grpc", "--grpc-advertise", c.GRPC, c.GRPCAdvertise, false},
			service{"--http", "--http-advertise", c.HTTP, c.HTTPAdvertise, false})
	}
	if c.SIP != "" {
		out = append(out, service{"--sip", "--sip-advertise", c.SIP, c.SIPAdvertise, false})
	}
	return out
}

// advertiseAddr is the address peers reach a listener bound at bound
// at: adv when set, else host with bound's port when host is set, else
// bound itself.
func advertiseAddr(bound, adv, host string) string {
	if adv != "" {
		return adv
	}
	if host == "" {
		return bound
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// gossipAdvertise is what ring.Config.Advertise gets: "" lets memberlist
// announce its bind address.
func (c *Config) gossipAdvertise() string {
	if c.GossipAdvertise == "" && c.Advertise == "" {
		return ""
	}
	return advertiseAddr(c.Gossip, c.GossipAdvertise, c.Advertise)
}

// sipAdvertise is what sipfront.Config.Advertise gets: "" names the
// node by its bound --sip address.
func (c *Config) sipAdvertise() string {
	if c.SIP == "" || (c.SIPAdvertise == "" && c.Advertise == "") {
		return c.SIPAdvertise
	}
	return advertiseAddr(c.SIP, c.SIPAdvertise, c.Advertise)
}

// validateAdvertise checks the advertise flags and that every announced
// listener has an address others can use.
func (c *Config) validateAdvertise() []error {
	var errs []error
	if c.Advertise != "" {
		if err := checkAdvertiseHost(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("--advertise: %v", err))
		}
	}
	announced := make(map[string]bool)
	for _, s := range c.services() {
		announced[s.advFlag] = true
		if s.adv != "" {
			if err := checkAdvertiseAddr(s.adv, s.ipOnly); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", s.advFlag, err))
			}
			continue
		}
		host, port, err := net.SplitHostPort(s.listen)
		if err != nil {
			continue // the listener's own check names it
		}
		switch {
		case c.Advertise == "" && isWildcardHost(host):
			errs = append(errs, fmt.Errorf("%s %q listens on every address, which names none that peers can use: "+
				"set --advertise HOST (or %s HOST:PORT) to the address they reach this node at", s.flag, s.listen, s.advFlag))
		case c.Advertise != "" && port == "0" && s.flag == "--sip":
			// gRPC, HTTP and gossip are bound before they are announced;
			// SIP names itself before it binds.
			errs = append(errs, fmt.Errorf("--sip %q: port 0 cannot be advertised with --advertise; give the port, or --sip-advertise HOST:PORT", s.listen))
		case c.Advertise != "" && s.ipOnly && !isIP(c.Advertise):
			errs = append(errs, fmt.Errorf("--advertise %q: gossip announces an IP address, not a name; give an IP, or --gossip-advertise IP:PORT", c.Advertise))
		}
	}
	for _, f := range []struct{ flag, value string }{{"--gossip-advertise", c.GossipAdvertise},
		{"--grpc-advertise", c.GRPCAdvertise}, {"--http-advertise", c.HTTPAdvertise}, {"--sip-advertise", c.SIPAdvertise}} {
		if f.value != "" && !announced[f.flag] {
			errs = append(errs, fmt.Errorf("%s: this node does not announce that service (%s)", f.flag, notAnnounced[f.flag]))
		}
	}
	return append(errs, c.validateShardAddrs()...)
}

// notAnnounced says when a service is not announced.
var notAnnounced = map[string]string{
	"--gossip-advertise": "no gossip without --memcached or --join, nor with --locator",
	"--grpc-advertise":   "with --locator the node serves no gRPC of its own",
	"--http-advertise":   "with --locator the node's HTTP is announced nowhere",
	"--sip-advertise":    "no SIP front end without --sip",
}

// validateShardAddrs refuses shard addresses that only this machine can
// use on a node that gossips beyond it: every node dials every shard at
// the address its node announces, so 127.0.0.1:11211 would have each
// node talk to its own memcached under this node's shard id (and several
// such nodes would all announce the same shard).
func (c *Config) validateShardAddrs() []error {
	if !c.onRing() {
		return nil
	}
	gossip := advertiseAddr(c.Gossip, c.GossipAdvertise, c.Advertise)
	host, _, err := net.SplitHostPort(gossip)
	if err != nil || isLoopbackHost(host) {
		return nil
	}
	var errs []error
	for _, m := range c.Memcached {
		if h, _, err := net.SplitHostPort(m); err == nil && (isLoopbackHost(h) || isWildcardHost(h)) {
			errs = append(errs, fmt.Errorf("--memcached %q is not an address other machines can use, but this node gossips "+
				"beyond loopback (as %s): the other nodes would each dial their own machine for this shard; "+
				"give the address they reach this memcached at", m, gossip))
		}
	}
	return errs
}

// checkAdvertiseHost checks --advertise: a host peers can reach, without
// a port (each service brings its own).
func checkAdvertiseHost(h string) error {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return fmt.Errorf("%q has a port; --advertise takes a host (the ports are the listeners'; --grpc-advertise and the like take HOST:PORT)", h)
	}
	bare := strings.Trim(h, "[]")
	if isWildcardHost(bare) {
		return fmt.Errorf("%q names every address, not one peers can reach", h)
	}
	if isIP(bare) {
		return nil
	}
	for _, r := range bare {
		if !(r == '-' || r == '.' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return fmt.Errorf("%q is neither an IP address nor a host name", h)
		}
	}
	return nil
}

// checkAdvertiseAddr checks a per-service advertise flag: HOST:PORT that
// peers can use.
func checkAdvertiseAddr(a string, ipOnly bool) error {
	if err := checkHostPort(a); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(a)
	switch {
	case port == "0":
		return fmt.Errorf("%q: port 0 is no port peers can reach", a)
	case host == "" || isWildcardHost(host):
		return fmt.Errorf("%q names every address, not one peers can reach", a)
	case ipOnly && !isIP(host):
		return fmt.Errorf("%q: gossip announces an IP address, not a name", a)
	}
	return checkAdvertiseHost(host)
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// isWildcardHost: "" too, as net.Listen reads ":7070".
func isWildcardHost(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsUnspecified()
}
