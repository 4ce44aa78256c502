package sipfront

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/locsvc/locsvc/internal/flowtoken"
	"github.com/locsvc/locsvc/internal/gruu"
	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Config sets up a Server. Zero values take the documented defaults.
type Config struct {
	// Addr is the UDP and TCP listen address, host:port. Port 0 picks a
	// free port; Server.Addr reports it.
	Addr string
	// TLSAddr, when set, adds a SIP over TLS listener (host:port; port 0
	// picks one, Server.TLSAddr reports it), served like TCP: answers go
	// back on the connection, bindings record transport "tls".
	// TLSConfig holds its certificate (Certificates or GetCertificate).
	TLSAddr   string
	TLSConfig *tls.Config
	// WSAddr and WSSAddr, when set, add SIP over WebSocket listeners
	// (RFC 7118; host:port, port 0 picks one, Server.WSAddr and
	// Server.WSSAddr report them): plain and over TLS (TLSConfig's
	// certificate). Bindings record transport "ws" or "wss". In proxy
	// mode calls reach the phones on the connection they registered
	// over. WebSocket connections are bounded by
	// MaxTCPConns and TCPIdleTimeout apart from TCP's.
	WSAddr, WSSAddr string
	// WSOrigins, when set, are the Origin header values a WebSocket
	// upgrade may carry (compared case-insensitively, e.g.
	// "https://phone.example.com"); any other, or none, gets 403. A
	// browser always sends Origin and cannot forge it, so this is what
	// keeps other web sites' pages off the registrar; clients that send
	// no Origin need the list empty. Empty: any Origin, or none.
	WSOrigins []string
	// Advertise is the host:port this node names itself by in the Path
	// entry it stores with each binding (calls go home). Default: the
	// listen address, which must then not be a wildcard (0.0.0.0, ::).
	Advertise string
	// Mode is ModeRegistrar, ModeRedirect (default) or ModeProxy.
	Mode string
	// Domains are the SIP domains served; the first is the digest realm.
	Domains []string
	// Trusted sources skip authentication (proxies in front).
	Trusted []netip.Prefix
	// Credentials turns digest authentication on. nil, or a store holding
	// no HA1 at all, leaves it off.
	Credentials Credentials
	// AuthAll also authenticates the requests the redirect server answers
	// or the proxy forwards by lookup (the proxy challenges with 407), not
	// only REGISTER.
	AuthAll bool
	// NonceKey signs nonces; nodes that share it accept each other's.
	// Empty: a random key per process. At least 16 bytes when set.
	NonceKey []byte
	// FlowKey signs the flow tokens this node puts in its Path entries
	// (RFC 5626 §5.2) and seals the temp-GRUUs it issues (RFC 5627); the
	// nodes of a farm share it, so that any of them opens a temp-GRUU and
	// a token stays valid across a restart. Empty: a random key per
	// process (a single node; its tokens and temp-GRUUs die with it). At
	// least 16 bytes when set.
	FlowKey []byte
	// NonceLifetime is how long a nonce is accepted (default 5 min).
	NonceLifetime time.Duration
	// AllowOpen lets a server without credentials listen on an address
	// that is not loopback.
	AllowOpen bool
	// Logger receives warnings and per-request debug logs
	// (default slog.Default()).
	Logger *slog.Logger

	// RequestTimeout bounds the handling of each request, counted from its
	// arrival (time queued for a handler included), and so each Locator
	// call (default 5 s).
	RequestTimeout time.Duration
	// FlowTimer, when at least a second, is the Flow-Timer (RFC 5626) the
	// 200 of an outbound registration carries: how long a flow may go
	// without a keepalive (0: no Flow-Timer).
	FlowTimer time.Duration
	// UDPReaders is the number of goroutines reading the UDP socket
	// (default GOMAXPROCS, at least 2).
	UDPReaders int
	// MaxInFlight bounds the requests being handled at once; readers wait
	// for a slot, so a saturated server pushes back on the socket
	// (default 4096). Registrar and redirect modes only.
	MaxInFlight int
	// MaxTCPConns bounds open TCP connections; more are closed at once
	// (default 8192).
	MaxTCPConns int
	// TCPIdleTimeout closes a TCP connection that sent nothing for this
	// long (default 10 min; keep-alives count).
	TCPIdleTimeout time.Duration
	// TxCacheSize bounds the table of recent REGISTER answers and INVITE
	// keys (default 65536 entries).
	TxCacheSize int
	// MaxMessageSize bounds a SIP message, bytes (default
	// DefaultMaxMessageSize; MinMaxMessageSize to MaxMaxMessageSize). A
	// larger request is answered 513 when it can be; over TCP the
	// connection is then closed. See docs/limits.md.
	MaxMessageSize int
	// RegisterRate is the REGISTER requests per second allowed per source
	// (IPv4 address, IPv6 /64); more get 503 with Retry-After. Trusted
	// sources are exempt. 0 (the default) sets no limit.
	RegisterRate float64
	// RegisterBurst is how many REGISTERs a source may send at once above
	// the rate (default twice RegisterRate, at least 1).
	RegisterBurst int
	// Overload is overload control of new REGISTERs and INVITEs
	// (overload.go), in every mode; a zero Target turns it off.
	Overload Overload
	// NATPing sends keepalives to the phones behind NAT registered here
	// (nat.go); off by default.
	NATPing NATPing
	// NodeID is this node's name as the bindings it accepts record it
	// (their home; locsvc.Service's node): NAT keepalives go to the
	// phones whose home it is. Needed with NATPing.
	NodeID string
	// Peers, when set, names the node that pings a phone whose home is
	// gone; nil: each node pings its own phones, and nobody those of a
	// node that is gone.
	Peers Peers

	now func() time.Time // tests set the clock
	// flows and gruus are FlowKey's, made by fillDefaults.
	flows *flowtoken.Signer
	gruus *gruu.Sealer
	// wsPing and wsPingTimeout replace wsPingInterval and wsPingTimeout
	// when set: tests do not wait 30 s for a dead peer.
	wsPing, wsPingTimeout time.Duration
	realm                 string // the first domain as given
}

