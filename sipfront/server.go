package sipfront

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Server is the SIP front end: UDP and TCP listeners on one address, and
// optionally TLS and WebSocket listeners on others, put on the wire by one of two
// front ends (stateless.go for registrar and redirect modes, proxy*.go for
// proxy mode) around one transport-free core (internal/core).
type Server struct {
	cfg   Config
	log   *slog.Logger
	core  *core.Core
	front frontEnd
	conns *connTable
	flows *flowBindings
	nat   *natPinger // nil without Config.NATPing

	mu      sync.Mutex
	started bool
	closed  bool
	addr    string
	tlsAddr string
	wsAddr  string
	wssAddr string
}

// frontEnd puts the core on the wire. serve takes the sockets Start
// opened (already listening) and returns once it is serving them; close
// stops serving, lets requests in hand finish, and closes them.
type frontEnd interface {
	serve(ls listeners) error
	close() error
}

// listeners are the sockets a front end serves; tls, ws and wss are nil
// without Config.TLSAddr, WSAddr and WSSAddr.
type listeners struct {
	udp     *net.UDPConn
	tcp     *net.TCPListener
	tls     *net.TCPListener
	ws, wss *net.TCPListener
}

func (ls listeners) close() {
	ls.udp.Close()
	ls.tcp.Close()
	for _, l := range []*net.TCPListener{ls.tls, ls.ws, ls.wss} {
		if l != nil {
			l.Close()
		}
	}
}

// listenTCP opens one of the optional stream listeners; "" opens none.
func listenTCP(addr string) (*net.TCPListener, error) {
	if addr == "" {
		return nil, nil
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenTCP("tcp", ta)
}

// New checks cfg and prepares a server; Start listens.
func New(loc Locator, cfg Config) (*Server, error) {
	if loc == nil {
		return nil, errors.New("sipfront: nil Locator")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkProtected(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: newConnTable()}
	cc := cfg.core()
	cc.Registered = s.registered
	s.core = core.New(loc, cc)
	s.flows = newFlowBindings(loc, cfg.RequestTimeout, cfg.Logger, &s.core.Stats)
	s.conns.closed = s.flows.ended
	if cfg.NATPing.Interval > 0 {
		s.nat = newNATPinger(&s.cfg, loc, &s.core.Stats)
	}
	if cfg.Mode == ModeProxy {
		s.front = newProxy(s.core, &s.cfg, s.conns, s.response)
	} else {
		s.front = newStateless(s.core, &s.cfg, s.conns, s.response)
	}
	return s, nil
}

// udpReadBuffer is the UDP socket receive buffer asked for.
const udpReadBuffer = 4 << 20

// Start listens on UDP and TCP and returns once both are listening.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("sipfront: Start called twice or after Close")
	}
	udp, tcp, err := listenBoth(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("sipfront: listen %s: %w", s.cfg.Addr, err)
	}
	ls := listeners{udp: udp, tcp: tcp}
	for _, l := range []struct {
		name, addr string
		ln         **net.TCPListener
		bound      *string
	}{{"TLS", s.cfg.TLSAddr, &ls.tls, &s.tlsAddr}, {"WS", s.cfg.WSAddr, &ls.ws, &s.wsAddr}, {"WSS", s.cfg.WSSAddr, &ls.wss, &s.wssAddr}} {
		ln, err := listenTCP(l.addr)
		if err != nil {
			ls.close()
			return fmt.Errorf("sipfront: listen %s %s: %w", l.name, l.addr, err)
		}
		if ln != nil {
			*l.ln, *l.bound = ln, ln.Addr().String()
		}
	}
	s.addr = udp.LocalAddr().String()
	s.core.SetAddr(s.addr)
	if err := s.front.serve(ls); err != nil {
		ls.close()
		return fmt.Errorf("sipfront: %s: %w", s.cfg.Mode, err)
	}
	if s.nat != nil {
		via := s.cfg.Advertise
		if via == "" {
			via = s.addr
		}
		s.nat.start(udp, via)
	}
	// Only now: Close has nothing to stop on a front end that never
	// served.
	s.started = true
	s.log.Info("SIP front end listening", "addr", s.addr, "tls", s.tlsAddr, "ws", s.wsAddr, "wss", s.wssAddr, "mode", s.cfg.Mode, "domains", s.cfg.Domains,
		"auth", s.cfg.authEnabled(), "home", s.core.Home())
	return nil
}

// TLSAddr is the SIP over TLS address listened on, once started; "" when
// there is none.
func (s *Server) TLSAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsAddr
}

// WSAddr and WSSAddr are the SIP over WebSocket addresses listened on
// (plain and TLS), once started; "" when there is none.
func (s *Server) WSAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wsAddr
}

func (s *Server) WSSAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wssAddr
}

// listenBoth opens UDP and TCP on the same port. With port 0 the port UDP
// got may be taken for TCP: try again a few times.
func listenBoth(addr string) (*net.UDPConn, *net.TCPListener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	var lastErr error
	for range 20 {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		udp, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, nil, err
		}
		got := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		ta, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, got))
		if err == nil {
			var tcp *net.TCPListener
			if tcp, err = net.ListenTCP("tcp", ta); err == nil {
				// A burst overflows the kernel's default UDP buffer
				// (about 208 KiB) and every lost REGISTER comes back as a
				// retransmission 500 ms later; ask for more (the kernel
				// caps it at net.core.rmem_max). Best effort.
				_ = udp.SetReadBuffer(udpReadBuffer)
				return udp, tcp, nil
			}
		}
		udp.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, nil, lastErr
}

// Addr is the address the server listens on (host:port), once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops reading, lets the requests in hand finish and answer
// (each bounded by RequestTimeout), then closes the sockets. It may be
// called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	if s.nat != nil {
		s.nat.close()
	}
	err := s.front.close()
	// Connections closed with the front end: let the removal of their
	// flows' bindings reach the store.
	s.flows.wait(s.cfg.RequestTimeout)
	return err
}

// registered is told of each REGISTER that bound contacts.
func (s *Server) registered(r core.Registration) {
	s.flows.registered(r)
	if s.nat != nil {
		s.nat.registered(r)
	}
}

// response takes a response arriving at a front end that no transaction
// of its own waits for; it reports whether it was one of the server's
// (the answer to a NAT keepalive).
func (s *Server) response(res *sip.Response) bool {
	return s.nat != nil && s.nat.answered(res)
}

// NATCandidates offers bindings of aor found in the store (by a walk of
// shards, after a node left or this one restarted): the NATed ones this
// node should keep alive (Config.Peers names it their pinger) join its
// keepalives. A no-op without Config.NATPing.
func (s *Server) NATCandidates(aor string, bs []locsvc.Binding) {
	if s.nat != nil {
		s.nat.candidates(aor, bs)
	}
}

// NATPinging reports whether NAT keepalives are on.
func (s *Server) NATPinging() bool { return s.nat != nil }

// Stats returns the counters.
func (s *Server) Stats() Stats { return s.core.Stats.Snapshot() }
