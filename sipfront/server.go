package sipfront

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/workpool"
)

// Server is the SIP front end: UDP and TCP listeners on one address, and
// optionally a TLS listener on another.
type Server struct {
	loc    Locator
	cfg    Config
	log    *slog.Logger
	parser *sip.Parser
	nonces *nonces
	txs    *txCache
	limits limits // message size and REGISTER rate (limits.go)
	stats  counters
	now    func() time.Time

	// slots bounds the handlers running at once.
	slots chan struct{}
	// pool runs handlers on standing goroutines (nil until Start).
	pool     *workpool.Pool
	handlers sync.WaitGroup
	// inline runs handlers on the caller's goroutine (tests, fuzzing).
	inline bool

	mu      sync.Mutex
	started bool
	closed  bool
	addr    string
	home    string // this node's Path URI, without ;ob
	// ownHosts are this server's advertised and listen hosts, normalised;
	// ownAddrs the same as host:port.
	ownHosts []string
	ownAddrs []string
	proxy    *proxy // proxy mode's sipgo server; nil in other modes
	udp      *udpTransport
	tcp      *tcpTransport
	tls      *tcpTransport // nil without Config.TLSAddr
	tlsAddr  string
	stop     chan struct{}
	sweeper  sync.WaitGroup
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
	s := &Server{
		loc:    loc,
		cfg:    cfg,
		log:    cfg.Logger,
		parser: newParser(),
		now:    cfg.now,
		slots:  make(chan struct{}, cfg.MaxInFlight),
		stop:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.nonces = &nonces{key: cfg.NonceKey, realm: cfg.realm, lifetime: cfg.NonceLifetime, now: s.clock}
	s.txs = newTxCache(cfg.TxCacheSize, s.clock)
	s.initLimits()
	return s, nil
}

func (s *Server) clock() time.Time { return s.now() }

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
	var tlsLn *net.TCPListener
	if s.cfg.TLSAddr != "" {
		ta, err := net.ResolveTCPAddr("tcp", s.cfg.TLSAddr)
		if err == nil {
			tlsLn, err = net.ListenTCP("tcp", ta)
		}
		if err != nil {
			udp.Close()
			tcp.Close()
			return fmt.Errorf("sipfront: listen TLS %s: %w", s.cfg.TLSAddr, err)
		}
		s.tlsAddr = tlsLn.Addr().String()
	}
	s.started = true
	s.setAddr(udp.LocalAddr().String())

	if s.cfg.Mode == ModeProxy {
		if err := s.startProxy(udp, tcp, tlsLn); err != nil {
			udp.Close()
			tcp.Close()
			if tlsLn != nil {
				tlsLn.Close()
			}
			return fmt.Errorf("sipfront: proxy: %w", err)
		}
		s.log.Info("SIP front end listening", "addr", s.addr, "tls", s.tlsAddr, "mode", s.cfg.Mode, "domains", s.cfg.Domains,
			"auth", s.cfg.authEnabled(), "home", s.home)
		return nil
	}
	s.udp = newUDPTransport(s, udp)
	s.tcp = newTCPTransport(s, tcp)
	s.pool = workpool.New(handlerWorkers, s.stop)
	s.udp.start(s.cfg.UDPReaders)
	s.tcp.start()
	if tlsLn != nil {
		s.tls = newTLSTransport(s, tlsLn, s.cfg.TLSConfig)
		s.tls.start()
	}
	s.sweeper.Add(1)
	go s.sweepLoop()
	s.log.Info("SIP front end listening", "addr", s.addr, "tls", s.tlsAddr, "mode", s.cfg.Mode, "domains", s.cfg.Domains,
		"auth", s.cfg.authEnabled(), "home", s.home)
	return nil
}

// TLSAddr is the SIP over TLS address listened on, once started; "" when
// there is none.
func (s *Server) TLSAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsAddr
}

// setAddr records the address listened on, and what follows from it.
func (s *Server) setAddr(addr string) {
	s.addr = addr
	adv := s.cfg.Advertise
	if adv == "" {
		adv = addr
	}
	advHost, _, _ := net.SplitHostPort(adv)
	listenHost, _, _ := net.SplitHostPort(addr)
	s.ownHosts = []string{normalizeHost(advHost), normalizeHost(listenHost)}
	s.ownAddrs = nil
	for _, a := range []string{adv, addr} {
		h, p, _ := net.SplitHostPort(a)
		if p == "" {
			p = "5060"
		}
		s.ownAddrs = append(s.ownAddrs, net.JoinHostPort(normalizeHost(h), p))
	}
	s.home = "sip:" + adv + ";lr"
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
	if s.proxy != nil {
		return s.proxy.close()
	}
	s.udp.stopReading()
	s.tcp.stopReading()
	if s.tls != nil {
		s.tls.stopReading()
	}
	s.handlers.Wait()
	close(s.stop)
	s.sweeper.Wait()
	return errors.Join(s.udp.close(), s.tcp.close())
}

// Stats returns the counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

func (s *Server) sweepLoop() {
	defer s.sweeper.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.txs.sweep()
		}
	}
}

// dispatch runs f on a handler goroutine once a slot is free.
func (s *Server) dispatch(f func()) {
	if s.inline {
		f()
		return
	}
	s.slots <- struct{}{}
	s.handlers.Add(1)
	run := func() {
		defer func() {
			<-s.slots
			s.handlers.Done()
		}()
		f()
	}
	if s.pool == nil {
		go run()
		return
	}
	s.pool.Run(run)
}

// handlerWorkers is how many handler goroutines stand ready; more run on
// goroutines of their own while a burst lasts.
const handlerWorkers = 128
