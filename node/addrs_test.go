package node

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdvertiseAddr(t *testing.T) {
	for _, tc := range []struct{ bound, adv, host, want string }{
		{"127.0.0.1:7070", "", "", "127.0.0.1:7070"},
		{"[::]:7070", "", "", "[::]:7070"},
		{"[::]:7070", "", "10.0.0.1", "10.0.0.1:7070"},
		{"0.0.0.0:7070", "", "loc1.example.net", "loc1.example.net:7070"},
		{"[::]:7070", "", "2001:db8::1", "[2001:db8::1]:7070"},
		{"[::]:7070", "", "[2001:db8::1]", "[2001:db8::1]:7070"},
		{"[::]:7070", "203.0.113.5:443", "10.0.0.1", "203.0.113.5:443"},
		{"[::]:41234", "", "10.0.0.1", "10.0.0.1:41234"},
	} {
		if got := advertiseAddr(tc.bound, tc.adv, tc.host); got != tc.want {
			t.Errorf("advertiseAddr(%q, %q, %q) = %q, want %q", tc.bound, tc.adv, tc.host, got, tc.want)
		}
	}
}

// A cluster node's config on 10.0.0.1, protected by client certificates
// so that only the address rules are under test.
func ringConfig() Config {
	c := DefaultConfig()
	c.GRPC, c.HTTP, c.Gossip, c.SIP = "10.0.0.1:7070", "10.0.0.1:8080", "10.0.0.1:7946", "10.0.0.1:5060"
	c.Memcached, c.Join = []string{"10.0.0.1:11211"}, []string{"10.0.0.2:7946"}
	c.ServerTLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	return c
}

