package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront"
)

// config is what `locsvc serve` runs with; see DESIGN.md's command-line
// contract and README's flag table.
type config struct {
	NodeID      string
	GRPC        string
	HTTP        string
	SIP         string
	SIPMode     string
	Memcached   []string
	Gossip      string
	Join        []string
	Replicas    int
	Domains     []string
	Trusted     []netip.Prefix
	Credentials string
	AllowOpen   bool
	Limits      locsvc.Limits
	LogLevel    slog.Level

	SIPAdvertise     string
	NonceKeyFile     string
	SIPAuthAll       bool
	Pprof            bool
	Locator          string
	Zone             string
	GossipProfile    string
	GossipKeyFile    string
	WriteQuorum      int
	RepairRate       int
	MemcachedTimeout time.Duration
	MemcachedConns   int
	// SIP front-end limits (docs/limits.md).
	SIPMaxMessage int
	RegisterRate  float64
	RegisterBurst int

	Sec security // TLS and the gossip keyring (tls.go)
}

var sipModes = []string{"registrar", "redirect", "proxy"}

func serveFlags(cfg *config) (*flag.FlagSet, func() error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	host, _ := os.Hostname()
	lim := locsvc.DefaultLimits()
	var memcached, join, domains, trusted, logLevel string
	var minExp, maxExp, defExp int
	fs.String(configFlag, "", "YAML file of serve flags, keyed by flag name; command-line flags and LOCSVC_ variables override it")
	fs.StringVar(&cfg.NodeID, "node-id", host, "unique node name")
	fs.StringVar(&cfg.GRPC, "grpc", "127.0.0.1:7070", "gRPC listen address")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:8080", "HTTP listen address (health, readiness, status)")
	fs.StringVar(&cfg.SIP, "sip", "127.0.0.1:5060", "SIP listen address, UDP and TCP (empty: no SIP front end)")
	fs.StringVar(&cfg.SIPMode, "sip-mode", "redirect", "SIP front end mode: registrar, redirect or proxy")
	fs.StringVar(&memcached, "memcached", "", "comma-separated memcached shard address(es) this node fronts (empty: embedded store)")
	fs.StringVar(&cfg.Gossip, "gossip", "127.0.0.1:7946", "memberlist gossip bind address")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses of peers to join")
	fs.IntVar(&cfg.Replicas, "replicas", 2, "replication factor R")
	fs.StringVar(&domains, "domain", "localhost", "comma-separated SIP domain(s) served; the first is the digest realm")
	fs.StringVar(&trusted, "trusted", "", "comma-separated CIDRs whose SIP requests skip digest auth")
	fs.StringVar(&cfg.Credentials, "credentials", "", "file of user:realm:HA1 lines; when set, digest auth is required")
	fs.BoolVar(&cfg.AllowOpen, "allow-open", false, "serve SIP without auth on a non-loopback address")
	fs.IntVar(&minExp, "min-expires", int(lim.MinExpires/time.Second), "shortest registration granted, seconds; shorter gets 423")
	fs.IntVar(&maxExp, "max-expires", int(lim.MaxExpires/time.Second), "longest registration granted, seconds; longer is shortened")
	fs.IntVar(&defExp, "default-expires", int(lim.DefaultExpires/time.Second), "registration time when the REGISTER gives none, seconds")
	fs.IntVar(&lim.MaxContacts, "max-contacts", lim.MaxContacts, "contacts per AoR; more gets 403")
	fs.IntVar(&lim.MaxURILen, "max-uri-len", lim.MaxURILen, "longest AoR, contact or Path URI, bytes")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's profiler under /debug/pprof/ on --http")
	fs.StringVar(&cfg.SIPAdvertise, "sip-advertise", "", "host:port this node names itself by in the Path it stores (default: --sip)")
	fs.StringVar(&cfg.NonceKeyFile, "nonce-key", "", "file holding a secret (16+ bytes) that signs digest nonces; nodes of a farm share it")
	fs.BoolVar(&cfg.SIPAuthAll, "sip-auth-all", false, "with --credentials, also authenticate requests other than REGISTER (proxy mode: 407 Proxy-Authenticate)")
	fs.StringVar(&cfg.Locator, "locator", "", "grpc://host:port of a remote locsvc node: run only the SIP front end against that cluster")
	fs.StringVar(&cfg.Zone, "zone", "", "failure zone of this node's shards; replicas go to distinct zones when set")
	fs.StringVar(&cfg.GossipProfile, "gossip-profile", "lan", "memberlist timing: local (fast failure detection), lan or wan")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key", "", "file holding a base64 AES key (16, 24 or 32 bytes) that encrypts gossip")
	fs.IntVar(&cfg.WriteQuorum, "write-quorum", 0, "acknowledgements a write needs (0: a majority of --replicas)")
	fs.IntVar(&cfg.RepairRate, "repair-rate", 5000, "records per second that repair may examine (read on every replica, compare, copy where needed), per node")
	fs.DurationVar(&cfg.MemcachedTimeout, "memcached-timeout", 500*time.Millisecond, "timeout of each memcached call")
	fs.IntVar(&cfg.MemcachedConns, "memcached-conns", 2, "connections to each memcached shard; concurrent requests' commands are pipelined over them")
	fs.IntVar(&cfg.SIPMaxMessage, "sip-max-message", sipfront.DefaultMaxMessageSize, "largest SIP message accepted, bytes; larger gets 513 (TCP: then the connection closes)")
	fs.Float64Var(&cfg.RegisterRate, "register-rate", 20, "REGISTER requests per second allowed per source IP (IPv6: per /64), --trusted exempt; over it gets 503 (0: no limit)")
	fs.IntVar(&cfg.RegisterBurst, "register-burst", 0, "REGISTER requests a source may send at once above --register-rate (0: twice the rate)")
	cfg.Sec.register(fs)

	finish := func() error {
		cfg.Memcached, cfg.Join, cfg.Domains = splitList(memcached), splitList(join), splitList(domains)
		lim.MinExpires = time.Duration(minExp) * time.Second
		lim.MaxExpires = time.Duration(maxExp) * time.Second
		lim.DefaultExpires = time.Duration(defExp) * time.Second
		cfg.Limits = lim
		for _, c := range splitList(trusted) {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return fmt.Errorf("--trusted: %q is not a CIDR: %v", c, err)
			}
			cfg.Trusted = append(cfg.Trusted, p)
		}
		if err := cfg.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("--log-level: %v", err)
		}
		return cfg.validate()
	}
	return fs, finish
}