const (
	defaultNonceLifetime  = 5 * time.Minute
	defaultRequestTimeout = 5 * time.Second
	defaultMaxInFlight    = 4096
	// DefaultMaxTCPConns is MaxTCPConns's default.
	DefaultMaxTCPConns = 8192
	defaultTCPIdle     = 10 * time.Minute
	defaultTxCacheSize = 65536
)

// Bounds of Config.MaxMessageSize. The default is twice the largest
// REGISTER the default location limits allow (16 contacts and 8 Path
// entries of 512-byte URIs, with their parameters and the usual headers:
// about 18 KiB), and leaves room for a proxied INVITE's large SDP; it
// halves what each TCP connection may make the server buffer compared
// with sipgo's 64 KiB. Below the minimum an ordinary REGISTER would not
// fit; above the maximum a UDP datagram cannot go.
const (
	DefaultMaxMessageSize = 32 << 10
	MinMaxMessageSize     = 1 << 10
	MaxMaxMessageSize     = 65535
)

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("sipfront: %w", err)
	}
	c.fillDefaults()
	return c, nil
}

// validate checks c, normalising Domains and recording the realm.
func (c *Config) validate() error {
	var errs []error
	if c.Mode == "" {
		c.Mode = ModeRedirect
	}
	switch c.Mode {
	case ModeRegistrar, ModeRedirect, ModeProxy:
	default:
		errs = append(errs, fmt.Errorf("mode %q is not %s, %s or %s", c.Mode, ModeRegistrar, ModeRedirect, ModeProxy))
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %v", c.Addr, err))
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("advertise %q: %v", c.Advertise, err))
		}
	} else if err == nil && isWildcardHost(host) {
		errs = append(errs, fmt.Errorf("addr %q listens on every address: set Advertise to the address peers reach this node at", c.Addr))
	}
	if c.TLSAddr != "" {
		if _, _, err := net.SplitHostPort(c.TLSAddr); err != nil {
			errs = append(errs, fmt.Errorf("TLS addr %q: %v", c.TLSAddr, err))
		}
		if c.TLSConfig == nil || (len(c.TLSConfig.Certificates) == 0 && c.TLSConfig.GetCertificate == nil) {
			errs = append(errs, errors.New("TLS addr set without a TLS certificate"))
		}
	}
	errs = append(errs, c.validateWS()...)
	var domains []string
	for _, d := range c.Domains {
		if n := sipuri.NormalizeHost(d); n != "" {
			if len(domains) == 0 {
				c.realm = strings.TrimSpace(d) // as given: realms compare case-sensitively
			}
			domains = append(domains, n)
		}
	}
	if len(domains) == 0 {
		errs = append(errs, errors.New("at least one domain is needed"))
	}
	c.Domains = domains
	if len(c.NonceKey) > 0 && len(c.NonceKey) < core.MinNonceKey {
		errs = append(errs, fmt.Errorf("nonce key has %d bytes, at least %d needed", len(c.NonceKey), core.MinNonceKey))
	}
	if len(c.FlowKey) > 0 && len(c.FlowKey) < core.MinNonceKey {
		errs = append(errs, &FieldError{Field: "FlowKey", Err: fmt.Errorf("has %d bytes, at least %d needed", len(c.FlowKey), core.MinNonceKey)})
	}
	if c.NonceLifetime < 0 || c.RequestTimeout < 0 || c.TCPIdleTimeout < 0 || c.FlowTimer < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.UDPReaders < 0 || c.MaxInFlight < 0 || c.MaxTCPConns < 0 || c.TxCacheSize < 0 {
		errs = append(errs, errors.New("sizes must not be negative"))
	}
	if c.MaxMessageSize != 0 {
		if err := CheckMaxMessageSize(c.MaxMessageSize); err != nil {
			errs = append(errs, fmt.Errorf("MaxMessageSize: %w", err))
		}
	}
	errs = append(errs, CheckRegisterRate(c.RegisterRate, c.RegisterBurst)...)
	errs = append(errs, CheckOverload(c.Overload)...)
	errs = append(errs, CheckNATPing(c.NATPing)...)
	if c.NATPing.Interval > 0 && c.NodeID == "" {
		errs = append(errs, errors.New("NATPing needs NodeID: the name bindings record as their home"))
	}
	return errors.Join(errs...)
}