func TestValidateAdvertise(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want []string // substrings of the error; none: valid
	}{
		{"addresses of their own", func(*Config) {}, nil},
		{"wildcards with --advertise", func(c *Config) {
			c.GRPC, c.HTTP, c.Gossip, c.SIP, c.Advertise = "0.0.0.0:7070", "[::]:8080", "0.0.0.0:7946", "0.0.0.0:5060", "10.0.0.1"
		}, nil},
		{"wildcards with each its own", func(c *Config) {
			c.GRPC, c.HTTP, c.Gossip, c.SIP = ":7070", "[::]:8080", "0.0.0.0:7946", "0.0.0.0:5060"
			c.GRPCAdvertise, c.HTTPAdvertise, c.GossipAdvertise, c.SIPAdvertise = "a.example:7070", "a.example:80", "10.0.0.1:7946", "a.example:5060"
		}, nil},
		{"wildcard gRPC", func(c *Config) { c.GRPC = "0.0.0.0:7070" },
			[]string{`--grpc "0.0.0.0:7070" listens on every address`, "--advertise HOST (or --grpc-advertise HOST:PORT)"}},
		{"empty host HTTP", func(c *Config) { c.HTTP = ":8080" }, []string{`--http ":8080" listens on every address`}},
		{"wildcard gossip", func(c *Config) { c.Gossip = "[::]:7946" }, []string{`--gossip "[::]:7946"`, "--gossip-advertise"}},
		{"wildcard SIP", func(c *Config) { c.SIP = "0.0.0.0:5060" }, []string{`--sip "0.0.0.0:5060"`, "--sip-advertise"}},
		{"embedded node: gossip is not announced", func(c *Config) {
			c.Memcached, c.Join, c.Gossip, c.Advertise = nil, nil, "0.0.0.0:7946", ""
		}, nil},
		{"front end: only SIP is announced", func(c *Config) {
			c.Memcached, c.Join, c.Locator = nil, nil, "grpc://10.0.0.9:7070"
			c.GRPC, c.HTTP, c.Gossip = "0.0.0.0:7070", "0.0.0.0:8080", "0.0.0.0:7946"
		}, nil},
		{"advertise with a port", func(c *Config) { c.Advertise = "10.0.0.1:7070" }, []string{"--advertise: \"10.0.0.1:7070\" has a port"}},
		{"advertise wildcard", func(c *Config) { c.Advertise = "0.0.0.0" }, []string{"--advertise: \"0.0.0.0\" names every address"}},
		{"advertise junk", func(c *Config) { c.Advertise = "a b" }, []string{"--advertise: \"a b\" is neither"}},
		{"advertise a name on a ring", func(c *Config) { c.Advertise = "loc1.example.net" },
			[]string{`--advertise "loc1.example.net": gossip announces an IP`}},
		{"advertise a name, gossip its own IP", func(c *Config) { c.Advertise, c.GossipAdvertise = "loc1.example.net", "10.0.0.1:7946" }, nil},
		{"gossip-advertise a name", func(c *Config) { c.GossipAdvertise = "loc1.example.net:7946" }, []string{"--gossip-advertise: \"loc1.example.net:7946\": gossip announces an IP"}},
		{"grpc-advertise without port", func(c *Config) { c.GRPCAdvertise = "10.0.0.1" }, []string{"--grpc-advertise:"}},
		{"grpc-advertise port 0", func(c *Config) { c.GRPCAdvertise = "10.0.0.1:0" }, []string{"--grpc-advertise: \"10.0.0.1:0\": port 0"}},
		{"http-advertise wildcard", func(c *Config) { c.HTTPAdvertise = "[::]:8080" }, []string{"--http-advertise: \"[::]:8080\" names every address"}},
		{"sip port 0 with --advertise", func(c *Config) { c.SIP, c.Advertise = "0.0.0.0:0", "10.0.0.1" }, []string{`--sip "0.0.0.0:0": port 0`}},
		{"gossip-advertise off the ring", func(c *Config) { c.Memcached, c.Join, c.GossipAdvertise = nil, nil, "10.0.0.1:7946" },
			[]string{"--gossip-advertise: this node does not announce"}},
		{"sip-advertise without SIP", func(c *Config) { c.SIP, c.SIPAdvertise = "", "10.0.0.1:5060" },
			[]string{"--sip-advertise: this node does not announce that service (no SIP front end without --sip)"}},
		{"loopback shard, gossip beyond", func(c *Config) { c.Memcached = []string{"10.0.0.1:11211", "127.0.0.1:11212"} },
			[]string{`--memcached "127.0.0.1:11212" is not an address`, "(as 10.0.0.1:7946)"}},
		{"localhost shard, gossip advertised beyond", func(c *Config) {
			c.Gossip, c.Advertise, c.Memcached = "0.0.0.0:7946", "10.0.0.1", []string{"localhost:11211"}
		}, []string{`--memcached "localhost:11211"`, "(as 10.0.0.1:7946)"}},
		{"wildcard shard", func(c *Config) { c.Memcached = []string{"0.0.0.0:11211"} }, []string{`--memcached "0.0.0.0:11211"`}},
		{"loopback shard, loopback gossip", func(c *Config) {
			c.Gossip, c.Memcached, c.Join = "127.0.0.1:7946", []string{"127.0.0.1:11211"}, []string{"127.0.0.1:7947"}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ringConfig()
			tc.set(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// What the node announces and hands to the ring and the SIP front end.
func TestAdvertisedConfig(t *testing.T) {
	c := ringConfig()
	c.GRPC, c.Gossip, c.SIP, c.Advertise = "0.0.0.0:7070", "0.0.0.0:7946", "[::]:5060", "10.0.0.1"
	if got := c.gossipAdvertise(); got != "10.0.0.1:7946" {
		t.Errorf("gossip advertise %q", got)
	}
	if got := c.sipAdvertise(); got != "10.0.0.1:5060" {
		t.Errorf("sip advertise %q", got)
	}
	c.SIPAdvertise, c.GossipAdvertise = "198.51.100.7:5060", "198.51.100.7:17946"
	if c.sipAdvertise() != "198.51.100.7:5060" || c.gossipAdvertise() != "198.51.100.7:17946" {
		t.Errorf("own flags not taken: %q %q", c.sipAdvertise(), c.gossipAdvertise())
	}
	d := DefaultConfig()
	if d.gossipAdvertise() != "" || d.sipAdvertise() != "" {
		t.Errorf("defaults advertise %q %q; want the bound addresses (\"\")", d.gossipAdvertise(), d.sipAdvertise())
	}
}

func TestValidateAPI(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	if err := os.WriteFile(good, []byte("a-token-of-enough-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(c *Config) { c.GRPC, c.HTTP = "10.0.0.1:7070", "0.0.0.0:8080"; c.Advertise = "10.0.0.1" }
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want []string
	}{
		{"loopback", func(*Config) {}, nil},
		{"localhost and ::1", func(c *Config) { c.GRPC, c.HTTP = "localhost:7070", "[::1]:8080" }, nil},
		{"not loopback, unprotected", open, []string{
			`--grpc "10.0.0.1:7070" is not loopback`, `--http "0.0.0.0:8080" is not loopback`,
			"--api-token FILE", "--tls-client-ca", "--api-allow-open"}},
		{"only gRPC beyond loopback", func(c *Config) { c.GRPC, c.Advertise = "[::]:7070", "10.0.0.1" }, []string{`--grpc "[::]:7070"`}},
		{"token", func(c *Config) { open(c); c.APIToken = good }, nil},
		{"client certificates", func(c *Config) {
			open(c)
			c.ServerTLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
		}, nil},
		{"TLS without client certificates", func(c *Config) { open(c); c.ServerTLS = &tls.Config{} }, []string{"--grpc"}},
		{"allowed open", func(c *Config) { open(c); c.APIAllowOpen = true }, nil},
		{"front end of a remote cluster", func(c *Config) {
			c.Locator, c.HTTP, c.Advertise = "grpc://10.0.0.9:7070", "0.0.0.0:8080", "10.0.0.1"
		}, nil},
		{"missing token file", func(c *Config) { c.APIToken = filepath.Join(dir, "none") }, []string{"--api-token: open"}},
		{"bad token file", func(c *Config) { c.APIToken = bad }, []string{"--api-token: " + bad + ": line 1"}},
		{"protect-metrics without a token", func(c *Config) { c.ProtectMetrics = true }, []string{"--protect-metrics needs --api-token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
