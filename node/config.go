package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/ring"
	"github.com/locsvc/locsvc/sipfront"
)

// Config is everything one node runs with. DefaultConfig is the only place
// its defaults live: `locsvc serve` takes its flags' defaults from it, and
// the layers below keep only fallbacks for a zero value.
//
// Validate names each bad setting by its flag, which is also its key in a
// config file (docs/config.md), so that an error points at what to edit.
type Config struct {
	NodeID string // --node-id: unique in the cluster

	// Listen addresses. SIP empty: no SIP front end.
	GRPC, HTTP, SIP string
	SIPTLS          string // --sip-tls: SIP over TLS, beside SIP
	// SIP over WebSocket (RFC 7118), beside SIP, in every mode: --sip-ws
	// plain, --sip-wss over TLS (SIPTLSConfig).
	SIPWS, SIPWSS string
	// WSOrigins (--ws-origins) are the Origins a WebSocket upgrade may
	// carry; empty: any, or none.
	WSOrigins []string
	SIPMode   string // registrar, redirect or proxy

	// Advertised addresses: what peers and clients reach this node at,
	// as gossip announces them and Status reports them (addrs.go).
	// Advertise (--advertise) is a host: each service's address is it
	// with the port of the service's listener, unless the service's own
	// flag gives a host:port. A wildcard listener needs one or the other.
	Advertise       string
	GossipAdvertise string // --gossip-advertise
	GRPCAdvertise   string // --grpc-advertise
	HTTPAdvertise   string // --http-advertise
	SIPAdvertise    string // --sip-advertise: also the node's name in the Path it stores

	// API protection (apiauth.go): a gRPC or HTTP listener that is not
	// loopback needs a token file (APIToken, --api-token), client
	// certificates (ServerTLS requiring them: --tls-client-ca) or
	// APIAllowOpen (--api-allow-open). ProtectMetrics (--protect-metrics)
	// takes /metrics out of the routes served without a token.
	APIToken       string
	APIAllowOpen   bool
	ProtectMetrics bool

	// Storage: no Memcached and no Join is the embedded store.
	Memcached        []string // shards this node fronts
	Replicas         int      // R
	WriteQuorum      int      // W; 0 is a majority of R
	MemcachedTimeout time.Duration
	MemcachedConns   int
	RepairRate       int           // records a second a repair pass may examine
	RepairInterval   time.Duration // longest time between passes without a ring change
	// CountInterval is how often the node counts its records for
	// locsvc_aors and locsvc_bindings (node/counts.go).
	CountInterval time.Duration

	// Gossip.
	Gossip        string   // bind address
	Join          []string // peers
	Zone          string
	GossipProfile string // local, lan or wan
	GossipKeyFile string // one base64 key
	GossipKeyring string // a file of base64 keys, the first encrypts

	// Locator, when set (grpc://host:port), makes the node only a SIP
	// front end for that remote cluster: no store, no gRPC service.
	Locator string

	// SIP registrar policy and limits (docs/limits.md).
	Domains      []string // the first is the digest realm
	Trusted      []netip.Prefix
	Credentials  string // file of user:realm:HA1 lines
	NonceKeyFile string
	// FlowKeyFile (--flow-key) holds the secret that signs flow tokens
	// and seals temp-GRUUs; the nodes of a farm share it.
	FlowKeyFile   string
	AllowOpen     bool
	SIPAuthAll    bool
	Limits        locsvc.Limits
	SIPMaxMessage int
	// SIPMaxConns (--sip-max-conns) bounds the open connections of each
	// SIP stream listener (TCP, TLS, WS, WSS), each apart.
	SIPMaxConns int
	// SIPRequestTimeout bounds the work on one SIP request, counted from
	// its arrival: its store calls get the rest as their deadline.
	SIPRequestTimeout time.Duration
	// FlowTimer is the Flow-Timer of outbound registrations (RFC 5626):
	// how long a flow may go without a keepalive (0: none sent).
	FlowTimer time.Duration
	// NATPing (--nat-ping) is how often each phone behind NAT is pinged
	// from its home node (0: never); NATPingMethod (--nat-ping-method)
	// is options or crlf; NATPingMisses (--nat-ping-misses) removes a
	// phone after that many unanswered OPTIONS in a row (0: never).
	NATPing       time.Duration
	NATPingMethod string
	NATPingMisses int
	RegisterRate  float64
	RegisterBurst int
	// Overload control of new REGISTERs and INVITEs, in every SIP mode
	// (sipfront.Overload): --overload-target (0: off),
	// --overload-interval, --retry-after-min and --retry-after-max
	// (seconds), --overload-oc.
	OverloadTarget, OverloadInterval time.Duration
	RetryAfterMin, RetryAfterMax     int
	OverloadOC                       bool

	Pprof bool // serve Go's profiler on HTTP

	// DrainTimeout bounds in-flight calls at Stop; HandoffTimeout bounds
	// the hand-off pass.
	DrainTimeout, HandoffTimeout time.Duration

	// RestartGrace (--restart-grace) is how long the other nodes keep this
	// node's shards in placement after it stopped for a restart (SIGTERM)
	// before they take it as failed. LeaveOnStop (--leave-on-stop) makes
	// Stop leave the cluster for good instead, with the hand-off, as
	// `locsvc drain` does (docs/operations.md).
	RestartGrace time.Duration
	LeaveOnStop  bool

	// TLS, built by the caller from its certificate files (nil: plain).
	// ServerTLS serves gRPC and HTTP; SIPTLSConfig the SIPTLS and SIPWSS
	// listeners;
	// LocatorTLS dials Locator.
	ServerTLS, SIPTLSConfig, LocatorTLS *tls.Config
	// MemcachedTLS, when set (--memcached-tls-ca), makes every connection
	// to every memcached shard TLS, with the configuration it returns as
	// the connection opens: the caller re-reads renewed files behind it.
	MemcachedTLS func() *tls.Config

	Version string // reported by Status
}