// validateWS checks the WebSocket listeners' settings.
func (c *Config) validateWS() []error {
	var errs []error
	for _, l := range []struct{ name, addr string }{{"WS", c.WSAddr}, {"WSS", c.WSSAddr}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s addr %q: %v", l.name, l.addr, err))
		}
	}
	if c.WSSAddr != "" && (c.TLSConfig == nil || (len(c.TLSConfig.Certificates) == 0 && c.TLSConfig.GetCertificate == nil)) {
		errs = append(errs, errors.New("WSS addr set without a TLS certificate"))
	}
	return append(errs, CheckWebSocket(c.WSOrigins)...)
}

// CheckWebSocket reports what the WebSocket settings may not be, each
// error a *FieldError naming WSOrigins, so that a caller may name it its
// own way (the node names flags).
func CheckWebSocket(origins []string) []error {
	var errs []error
	for _, o := range origins {
		if strings.TrimSpace(o) == "" {
			errs = append(errs, &FieldError{Field: "WSOrigins", Err: errors.New("empty origin")})
		}
	}
	return errs
}

// CheckMaxMessageSize reports whether n bytes is a message size limit the
// front end accepts. Callers that name their settings otherwise (the
// node names flags) prefix the name; the rule lives only here.
func CheckMaxMessageSize(n int) error {
	if n < MinMaxMessageSize || n > MaxMaxMessageSize {
		return fmt.Errorf("must lie between %d and %d bytes, got %d", MinMaxMessageSize, MaxMaxMessageSize, n)
	}
	return nil
}

// CheckRegisterRate reports what is wrong with a per-source REGISTER
// rate and burst, each error prefixed with the field's name here
// (RegisterRate, RegisterBurst) as a *FieldError, so that a caller may
// name them its own way.
func CheckRegisterRate(rate float64, burst int) []error {
	var errs []error
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		errs = append(errs, &FieldError{Field: "RegisterRate", Err: fmt.Errorf("must be 0 (no limit) or positive, got %v", rate)})
	}
	if burst < 0 {
		errs = append(errs, &FieldError{Field: "RegisterBurst", Err: fmt.Errorf("must not be negative, got %d", burst)})
	}
	return errs
}

// Overload sets overload control: new REGISTERs and INVITEs that waited
// past what internal/overload allows get a 503 whose Retry-After, drawn
// from [RetryAfterMin, RetryAfterMax] seconds, is shifted to the phone's
// appointment (stateless, or in proxy mode through sipgo's transaction
// once the request was handed to it; in proxy mode UDP requests only).
type Overload struct {
	// Target is the queueing delay a standing queue is held to (0: no
	// overload control); Interval the window that tells a standing queue
	// from a burst.
	Target, Interval time.Duration
	// RetryAfterMin and RetryAfterMax bound the refusals' Retry-After,
	// in seconds.
	RetryAfterMin, RetryAfterMax int
	// OC adds RFC 7339's overload control parameters (loss algorithm) to
	// the top Via of answers to clients that announce support ("oc").
	OC bool
}

