package sipfront

import (
	"crypto/tls"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// proxy is proxy mode's front end: sipgo's transport and transaction
// layers on the sockets Start opened, one server and one client on the
// same user agent, so that requests this node forwards leave from (and
// their answers come back to) the listening port. REGISTER, auth and
// limits go to the core; forwarding is the proxy's own (proxy_*.go,
// fork.go, targets.go).
type proxy struct {
	core *core.Core
	cfg  *Config
	log  *slog.Logger

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	ls     listeners
	tls    net.Listener // ls.tls as TLS; nil without Config.TLSAddr
	// udpLocal is the UDP listening address, set as the local address of
	// requests sent over UDP so that they go out of the listening socket.
	udpLocal sip.Addr
	// rr is this node's Record-Route URI (the Path URI without ;ob).
	rr string

	serving  sync.WaitGroup // the Serve loops
	handlers sync.WaitGroup // request handlers running
	closing  chan struct{}  // closed by close: handlers stop waiting
}

func newProxy(c *core.Core, cfg *Config) *proxy {
	return &proxy{core: c, cfg: cfg, log: cfg.Logger, closing: make(chan struct{})}
}

// serve serves proxy mode on the listeners, ls.tls (if any) as SIP over
// TLS.
func (p *proxy) serve(ls listeners) error {
	if err := p.newUA(ls); err != nil {
		return err
	}
	p.srv.OnRegister(p.guard(p.onRegister))
	p.srv.OnOptions(p.guard(p.onOptions))
	p.srv.OnAck(p.guard(p.onAck))
	p.srv.OnCancel(p.guard(p.onCancel))
	p.srv.OnInvite(p.guard(p.onRequest))
	p.srv.OnBye(p.guard(p.onRequest))
	p.srv.OnNoRoute(p.guard(p.onRequest))
	p.serving.Add(2)
	go func() { defer p.serving.Done(); _ = p.srv.ServeUDP(ls.udp) }()
	go func() { defer p.serving.Done(); _ = p.srv.ServeTCP(ls.tcp) }()
	if ls.tls != nil {
		// sipgo's TLS transport is its TCP one on tls.Conns: connections
		// accepted here join its pool by remote address, so answers and
		// requests forwarded to a UA registered over TLS reuse them.
		p.tls = tls.NewListener(ls.tls, p.cfg.TLSConfig)
		p.serving.Add(1)
		go func() { defer p.serving.Done(); _ = p.srv.ServeTLS(p.tls) }()
	}
	return nil
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
				log.Debug("sip: response matching no transaction dropped", "response", r.StartLine())
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

func (p *proxy) waitHandlers(d time.Duration) {
	done := make(chan struct{})
	go func() { p.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