// DefaultConfig is a node on the embedded store, serving on loopback.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeID: host,
		GRPC:   "127.0.0.1:7070", HTTP: "127.0.0.1:8080", SIP: "127.0.0.1:5060",
		SIPMode:           "redirect",
		Replicas:          2,
		MemcachedTimeout:  500 * time.Millisecond,
		MemcachedConns:    2,
		RepairRate:        5000,
		RepairInterval:    5 * time.Minute,
		CountInterval:     time.Minute,
		Gossip:            "127.0.0.1:7946",
		GossipProfile:     "lan",
		Domains:           []string{"localhost"},
		Limits:            locsvc.DefaultLimits(),
		SIPMaxMessage:     sipfront.DefaultMaxMessageSize,
		SIPMaxConns:       sipfront.DefaultMaxTCPConns,
		SIPRequestTimeout: 5 * time.Second,
		FlowTimer:         120 * time.Second,
		NATPingMethod:     sipfront.NATPingOptions,
		RegisterRate:      20,
		// A request answered within T1 (500 ms) is not retransmitted:
		// 20 ms of queueing leaves the rest for the store calls.
		OverloadTarget:   20 * time.Millisecond,
		OverloadInterval: 100 * time.Millisecond,
		RetryAfterMin:    1,
		RetryAfterMax:    4,
		DrainTimeout:     10 * time.Second,
		HandoffTimeout:   60 * time.Second,
		RestartGrace:     DefaultRestartGrace,
		Version:          "dev",
	}
}

// DefaultRestartGrace covers a restart with room to spare: a process or
// a binary upgrade takes seconds, a container rescheduled on the same
// machine (image pulled, volume attached) usually well under a minute.
// Keeping the shards placed longer costs little while their memcached
// runs, since every node reads and writes it directly; if it stopped too,
// the other nodes' probes mark it unhealthy within seconds whatever the
// grace. What a longer grace delays is only the move of a node that is
// gone for good without a drain.
const DefaultRestartGrace = 2 * time.Minute

// SIPModes are the values SIPMode may take.
var SIPModes = []string{"registrar", "redirect", "proxy"}