// CheckOverload reports what is wrong with o, each error a *FieldError
// naming its field (OverloadTarget, OverloadInterval, RetryAfterMin,
// RetryAfterMax).
func CheckOverload(o Overload) []error {
	if o.Target == 0 {
		return nil
	}
	var errs []error
	if o.Target < 0 || o.Target > time.Second {
		errs = append(errs, &FieldError{Field: "OverloadTarget", Err: fmt.Errorf("must lie between 0 (off) and 1s, got %v", o.Target)})
	}
	if o.Interval < o.Target || o.Interval > 10*time.Second {
		errs = append(errs, &FieldError{Field: "OverloadInterval",
			Err: fmt.Errorf("must lie between the target (%v) and 10s, got %v", o.Target, o.Interval)})
	}
	if o.RetryAfterMin < 1 {
		errs = append(errs, &FieldError{Field: "RetryAfterMin", Err: fmt.Errorf("must be at least 1 s, got %d", o.RetryAfterMin)})
	}
	if o.RetryAfterMax < o.RetryAfterMin || o.RetryAfterMax > 3600 {
		errs = append(errs, &FieldError{Field: "RetryAfterMax",
			Err: fmt.Errorf("must lie between the minimum (%d s) and 3600 s, got %d", o.RetryAfterMin, o.RetryAfterMax)})
	}
	return errs
}

// FieldError is a bad Config field: Field names it, Err says why.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// fillDefaults gives every zero field its default.
func (c *Config) fillDefaults() {
	if len(c.NonceKey) == 0 {
		c.NonceKey = make([]byte, 32)
		rand.Read(c.NonceKey)
	}
	if len(c.FlowKey) == 0 {
		c.FlowKey = make([]byte, 32)
		rand.Read(c.FlowKey)
	}
	c.flows, c.gruus = flowtoken.NewSigner(c.FlowKey), gruu.NewSealer(c.FlowKey)
	if c.NonceLifetime == 0 {
		c.NonceLifetime = defaultNonceLifetime
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.UDPReaders == 0 {
		c.UDPReaders = max(2, runtime.GOMAXPROCS(0))
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = defaultTCPIdle
	}
	if c.TxCacheSize == 0 {
		c.TxCacheSize = defaultTxCacheSize
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.NATPing.Method == "" {
		c.NATPing.Method = NATPingOptions
	}
	if c.RegisterRate > 0 && c.RegisterBurst == 0 {
		c.RegisterBurst = max(1, int(math.Ceil(2*c.RegisterRate)))
	}
}

// authEnabled reports whether the credential store holds anything to check.
func (c *Config) authEnabled() bool {
	cc := c.core()
	return cc.AuthEnabled()
}

// core is the part of the configuration the core needs.
func (c *Config) core() core.Config {
	return core.Config{
		Mode: c.Mode, Domains: c.Domains, Realm: c.realm, Trusted: c.Trusted,
		Credentials: c.Credentials, AuthAll: c.AuthAll,
		NonceKey: c.NonceKey, NonceLifetime: c.NonceLifetime,
		Logger: c.Logger, RequestTimeout: c.RequestTimeout, FlowTimer: c.FlowTimer, Advertise: c.Advertise,
		Flows: c.flows, GRUUs: c.gruus,
		RegisterRate: c.RegisterRate, RegisterBurst: c.RegisterBurst, Now: c.now,
	}
}

// checkProtected is Redis-style protected mode: without credentials only a
// loopback listener may run, unless the operator says otherwise.
func (c *Config) checkProtected() error {
	if c.authEnabled() || c.AllowOpen {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	// TLS encrypts but authenticates no client, and an Origin check keeps
	// only browsers in line: the same rule holds for every listener.
	for _, l := range []struct{ what, addr string }{{"SIP over TLS", c.TLSAddr}, {"SIP over WebSocket", c.WSAddr},
		{"SIP over secure WebSocket", c.WSSAddr}} {
		if h, _, _ := net.SplitHostPort(l.addr); l.addr != "" && !isLoopbackHost(h) {
			return fmt.Errorf("sipfront: refusing to serve %s on %q without authentication: "+
				"give credentials (digest auth), listen on loopback, or allow open serving explicitly (--allow-open)", l.what, l.addr)
		}
	}
	if isLoopbackHost(host) {
		c.Logger.Warn("SIP front end running without authentication (loopback only); set credentials to require digest auth",
			"addr", c.Addr)
		return nil
	}
	return fmt.Errorf("sipfront: refusing to serve SIP on %q without authentication: "+
		"give credentials (digest auth), listen on loopback, or allow open serving explicitly (--allow-open)", c.Addr)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

func isWildcardHost(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsUnspecified()
}
