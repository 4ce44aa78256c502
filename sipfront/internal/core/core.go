package core

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/flowtoken"
	"github.com/locsvc/locsvc/internal/gruu"
	"github.com/locsvc/locsvc/internal/sipuri"
)

// Modes of the front end.
const (
	ModeRegistrar = "registrar" // REGISTER only; other requests get 405
	ModeRedirect  = "redirect"  // registrar, plus 302 for other requests
	ModeProxy     = "proxy"     // registrar plus stateful proxy (sipgo's transaction layer)
)

// Config is what the core needs of sipfront.Config, already validated
// and with its defaults filled in: the front ends' socket settings stay
// out of it. Fields mean what sipfront.Config's of the same name do.
type Config struct {
	Mode string
	// Domains are the served domains, normalised (sipuri.NormalizeHost);
	// Realm is the first as the operator wrote it, since realms compare
	// case-sensitively.
	Domains []string
	Realm   string
	Trusted []netip.Prefix
	// Credentials, nil or empty, leaves digest auth off.
	Credentials    Credentials
	AuthAll        bool
	NonceKey       []byte // at least 16 bytes
	NonceLifetime  time.Duration
	Logger         *slog.Logger
	RequestTimeout time.Duration
	// FlowTimer, when positive, is sent as Flow-Timer (whole seconds) in
	// the 200 of every outbound registration (RFC 5626 §4.4.1, §6).
	FlowTimer time.Duration
	// Advertise is the host:port this node names itself by; "" takes the
	// listen address given to SetAddr.
	Advertise string
	// Flows signs the flow token of the Path entry proxy mode stores;
	// GRUUs seals temp-GRUUs (RFC 5627). Both from the farm's FlowKey.
	Flows *flowtoken.Signer
	GRUUs *gruu.Sealer
	// Registered, when set, is told of every REGISTER that bound
	// contacts, once it succeeded (front ends keep flows and NAT
	// keepalives from it). It runs on the request's goroutine: keep it
	// short.
	Registered    func(Registration)
	RegisterRate  float64 // 0: no limit
	RegisterBurst int
	Now           func() time.Time // nil: time.Now
}

// AuthEnabled reports whether the credential store holds anything to
// check.
func (c *Config) AuthEnabled() bool {
	return c.Credentials != nil && len(c.Credentials.Algorithms()) > 0
}

// Core answers SIP requests. It is safe for concurrent use once SetAddr
// has been called.
type Core struct {
	loc    Locator
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	nonces *nonces
	// register is nil when REGISTERs are not rate limited.
	registerRate *rateLimiter
	// Stats are the counters of the core and of every front end feeding
	// it, so that Stats is one snapshot whatever the mode.
	Stats Counters

	// Set by SetAddr before any request arrives.
	home string // this node's Path URI, without ;ob
	adv  string // host:port this node names itself by
	// ownHosts are this server's advertised and listen hosts, normalised;
	// ownAddrs the same as host:port.
	ownHosts []string
	ownAddrs []string
}

// rateLimitKeys bounds the per-source REGISTER buckets (about 100 bytes
// each): ample for the sources seen in the few seconds a bucket lives,
// and small enough that a spoofed-source flood costs little.
const rateLimitKeys = 65536

// New makes a core answering with loc.
func New(loc Locator, cfg Config) *Core {
	if cfg.Flows == nil || cfg.GRUUs == nil {
		// A core of its own (tests): a key of its own.
		key := make([]byte, 32)
		rand.Read(key)
		cfg.Flows, cfg.GRUUs = flowtoken.NewSigner(key), gruu.NewSealer(key)
	}
	c := &Core{loc: loc, cfg: cfg, log: cfg.Logger, now: cfg.Now}
	c.Stats.init()
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	clock := func() time.Time { return c.now() }
	c.nonces = &nonces{key: cfg.NonceKey, realm: cfg.Realm, lifetime: cfg.NonceLifetime, now: clock}
	if cfg.RegisterRate > 0 {
		c.registerRate = newRateLimiter(cfg.RegisterRate, cfg.RegisterBurst, rateLimitKeys, clock)
	}
	return c
}

// Clock is the core's time source, for front ends that keep state of
// their own (the retransmission table) on the same clock.
func (c *Core) Clock() time.Time { return c.now() }

// Logger is where the core logs.
func (c *Core) Logger() *slog.Logger { return c.log }