// GossipProfiles are the values GossipProfile may take.
var GossipProfiles = []string{"local", "lan", "wan"}

// MaxMemcachedConns bounds MemcachedConns: pipelining needs few, and every
// node opens this many to every shard.
const MaxMemcachedConns = 64

// Embedded reports whether the node serves from the embedded store.
func (c *Config) Embedded() bool {
	return c.Locator == "" && len(c.Memcached) == 0 && len(c.Join) == 0
}

// Validate reports every bad setting at once, each named by its flag.
func (c *Config) Validate() error {
	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", flag, err))
		}
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("--node-id: empty (and no host name to default to)"))
	}
	add("--grpc", checkHostPort(c.GRPC))
	add("--http", checkHostPort(c.HTTP))
	add("--gossip", checkHostPort(c.Gossip))
	if c.SIP != "" {
		add("--sip", checkHostPort(c.SIP))
	}
	if !slices.Contains(SIPModes, c.SIPMode) {
		errs = append(errs, fmt.Errorf("--sip-mode: %q is not one of %s", c.SIPMode, strings.Join(SIPModes, ", ")))
	}
	for _, m := range c.Memcached {
		add("--memcached", checkHostPort(m))
	}
	for _, j := range c.Join {
		add("--join", checkHostPort(j))
	}
	errs = append(errs, c.validateStore()...)
	errs = append(errs, c.validateGossip()...)
	errs = append(errs, c.validateLocator()...)
	errs = append(errs, c.validateSIP()...)
	errs = append(errs, c.validateAdvertise()...)
	errs = append(errs, c.validateAPI()...)
	return errors.Join(errs...)
}

func (c *Config) validateStore() []error {
	var errs []error
	if c.Replicas < 1 {
		errs = append(errs, fmt.Errorf("--replicas: must be at least 1, got %d", c.Replicas))
	}
	if c.WriteQuorum < 0 || c.WriteQuorum > c.Replicas {
		errs = append(errs, fmt.Errorf("--write-quorum: must lie between 0 and --replicas (%d), got %d", c.Replicas, c.WriteQuorum))
	}
	if c.RepairRate < 1 {
		errs = append(errs, fmt.Errorf("--repair-rate: must be at least 1, got %d", c.RepairRate))
	}
	if c.MemcachedTimeout <= 0 {
		errs = append(errs, errors.New("--memcached-timeout: must be positive"))
	}
	if c.MemcachedConns < 1 || c.MemcachedConns > MaxMemcachedConns {
		errs = append(errs, fmt.Errorf("--memcached-conns: must lie between 1 and %d, got %d", MaxMemcachedConns, c.MemcachedConns))
	}
	return errs
}

func (c *Config) validateGossip() []error {
	var errs []error
	if !slices.Contains(GossipProfiles, c.GossipProfile) {
		errs = append(errs, fmt.Errorf("--gossip-profile: %q is not local, lan or wan", c.GossipProfile))
	}
	if c.GossipKeyFile != "" && c.GossipKeyring != "" {
		errs = append(errs, errors.New("--gossip-key and --gossip-keyring are exclusive: put the key in the keyring file"))
	}
	if _, err := c.gossipKeys(); err != nil {
		errs = append(errs, err)
	}
	if c.RestartGrace < 0 || c.RestartGrace > ring.MaxRestartGrace {
		errs = append(errs, fmt.Errorf("--restart-grace: must lie between 0 (no grace: a restart counts as a failure) and %v, got %v", ring.MaxRestartGrace, c.RestartGrace))
	}
	return errs
}

func (c *Config) validateLocator() []error {
	if c.Locator == "" {
		return nil
	}
	var errs []error
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
	return errs
}

