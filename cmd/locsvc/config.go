package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/locsvc/locsvc/node"
)

// config is what `locsvc serve` runs with: the node's Config, and what
// only the command needs to build it (the log level, the TLS files). The
// flags and docs/config.md list the settings; node.DefaultConfig holds
// their defaults and node.Config.Validate their checks.
type config struct {
	node.Config
	LogLevel slog.Level
	Sec      security // TLS files (tls.go)
}

func serveFlags(cfg *config) (*flag.FlagSet, func() error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	d := node.DefaultConfig()
	cfg.Config = d
	lim := d.Limits
	var memcached, join, domains, trusted, logLevel, wsOrigins string
	var minExp, maxExp, defExp int
	fs.String(configFlag, "", "YAML file of serve flags, keyed by flag name; command-line flags and LOCSVC_ variables override it")
	fs.StringVar(&cfg.NodeID, "node-id", d.NodeID, "unique node name")
	fs.StringVar(&cfg.GRPC, "grpc", d.GRPC, "gRPC listen address")
	fs.StringVar(&cfg.HTTP, "http", d.HTTP, "HTTP listen address (health, readiness, status)")
	fs.StringVar(&cfg.SIP, "sip", d.SIP, "SIP listen address, UDP and TCP (empty: no SIP front end)")
	fs.StringVar(&cfg.SIPTLS, "sip-tls", d.SIPTLS, "SIP over TLS listen address (uses --tls-cert and --tls-key)")
	fs.StringVar(&cfg.SIPWS, "sip-ws", d.SIPWS, "SIP over WebSocket (RFC 7118) listen address, for browser phones; every --sip-mode")
	fs.StringVar(&cfg.SIPWSS, "sip-wss", d.SIPWSS, "SIP over secure WebSocket listen address (uses --tls-cert and --tls-key); every --sip-mode")
	fs.StringVar(&wsOrigins, "ws-origins", strings.Join(d.WSOrigins, ","), "comma-separated Origins a WebSocket upgrade may carry (e.g. https://phone.example.com); any other, or none, gets 403 (empty: any)")
	fs.StringVar(&cfg.SIPMode, "sip-mode", d.SIPMode, "SIP front end mode: "+strings.Join(node.SIPModes, ", "))
	fs.StringVar(&memcached, "memcached", "", "comma-separated memcached shard address(es) this node fronts (empty: embedded store)")
	fs.StringVar(&cfg.Gossip, "gossip", d.Gossip, "memberlist gossip bind address")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses of peers to join")
	fs.IntVar(&cfg.Replicas, "replicas", d.Replicas, "replication factor R")
	fs.StringVar(&domains, "domain", strings.Join(d.Domains, ","), "comma-separated SIP domain(s) served; the first is the digest realm")
	fs.StringVar(&trusted, "trusted", "", "comma-separated CIDRs whose SIP requests skip digest auth")
	fs.StringVar(&cfg.Credentials, "credentials", d.Credentials, "file of user:realm:HA1 lines; when set, digest auth is required")
	fs.BoolVar(&cfg.AllowOpen, "allow-open", d.AllowOpen, "serve SIP without auth on a non-loopback address")
	fs.StringVar(&cfg.APIToken, "api-token", d.APIToken, "file of bearer tokens, one a line (reloaded when it changes): every gRPC call and HTTP request but health, readiness and /metrics must carry one")
	fs.BoolVar(&cfg.APIAllowOpen, "api-allow-open", d.APIAllowOpen, "serve gRPC and HTTP on a non-loopback address without --api-token or client certificates")
	fs.BoolVar(&cfg.ProtectMetrics, "protect-metrics", d.ProtectMetrics, "with --api-token, /metrics asks for the token too")
	fs.IntVar(&minExp, "min-expires", int(lim.MinExpires/time.Second), "shortest registration granted, seconds; shorter gets 423")
	fs.IntVar(&maxExp, "max-expires", int(lim.MaxExpires/time.Second), "longest registration granted, seconds; longer is shortened")
	fs.IntVar(&defExp, "default-expires", int(lim.DefaultExpires/time.Second), "registration time when the REGISTER gives none, seconds")
	fs.IntVar(&lim.MaxContacts, "max-contacts", lim.MaxContacts, "contacts per AoR; more gets 403")
	fs.IntVar(&lim.MaxURILen, "max-uri-len", lim.MaxURILen, "longest AoR, contact or Path URI, bytes")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&cfg.Pprof, "pprof", d.Pprof, "serve Go's profiler under /debug/pprof/ on --http")
	fs.StringVar(&cfg.Advertise, "advertise", d.Advertise, "host peers and clients reach this node at: gossip, gRPC, HTTP and SIP are announced as it with their listeners' ports (needed with a wildcard listener)")
	fs.StringVar(&cfg.GossipAdvertise, "gossip-advertise", d.GossipAdvertise, "IP:port the gossip peers reach this node at (default: --advertise with the --gossip port, else --gossip)")
	fs.StringVar(&cfg.GRPCAdvertise, "grpc-advertise", d.GRPCAdvertise, "host:port announced for gRPC (default: --advertise with the --grpc port, else --grpc)")
	fs.StringVar(&cfg.HTTPAdvertise, "http-advertise", d.HTTPAdvertise, "host:port announced for HTTP (default: --advertise with the --http port, else --http)")
	fs.StringVar(&cfg.SIPAdvertise, "sip-advertise", d.SIPAdvertise, "host:port announced for SIP and named in the Path this node stores (default: --advertise with the --sip port, else --sip)")
	fs.StringVar(&cfg.NonceKeyFile, "nonce-key", d.NonceKeyFile, "file holding a secret (16+ bytes) that signs digest nonces; nodes of a farm share it")
	fs.StringVar(&cfg.FlowKeyFile, "flow-key", d.FlowKeyFile, "file holding a secret (16+ bytes) that signs flow tokens (RFC 5626) and seals temp-GRUUs (RFC 5627); nodes of a farm share it")
	fs.BoolVar(&cfg.SIPAuthAll, "sip-auth-all", d.SIPAuthAll, "with --credentials, also authenticate requests other than REGISTER (proxy mode: 407 Proxy-Authenticate)")
	fs.StringVar(&cfg.Locator, "locator", d.Locator, "grpc://host:port of a remote locsvc node: run only the SIP front end against that cluster")
	fs.StringVar(&cfg.Zone, "zone", d.Zone, "failure zone of this node's shards; replicas go to distinct zones when set")
	fs.StringVar(&cfg.GossipProfile, "gossip-profile", d.GossipProfile, "memberlist timing: local (fast failure detection), lan or wan")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key", d.GossipKeyFile, "file holding a base64 AES key (16, 24 or 32 bytes) that encrypts gossip")
	fs.StringVar(&cfg.GossipKeyring, "gossip-keyring", d.GossipKeyring, "file of base64 gossip keys, one a line; the first encrypts, all decrypt (key rotation)")
	fs.IntVar(&cfg.WriteQuorum, "write-quorum", d.WriteQuorum, "acknowledgements a write needs (0: a majority of --replicas)")
	fs.IntVar(&cfg.RepairRate, "repair-rate", d.RepairRate, "records per second that repair may examine (read on every replica, compare, copy where needed), per node")
	fs.DurationVar(&cfg.RestartGrace, "restart-grace", d.RestartGrace, "after SIGTERM (a restart), how long the other nodes keep this node's shards in placement before they take it as failed and move its keys (0: at once)")
	fs.BoolVar(&cfg.LeaveOnStop, "leave-on-stop", d.LeaveOnStop, "make SIGTERM leave the cluster for good, handing the records off first (as locsvc drain does), instead of a restart")
	fs.DurationVar(&cfg.MemcachedTimeout, "memcached-timeout", d.MemcachedTimeout, "timeout of each memcached call")
	fs.IntVar(&cfg.MemcachedConns, "memcached-conns", d.MemcachedConns, "connections to each memcached shard; concurrent requests' commands are pipelined over them")
	fs.IntVar(&cfg.SIPMaxMessage, "sip-max-message", d.SIPMaxMessage, "largest SIP message accepted, bytes; larger gets 513 (TCP: then the connection closes)")
	fs.IntVar(&cfg.SIPMaxConns, "sip-max-conns", d.SIPMaxConns, "open connections each SIP stream listener (TCP, TLS, WS, WSS) takes; more are refused")
	fs.DurationVar(&cfg.FlowTimer, "flow-timer", d.FlowTimer, "Flow-Timer of outbound registrations (RFC 5626): how long a flow may go without a keepalive, whole seconds (0: none)")
	fs.DurationVar(&cfg.NATPing, "nat-ping", d.NATPing, "ping each phone behind NAT this often from its home node, spread over the interval (0: off)")
	fs.StringVar(&cfg.NATPingMethod, "nat-ping-method", d.NATPingMethod, "NAT keepalive: options (an OPTIONS request) or crlf (4 bytes, no answer)")
	fs.IntVar(&cfg.NATPingMisses, "nat-ping-misses", d.NATPingMisses, "remove a phone, through every node, after this many unanswered OPTIONS in a row (0: never)")
	fs.DurationVar(&cfg.SIPRequestTimeout, "sip-request-timeout", d.SIPRequestTimeout, "time a SIP request may take from its arrival, store calls included; past it the answer is 503 (Retry-After)")
	fs.Float64Var(&cfg.RegisterRate, "register-rate", d.RegisterRate, "REGISTER requests per second allowed per source IP (IPv6: per /64), --trusted exempt; over it gets 503 (0: no limit)")
	fs.IntVar(&cfg.RegisterBurst, "register-burst", d.RegisterBurst, "REGISTER requests a source may send at once above --register-rate (0: twice the rate)")
	fs.DurationVar(&cfg.OverloadTarget, "overload-target", d.OverloadTarget, "overload control (UDP, every mode; see docs/limits.md): once a queue stands, new REGISTERs and INVITEs that waited longer than this get 503 (0: off)")
	fs.DurationVar(&cfg.OverloadInterval, "overload-interval", d.OverloadInterval, "overload control's window: a queue whose shortest wait over a whole window exceeds --overload-target is standing")
	fs.IntVar(&cfg.RetryAfterMin, "retry-after-min", d.RetryAfterMin, "shortest Retry-After of an overload 503, seconds; each refusal draws one in [min, max], shifted to the first second the node has room for the phone's return (docs/limits.md)")
	fs.IntVar(&cfg.RetryAfterMax, "retry-after-max", d.RetryAfterMax, "longest Retry-After of an overload 503 while the node has room for returns, seconds (an appointment further out gives more)")
	fs.BoolVar(&cfg.OverloadOC, "overload-oc", d.OverloadOC, "send RFC 7339 overload control parameters (loss algorithm) on the top Via to upstream proxies that announce oc")
	fs.IntVar(&lim.ExpiresJitter, "expires-jitter", lim.ExpiresJitter, "percent (0-90): each granted expiry e is drawn from [(1-PCT/100) e, e], so that phones registered together refresh apart")
	cfg.Sec.register(fs)

	finish := func() error {
		cfg.Memcached, cfg.Join, cfg.Domains = splitList(memcached), splitList(join), splitList(domains)
		cfg.WSOrigins = splitList(wsOrigins)
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

// validate checks the node's settings and the TLS files.
func (c *config) validate() error {
	nc := c.Config
	if c.Sec.ClientCAFile != "" && nc.ServerTLS == nil {
		// Validate judges the API's protection by the TLS configuration
		// that serve builds from the files once they are checked
		// (security.apply); until then this stands for it.
		nc.ServerTLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	}
	return joinErrs(nc.Validate(), c.Sec.validate(c))
}
