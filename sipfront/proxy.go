package sipfront

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/overload"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// proxy is proxy mode's front end: sipgo's transport and transaction
// layers on the sockets Start opened, one server and one client on the
// same user agent, so that requests this node forwards leave from (and
// their answers come back to) the listening port. REGISTER, auth and
// limits go to the core; forwarding is the proxy's own (proxy_*.go,
// fork.go, targets.go).
type proxy struct {
	core  *core.Core
	cfg   *Config
	log   *slog.Logger
	conns *connTable
	// response takes the responses no transaction matched (answers to
	// NAT keepalives); true: one of the server's own.
	response func(*sip.Response) bool

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	ls     listeners
	tls    net.Listener // ls.tls as TLS; nil without Config.TLSAddr
	// ws serves SIP over WebSocket (ws and wss); wsq hands its
	// connections to sipgo's TCP transport. Empty without WSAddr and
	// WSSAddr.
	ws  []*wsTransport
	wsq *connQueue
	// udpLocal is the UDP listening address, set as the local address of
	// requests sent over UDP so that they go out of the listening socket.
	udpLocal sip.Addr
	// rr is this node's Record-Route URI (the Path URI without ;ob).
	rr string

	// ctl is overload control (nil: off), judging each new REGISTER and
	// INVITE read over UDP as its handler starts, on its wait since it
	// reached the host (arrivals; proxy_wire.go).
	ctl      *overload.Controller
	arrivals *arrivals

	serving  sync.WaitGroup // the Serve loops
	handlers sync.WaitGroup // request handlers running
	closing  chan struct{}  // closed by close: handlers stop waiting
}

func newProxy(c *core.Core, cfg *Config, conns *connTable, response func(*sip.Response) bool) *proxy {
	return &proxy{core: c, cfg: cfg, log: cfg.Logger, conns: conns, response: response, closing: make(chan struct{}),
		ctl: newController(cfg.Overload, c, 0)} // proxy mode bounds no work in hand (sipgo runs its handlers)
}

// serve serves proxy mode on the listeners, ls.tls (if any) as SIP over
// TLS, ls.ws and ls.wss (if any) as SIP over WebSocket (proxy_wire.go).
func (p *proxy) serve(ls listeners) error {
	if err := p.newUA(ls); err != nil {
		return err
	}
	liftUDPBound.Do(func() { sip.UDPMTUSize = MaxMaxMessageSize + 200 })
	p.srv.OnRegister(p.guard(p.onRegister))
	p.srv.OnOptions(p.guard(p.onOptions))
	p.srv.OnAck(p.guard(p.onAck))
	p.srv.OnCancel(p.guard(p.onCancel))
	p.srv.OnInvite(p.guard(p.onRequest))
	p.srv.OnBye(p.guard(p.onRequest))
	p.srv.OnNoRoute(p.guard(p.onRequest))
	udp := &udpReader{UDPConn: ls.udp, p: p}
	if p.ctl != nil {
		if err := enableRxTime(ls.udp); err != nil {
			p.log.Warn("sip: no receive timestamps: overload control sees no UDP queueing", "err", err)
		} else {
			p.arrivals = newArrivals()
		}
	}
	p.run(func() error { return p.srv.ServeUDP(udp) })
	p.run(func() error { return p.srv.ServeTCP(&trackedListener{Listener: ls.tcp, p: p, transport: "tcp"}) })
	if ls.tls != nil {
		// sipgo's TLS transport is its TCP one on tls.Conns: connections
		// accepted here join its pool by remote address, so answers and
		// requests forwarded to a UA registered over TLS reuse them.
		p.tls = tls.NewListener(ls.tls, p.cfg.TLSConfig)
		p.run(func() error { return p.srv.ServeTLS(&trackedListener{Listener: p.tls, p: p, transport: "tls"}) })
	}
	for _, l := range []struct {
		ln   *net.TCPListener
		conf *tls.Config
	}{{ls.ws, nil}, {ls.wss, p.cfg.TLSConfig}} {
		if l.ln == nil {
			continue
		}
		if p.wsq == nil {
			// One queue for ws and wss: sipgo's pool keys connections
			// by remote address, which tells them apart.
			p.wsq = newConnQueue(l.ln.Addr())
			p.run(func() error { return p.srv.ServeTCP(p.wsq) })
		}
		t := newWSTransport(p.cfg, p.core, l.ln, l.conf, p.openWS)
		p.ws = append(p.ws, t)
		t.start()
	}
	return nil
}