// maxMemcachedConns bounds --memcached-conns: pipelining needs few, and
// every node opens this many to every shard.
const maxMemcachedConns = 64

func (c *config) validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("--node-id: empty (and no host name to default to)"))
	}
	for name, addr := range map[string]string{"--grpc": c.GRPC, "--http": c.HTTP, "--gossip": c.Gossip} {
		if err := checkHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", name, err))
		}
	}
	if c.SIP != "" {
		if err := checkHostPort(c.SIP); err != nil {
			errs = append(errs, fmt.Errorf("--sip: %v", err))
		}
	}
	if !slices.Contains(sipModes, c.SIPMode) {
		errs = append(errs, fmt.Errorf("--sip-mode: %q is not one of %s", c.SIPMode, strings.Join(sipModes, ", ")))
	}
	for _, m := range c.Memcached {
		if err := checkHostPort(m); err != nil {
			errs = append(errs, fmt.Errorf("--memcached: %v", err))
		}
	}
	for _, j := range c.Join {
		if err := checkHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("--join: %v", err))
		}
	}
	if !slices.Contains([]string{"local", "lan", "wan"}, c.GossipProfile) {
		errs = append(errs, fmt.Errorf("--gossip-profile: %q is not local, lan or wan", c.GossipProfile))
	}
	if c.WriteQuorum < 0 || c.WriteQuorum > c.Replicas {
		errs = append(errs, fmt.Errorf("--write-quorum: must lie between 0 and --replicas (%d), got %d", c.Replicas, c.WriteQuorum))
	}
	if c.RepairRate < 1 {
		errs = append(errs, fmt.Errorf("--repair-rate: must be at least 1, got %d", c.RepairRate))
	}
	if c.MemcachedTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--memcached-timeout: must be positive"))
	}
	if c.MemcachedConns < 1 || c.MemcachedConns > maxMemcachedConns {
		errs = append(errs, fmt.Errorf("--memcached-conns: must lie between 1 and %d, got %d", maxMemcachedConns, c.MemcachedConns))
	}
	if c.Locator != "" {
		addr, ok := strings.CutPrefix(c.Locator, "grpc://")
		if err := checkHostPort(addr); !ok || err != nil {
			errs = append(errs, fmt.Errorf("--locator: want grpc://host:port, got %q", c.Locator))
		}
		if len(c.Memcached) > 0 || len(c.Join) > 0 {
			errs = append(errs, errors.New("--locator runs only the SIP front end: it excludes --memcached and --join"))
		}
		if c.SIP == "" {
			errs = append(errs, errors.New("--locator needs --sip: there is nothing else to serve"))
		}
	}
	if c.SIPAdvertise != "" {
		if err := checkHostPort(c.SIPAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("--sip-advertise: %v", err))
		}
	}
	if c.Replicas < 1 {
		errs = append(errs, fmt.Errorf("--replicas: must be at least 1, got %d", c.Replicas))
	}
	if len(c.Domains) == 0 {
		errs = append(errs, errors.New("--domain: at least one domain is needed"))
	}
	if c.Credentials != "" {
		if _, err := os.Stat(c.Credentials); err != nil {
			errs = append(errs, fmt.Errorf("--credentials: %v", err))
		}
	}
	errs = append(errs, c.Sec.validate(c)...)
	if c.SIPMaxMessage < sipfront.MinMaxMessageSize || c.SIPMaxMessage > sipfront.MaxMaxMessageSize {
		errs = append(errs, fmt.Errorf("--sip-max-message: must lie between %d and %d bytes, got %d",
			sipfront.MinMaxMessageSize, sipfront.MaxMaxMessageSize, c.SIPMaxMessage))
	}
	if c.RegisterRate < 0 || math.IsNaN(c.RegisterRate) || math.IsInf(c.RegisterRate, 0) {
		errs = append(errs, fmt.Errorf("--register-rate: must be 0 (no limit) or positive, got %v", c.RegisterRate))
	}
	if c.RegisterBurst < 0 {
		errs = append(errs, fmt.Errorf("--register-burst: must not be negative, got %d", c.RegisterBurst))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	return nil
}