func (c *Config) validateSIP() []error {
	var errs []error
	if len(c.Domains) == 0 {
		errs = append(errs, errors.New("--domain: at least one domain is needed"))
	}
	if c.Credentials != "" {
		if _, err := os.Stat(c.Credentials); err != nil {
			errs = append(errs, fmt.Errorf("--credentials: %v", err))
		}
	}
	if c.SIPTLS != "" {
		if err := checkHostPort(c.SIPTLS); err != nil {
			errs = append(errs, fmt.Errorf("--sip-tls: %v", err))
		}
		if c.SIP == "" {
			errs = append(errs, errors.New("--sip-tls needs --sip: it adds a listener to the SIP front end"))
		}
	}
	errs = append(errs, c.validateWS()...)
	if err := sipfront.CheckMaxMessageSize(c.SIPMaxMessage); err != nil {
		errs = append(errs, fmt.Errorf("--sip-max-message: %w", err))
	}
	errs = append(errs, flagNamed(sipfront.CheckRegisterRate(c.RegisterRate, c.RegisterBurst))...)
	errs = append(errs, flagNamed(sipfront.CheckOverload(c.overload()))...)
	if c.FlowTimer != 0 && (c.FlowTimer < time.Second || c.FlowTimer%time.Second != 0) {
		errs = append(errs, fmt.Errorf("--flow-timer: 0 (none) or whole seconds, got %v", c.FlowTimer))
	}
	errs = append(errs, flagNamed(sipfront.CheckNATPing(c.natPing()))...)
	if c.NATPing > 0 && c.SIP == "" {
		errs = append(errs, errors.New("--nat-ping needs --sip: the keepalives leave from the SIP port"))
	}
	if c.SIPMaxConns < 1 {
		errs = append(errs, fmt.Errorf("--sip-max-conns: must be at least 1, got %d", c.SIPMaxConns))
	}
	if c.SIPRequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--sip-request-timeout: must be positive, got %v", c.SIPRequestTimeout))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// validateWS checks the WebSocket listeners.
func (c *Config) validateWS() []error {
	var errs []error
	for _, l := range []struct{ flag, addr string }{{"--sip-ws", c.SIPWS}, {"--sip-wss", c.SIPWSS}} {
		if l.addr == "" {
			continue
		}
		if err := checkHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", l.flag, err))
		}
		if c.SIP == "" {
			errs = append(errs, fmt.Errorf("%s needs --sip: it adds a listener to the SIP front end", l.flag))
		}
	}
	errs = append(errs, flagNamed(sipfront.CheckWebSocket(c.WSOrigins))...)
	if len(c.WSOrigins) > 0 && c.SIPWS == "" && c.SIPWSS == "" {
		errs = append(errs, errors.New("--ws-origins needs --sip-ws or --sip-wss"))
	}
	return errs
}

// sipFlags are the flags of the sipfront.Config fields whose checks
// sipfront owns.
var sipFlags = map[string]string{"RegisterRate": "--register-rate", "RegisterBurst": "--register-burst",
	"WSOrigins": "--ws-origins", "NATPingInterval": "--nat-ping", "NATPingMethod": "--nat-ping-method",
	"NATPingMisses": "--nat-ping-misses", "OverloadTarget": "--overload-target", "OverloadInterval": "--overload-interval",
	"RetryAfterMin": "--retry-after-min", "RetryAfterMax": "--retry-after-max"}

// overload is the front end's overload control setting.
func (c *Config) overload() sipfront.Overload {
	return sipfront.Overload{Target: c.OverloadTarget, Interval: c.OverloadInterval,
		RetryAfterMin: c.RetryAfterMin, RetryAfterMax: c.RetryAfterMax, OC: c.OverloadOC}
}

// natPing is the front end's NAT keepalive setting.
func (c *Config) natPing() sipfront.NATPing {
	return sipfront.NATPing{Interval: c.NATPing, Method: c.NATPingMethod, Misses: c.NATPingMisses}
}

// flagNamed renames sipfront's field errors by the node's flags.
func flagNamed(errs []error) []error {
	for i, err := range errs {
		var fe *sipfront.FieldError
		if errors.As(err, &fe) {
			errs[i] = fmt.Errorf("%s: %w", sipFlags[fe.Field], fe.Err)
		}
	}
	return errs
}

// checkHostPort reports whether addr is host:port with a valid port.
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