// liftUDPBound raises sipgo's bound on a UDP request (1300 bytes, where
// RFC 3261 §18.1.1 has the sender switch to TCP instead of failing) once
// per process: branchRequest switches toward proxies itself, and a phone
// reached over UDP alone (its NAT flow) gets the datagram however large,
// as Kamailio sends it.
var liftUDPBound sync.Once

// run runs one of sipgo's Serve loops.
func (p *proxy) run(serve func() error) {
	p.serving.Add(1)
	go func() { defer p.serving.Done(); _ = serve() }()
}

// openWS is proxy mode's wsOpener: the connection becomes a flow in the
// connection table and a stream sipgo's TCP transport reads (wsStream);
// keep-alives are answered here and never reach it.
func (p *proxy) openWS(c *wsConn, src netip.AddrPort) (func([]byte, func()), func()) {
	ci := p.conns.add(src, c.t.proto)
	s := newWSStream(c, src, c.t.ln.Addr())
	if !p.wsq.push(s) {
		c.ws.CloseNow() // shutting down
	}
	deliver := func(data []byte, release func()) {
		defer release()
		if keepAlive, pong := streamKeepAlive(data); keepAlive {
			if pong {
				c.send(crlf, src)
			}
			return
		}
		m, err := streamFramed(data)
		if err != nil {
			p.core.Stats.ParseErrors.Add(1)
			p.log.Debug("sip: WebSocket message dropped", "remote", src, "err", err)
			return
		}
		s.feed(m)
	}
	done := func() {
		s.end()
		p.conns.remove(ci)
	}
	return deliver, done
}

// newUA makes the sipgo user agent, server and client; the client names
// this node by its advertised address in the Vias it adds.
func (p *proxy) newUA(ls listeners) error {
	log := p.log
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("locsvc"),
		sipgo.WithUserAgentParser(sizedParser(p.cfg)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(log),
			sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) {
				if !p.response(r) {
					log.Debug("sip: response matching no transaction dropped", "response", r.StartLine())
				}
			})),
	)
	if err != nil {
		return err
	}
	adv := p.cfg.Advertise
	if adv == "" {
		adv = ls.udp.LocalAddr().String()
	}
	advHost, advPortStr, _ := net.SplitHostPort(adv)
	advPort, _ := strconv.Atoi(advPortStr)
	if p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(log)); err != nil {
		ua.Close()
		return err
	}
	p.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname(advHost),
		sipgo.WithClientPort(advPort))
	if err != nil {
		ua.Close()
		return err
	}
	la := ls.udp.LocalAddr().(*net.UDPAddr)
	p.ua, p.ls, p.rr = ua, ls, p.core.Home()
	p.udpLocal = sip.Addr{IP: la.IP, Port: la.Port, Hostname: la.IP.String()}
	return nil
}

// close stops serving: the listeners first, then (after the handlers in
// hand had up to RequestTimeout to finish) the transaction and transport
// layers, which ends every transaction still open.
func (p *proxy) close() error {
	close(p.closing)
	err := p.ls.udp.Close()
	if e := p.ls.tcp.Close(); err == nil {
		err = e
	}
	if p.tls != nil {
		if e := p.tls.Close(); err == nil {
			err = e
		}
	}
	// WebSocket connections close with 1001 once the messages they handed
	// sipgo are read; the requests in hand then finish as the others do.
	for _, t := range p.ws {
		t.stopReading()
	}
	if p.wsq != nil {
		p.wsq.Close()
	}
	p.waitHandlers(p.cfg.RequestTimeout)
	if e := p.ua.Close(); err == nil {
		err = e
	}
	p.serving.Wait()
	p.waitHandlers(p.cfg.RequestTimeout)
	if err != nil && strings.Contains(err.Error(), "use of closed network connection") {
		err = nil
	}
	return err
}

func (p *proxy) waitHandlers(d time.Duration) { waitAtMost(&p.handlers, d) }

// waitAtMost waits for wg, for at most d: what is still running then is
// left to end on its own.
func waitAtMost(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