// SetAddr records the address listened on (host:port), and what follows
// from it: the Path entry this node stores, and the addresses that name
// it.
func (c *Core) SetAddr(addr string) {
	adv := c.cfg.Advertise
	if adv == "" {
		adv = addr
	}
	advHost, _, _ := net.SplitHostPort(adv)
	listenHost, _, _ := net.SplitHostPort(addr)
	c.ownHosts = []string{sipuri.NormalizeHost(advHost), sipuri.NormalizeHost(listenHost)}
	c.ownAddrs = nil
	for _, a := range []string{adv, addr} {
		h, p, _ := net.SplitHostPort(a)
		if p == "" {
			p = "5060"
		}
		c.ownAddrs = append(c.ownAddrs, net.JoinHostPort(sipuri.NormalizeHost(h), p))
	}
	c.adv = adv
	c.home = "sip:" + adv + ";lr"
}

// Home is this node's Path and Record-Route URI (without ;ob).
func (c *Core) Home() string { return c.home }

// OwnAddrs are the host:port pairs (normalised host, port defaulted to
// 5060) that name this node.
func (c *Core) OwnAddrs() []string { return c.ownAddrs }

// Inbound is one request as a front end hands it to the core: the parsed
// message and the facts about it that only the wire knows.
type Inbound struct {
	Req *sip.Request
	// Src is the source address, IPv4 unmapped.
	Src netip.AddrPort
	// Transport is what bindings record: "udp", "tcp", "tls" (and, with
	// a WebSocket front end, "ws" or "wss").
	Transport string
	// Conn is the serial of the connection the request came on (its
	// flow, RFC 5626), 0 over UDP.
	Conn uint64
	// Arrived is when the request was read off the wire: its deadline
	// and its answer time count from then, queueing included.
	Arrived time.Time
}

// Context is the request's context: its deadline is RequestTimeout after
// arrival, so that time spent queued for a handler counts against it and a
// UA's retransmission timers are what the budget tracks.
func (c *Core) Context(in *Inbound) (context.Context, context.CancelFunc) {
	arrived := in.Arrived
	if arrived.IsZero() {
		arrived = c.now()
	}
	return context.WithDeadline(context.Background(), arrived.Add(c.cfg.RequestTimeout))
}

// Check is what every request must pass before anything else looks at it
// (RFC 3261 §8.1.1, §8.2): nil, or the answer refusing it.
func (c *Core) Check(in *Inbound) *sip.Response {
	if code, reason := requestFault(in.Req); code != 0 {
		return NewResponse(in.Req, code, reason)
	}
	return nil
}

// Quick answers what needs no Locator call, on the front end's reading
// goroutine: a REGISTER over the rate limit, an OPTIONS for the server
// itself, a method the registrar does not serve. nil means the request
// needs Serve. Front ends with a retransmission table call it after the
// table, so that a retransmission is not counted against its source.
func (c *Core) Quick(in *Inbound) *sip.Response {
	req := in.Req
	switch req.Method {
	case sip.REGISTER:
		return c.registerLimited(req, in.Src.Addr())
	case sip.OPTIONS:
		if c.cfg.Mode == ModeRegistrar || req.Recipient.User == "" || IsZeroMaxForwards(req) {
			return c.Options(req)
		}
	default:
		if c.cfg.Mode == ModeRegistrar {
			return notAllowed(req)
		}
	}
	return nil
}

// Serve answers a request that passed Check and Quick: a REGISTER by the
// registrar, anything else by the redirect server (registrar mode: 405).
// Proxy mode calls it for REGISTER only; it forwards the rest itself.
func (c *Core) Serve(ctx context.Context, in *Inbound) *sip.Response {
	switch {
	case in.Req.Method == sip.REGISTER:
		return c.register(ctx, in)
	case c.cfg.Mode == ModeRegistrar:
		return notAllowed(in.Req)
	}
	return c.redirect(ctx, in)
}

// Recover is the one last-resort recovery of every front end, deferred
// directly (recover only works there) around the work done for a message.
// A panic is a bug: it is counted, logged with its stack and, when answer
// is not nil, req gets a 500 through it. answer decides whether a 500 can
// still go out (a final answer may have been sent already).
func (c *Core) Recover(where string, req *sip.Request, answer func(*sip.Response)) {
	r := recover()
	if r == nil {
		return
	}
	c.Stats.Panics.Add(1)
	method := ""
	if req != nil {
		method = string(req.Method)
	}
	c.log.Error("sip: panic "+where, "method", method, "panic", r, "stack", string(debug.Stack()))
	if answer == nil || req == nil {
		return
	}
	// A panic while answering must not escape the recovery.
	defer func() { _ = recover() }()
	answer(NewResponse(req, 500, "Server Internal Error"))
}

// IsZeroMaxForwards reports a request with Max-Forwards: 0.
func IsZeroMaxForwards(req *sip.Request) bool {
	mf := req.MaxForwards()
	return mf != nil && *mf == 0
}
