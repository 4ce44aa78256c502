package sipfront

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// timerC bounds how long an INVITE branch may ring (RFC 3261 §16.6 step 11
// asks for more than 3 minutes).
const timerC = 3*time.Minute + 10*time.Second

// proxy is proxy mode on the wire: sipgo's transport and transaction
// layers on the sockets Start opened, one server and one client on the
// same user agent, so that requests this node forwards leave from (and
// their answers come back to) the listening port.
type proxy struct {
	s      *Server
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	udp    *net.UDPConn
	tcp    *net.TCPListener
	tls    net.Listener // nil without Config.TLSAddr
	// udpLocal is the UDP listening address, set as the local address of
	// requests sent over UDP so that they go out of the listening socket.
	udpLocal sip.Addr
	// rr is this node's Record-Route URI (the Path URI without ;ob).
	rr string

	serving  sync.WaitGroup // the Serve loops
	handlers sync.WaitGroup // request handlers running
	closing  chan struct{}  // closed by close: handlers stop waiting
}

// startProxy serves proxy mode on udp and tcp (already listening), and on
// tlsLn (may be nil) as SIP over TLS.
func (s *Server) startProxy(udp *net.UDPConn, tcp *net.TCPListener, tlsLn *net.TCPListener) error {
	log := s.log
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("locsvc"),
		sipgo.WithUserAgentParser(s.sizedParser()),
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
	adv := s.cfg.Advertise
	if adv == "" {
		adv = s.addr
	}
	advHost, advPortStr, _ := net.SplitHostPort(adv)
	advPort, _ := strconv.Atoi(advPortStr)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return err
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname(advHost),
		sipgo.WithClientPort(advPort))
	if err != nil {
		ua.Close()
		return err
	}
	la := udp.LocalAddr().(*net.UDPAddr)
	p := &proxy{s: s, ua: ua, srv: srv, client: client, udp: udp, tcp: tcp,
		udpLocal: sip.Addr{IP: la.IP, Port: la.Port, Hostname: la.IP.String()},
		rr:       s.home, closing: make(chan struct{})}
	srv.OnRegister(p.guard(p.onRegister))
	srv.OnOptions(p.guard(p.onOptions))
	srv.OnAck(p.guard(p.onAck))
	srv.OnCancel(p.guard(p.onCancel))
	srv.OnInvite(p.guard(p.onRequest))
	srv.OnBye(p.guard(p.onRequest))
	srv.OnNoRoute(p.guard(p.onRequest))
	p.serving.Add(2)
	go func() { defer p.serving.Done(); _ = srv.ServeUDP(udp) }()
	go func() { defer p.serving.Done(); _ = srv.ServeTCP(tcp) }()
	if tlsLn != nil {
		// sipgo's TLS transport is its TCP one on tls.Conns: connections
		// accepted here join its pool by remote address, so answers and
		// requests forwarded to a UA registered over TLS reuse them.
		p.tls = tls.NewListener(tlsLn, s.cfg.TLSConfig)
		p.serving.Add(1)
		go func() { defer p.serving.Done(); _ = srv.ServeTLS(p.tls) }()
	}
	s.proxy = p
	return nil
}

// close stops serving: the listeners first, then (after the handlers in
// hand had up to RequestTimeout to finish) the transaction and transport
// layers, which ends every transaction still open.
func (p *proxy) close() error {
	close(p.closing)
	err := p.udp.Close()
	if e := p.tcp.Close(); err == nil {
		err = e
	}
	if p.tls != nil {
		if e := p.tls.Close(); err == nil {
			err = e
		}
	}
	p.waitHandlers(p.s.cfg.RequestTimeout)
	if e := p.ua.Close(); err == nil {
		err = e
	}
	p.serving.Wait()
	p.waitHandlers(p.s.cfg.RequestTimeout)
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

// guard counts a request, tracks its handler and recovers a panic in it
// (counted, logged with its stack, answered 500 when still possible).
func (p *proxy) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		p.handlers.Add(1)
		defer p.handlers.Done()
		p.s.stats.request(string(req.Method))
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			p.s.stats.panics.Add(1)
			p.s.log.Error("sip: handler panic", "method", req.Method, "panic", r, "stack", string(debug.Stack()))
			defer func() { _ = recover() }()
			if tx != nil && req.Method != sip.ACK {
				_ = tx.Respond(newResponse(req, 500, "Server Internal Error"))
			}
		}()
		h(req, tx)
	}
}

// respond sends a response on the server transaction.
func (p *proxy) respond(tx sip.ServerTransaction, res *sip.Response) {
	p.s.stats.response(res.StatusCode)
	if err := tx.Respond(res); err != nil {
		p.s.log.Debug("sip: sending response failed", "code", res.StatusCode, "err", err)
	}
}

// reply sends a response the node makes itself; for an INVITE's non-2xx
// final answer it also takes the ACK.
func (p *proxy) reply(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	if req.Method == sip.INVITE && res.StatusCode >= 300 {
		p.finalToInvite(tx, res)
		return
	}
	p.respond(tx, res)
}

// finalToInvite sends a non-2xx final answer to an INVITE and waits (a
// little) for the caller's ACK, which sipgo hands to whoever reads
// tx.Acks(): read here, it costs no goroutine; unread, sipgo parks one on
// it until Timer I (5 s over UDP).
func (p *proxy) finalToInvite(tx sip.ServerTransaction, res *sip.Response) {
	if res != nil {
		p.respond(tx, res)
	}
	t := time.NewTimer(ackWait)
	defer t.Stop()
	select {
	case <-tx.Acks():
	case <-tx.Done():
	case <-t.C:
	case <-p.closing:
	}
}

// ackWait bounds how long an INVITE handler waits for the ACK of its
// non-2xx answer (the ACK is retransmitted with the answer if lost).
const ackWait = 4 * time.Second

// prepare does what every request needs before it is handled: the top
// Via gets received/rport (the answer's destination, and the Via kept in
// forwarded requests), and a malformed request is answered. ok is false
// when the request was answered or cannot be.
func (p *proxy) prepare(req *sip.Request, tx sip.ServerTransaction) (src netip.AddrPort, transport string, ok bool) {
	via := topVia(req)
	src, err := netip.ParseAddrPort(req.Source())
	if via == nil || err != nil {
		p.s.stats.dropped.Add(1)
		return src, "", false
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	fixVia(via, src)
	if req.Method == sip.ACK {
		return src, strings.ToLower(req.Transport()), true
	}
	if code, reason := requestFault(req); code != 0 {
		p.reply(req, tx, newResponse(req, code, reason))
		return src, "", false
	}
	return src, strings.ToLower(req.Transport()), true
}

func (p *proxy) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	src, transport, ok := p.prepare(req, tx)
	if !ok {
		return
	}
	// sipgo's server transaction answers retransmissions, so each
	// REGISTER is counted once.
	if res := p.s.registerLimited(req, src.Addr()); res != nil {
		p.respond(tx, res)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.s.cfg.RequestTimeout)
	defer cancel()
	p.respond(tx, p.s.register(ctx, req, src, transport))
}

// onOptions answers an OPTIONS for the server itself, and proxies one for
// a user.
func (p *proxy) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if req.Recipient.User == "" || isZeroMaxForwards(req) || (len(headerValues(req, "Route", "")) == 0 && p.isSelfURI(&req.Recipient)) {
		if _, _, ok := p.prepare(req, tx); ok {
			p.respond(tx, p.s.optionsResponse(req))
		}
		return
	}
	p.onRequest(req, tx)
}

// onCancel answers a CANCEL that matched no INVITE transaction (sipgo
// answers those that do, and reports them to the INVITE's handler).
func (p *proxy) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	if _, _, ok := p.prepare(req, tx); ok {
		p.respond(tx, newResponse(req, 481, "Call/Transaction Does Not Exist"))
	}
}

// onAck forwards an ACK for a 2xx (one for a non-2xx answer of this node
// ends its server transaction inside sipgo and never gets here),
// statelessly, by its Route set.
func (p *proxy) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if _, _, ok := p.prepare(req, tx); !ok {
		return
	}
	popped, dst := p.popOwnRoutes(req)
	if !popped {
		p.s.stats.dropped.Add(1) // not routed through this node: not relayed
		return
	}
	out, err := p.branchRequest(req, target{dest: dst.addr, transport: dst.transport}, false)
	if err != nil {
		p.s.log.Debug("sip: ACK not forwarded", "err", err)
		return
	}
	if err := p.client.WriteRequest(out, sipgo.ClientRequestAddVia, p.localAddr); err != nil {
		p.s.log.Debug("sip: forwarding ACK failed", "dest", out.Destination(), "err", err)
	}
}

// hop is where a popped Route of this node said to go next.
type hop struct{ transport, addr string }

// popOwnRoutes removes the Route entries at the top that name this node
// (loose routing, RFC 3261 §16.4) and reports whether there were any; dst
// is the dstParam address of the last one popped, used when no Route is
// left.
func (p *proxy) popOwnRoutes(req *sip.Request) (popped bool, dst hop) {
	routes := routeSet(req)
	n := 0
	for n < len(routes) && p.isSelf(routes[n]) {
		if tp, a, ok := dstOf(routes[n]); ok {
			dst = hop{tp, a}
		} else {
			dst = hop{}
		}
		n++
	}
	if n == 0 {
		return false, hop{}
	}
	setRoutes(req, routes[n:])
	if len(routes) > n {
		dst = hop{}
	}
	return true, dst
}

// routeSet is the request's Route URIs, top first.
func routeSet(req *sip.Request) []string {
	var out []string
	for _, v := range headerValues(req, "Route", "") {
		elems, err := sipuri.ParseNameAddrs(v)
		if err != nil {
			continue
		}
		for _, e := range elems {
			if !e.Wildcard {
				out = append(out, e.URI)
			}
		}
	}
	return out
}

// setRoutes replaces the request's Route headers.
func setRoutes(req *sip.Request, routes []string) {
	for req.RemoveHeader("Route") {
	}
	for _, r := range routes {
		req.AppendHeader(sip.NewHeader("Route", "<"+r+">"))
	}
}

// isSelf reports whether a URI names this node (advertised or listen
// address; default port 5060).
func (p *proxy) isSelf(uri string) bool {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return false
	}
	return p.isSelfURI(&u)
}

func (p *proxy) isSelfURI(u *sip.Uri) bool {
	hp, _, err := hostPortOf(u)
	if err != nil {
		return false
	}
	host, port, _ := net.SplitHostPort(hp)
	host = normalizeHost(host)
	for _, own := range p.s.ownAddrs {
		oh, op, _ := net.SplitHostPort(own)
		if oh == host && op == port {
			return true
		}
	}
	return false
}

// onRequest proxies every request other than REGISTER, ACK and CANCEL
// (RFC 3261 §16): in-dialog requests and requests routed through this
// node by Route go to their next hop; a request for a user of a served
// domain is forked to the user's bindings.
func (p *proxy) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	src, _, ok := p.prepare(req, tx)
	if !ok {
		return
	}
	s := p.s
	popped, dst := p.popOwnRoutes(req)
	remaining := len(headerValues(req, "Route", "")) > 0
	to := req.To()
	inDialog := to != nil && to.Params.Has("tag")
	if inDialog || remaining || !s.served(req.Recipient.Host) {
		// Not for target determination here: relay to the next hop, but
		// only what was routed through this node (no open relay).
		if !popped && !s.trusted(src.Addr()) {
			if inDialog || remaining {
				p.reply(req, tx, newResponse(req, 403, "Forbidden (Not Routed Through This Proxy)"))
			} else {
				p.reply(req, tx, newResponse(req, 404, "Domain Not Served"))
			}
			return
		}
		t := target{dest: dst.addr, transport: dst.transport}
		if !remaining && dst.addr == "" && p.isSelfURI(&req.Recipient) {
			p.reply(req, tx, newResponse(req, 482, "Loop Detected"))
			return
		}
		p.fork(req, tx, [][]target{{t}}, !inDialog)
		return
	}
	if req.Recipient.User == "" {
		p.reply(req, tx, newResponse(req, 404, "Not Found"))
		return
	}
	aor, _, code, reason := s.aorOf(&req.Recipient, "Request")
	if code != 0 {
		p.reply(req, tx, newResponse(req, code, reason))
		return
	}
	if s.cfg.AuthAll {
		user, refuse := s.authenticate(req, src.Addr(), true)
		if refuse != nil {
			p.reply(req, tx, refuse)
			return
		}
		if user != "" && user != sipuri.UnescapeLax(req.From().Address.User) {
			p.reply(req, tx, newResponse(req, 403, "Username Does Not Match From"))
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	result, err := s.loc.Lookup(ctx, aor)
	cancel()
	if err != nil {
		p.reply(req, tx, s.locatorError(req, err))
		return
	}
	if len(result.Bindings) == 0 {
		p.reply(req, tx, noBinding(req, result))
		return
	}
	targets := make([]target, len(result.Bindings))
	for i := range result.Bindings {
		targets[i] = targetFor(&result.Bindings[i], p.isSelf)
	}
	p.fork(req, tx, forkGroups(targets), true)
}

// localAddr is a client request option: a request over UDP leaves from
// the listening socket, so that its answers come back to it.
func (p *proxy) localAddr(_ *sipgo.Client, r *sip.Request) error {
	if strings.EqualFold(r.Transport(), "udp") {
		r.Laddr = p.udpLocal
	}
	return nil
}

// branchRequest is the copy of req sent to t (RFC 3261 §16.6): new
// Request-URI, the target's Route set (or the request's own when the
// target has none and keeps the Request-URI), Max-Forwards decremented,
// this node's Record-Route on an initial request (two when the request
// changes transport), and the destination and transport set. The new top Via is added when it is sent.
func (p *proxy) branchRequest(req *sip.Request, t target, recordRoute bool) (*sip.Request, error) {
	out := req.Clone()
	out.SetBody(req.Body())
	if t.uri != "" {
		var u sip.Uri
		if err := sip.ParseUri(t.uri, &u); err != nil {
			return nil, fmt.Errorf("contact %q: %w", t.uri, err)
		}
		out.Recipient = u
		setRoutes(out, t.route)
	}
	if mf := out.MaxForwards(); mf != nil {
		mf.Dec()
	} else {
		m := sip.MaxForwardsHeader(69)
		out.AppendHeader(&m)
	}
	dest, transport := t.dest, t.transport
	if dest == "" {
		next := out.Recipient.String()
		if routes := routeSet(out); len(routes) > 0 {
			next = routes[0]
		}
		var err error
		if dest, transport, err = uriHostPort(next); err != nil {
			return nil, fmt.Errorf("next hop %q: %w", next, err)
		}
	}
	if transport == "" {
		transport = "udp"
	}
	if recordRoute {
		// One entry per side when the transports differ (double
		// record-routing, RFC 5658): the callee uses the top one, the
		// caller the bottom one, and popOwnRoutes removes both.
		in := strings.ToLower(req.Transport())
		out.PrependHeader(sip.NewHeader("Record-Route", p.recordRoute(in)))
		if in != transport {
			out.PrependHeader(sip.NewHeader("Record-Route", p.recordRoute(transport)))
		}
	}
	out.SetTransport(strings.ToUpper(transport))
	out.SetDestination(dest)
	return out, nil
}

// recordRoute is this node's Record-Route value for one transport.
func (p *proxy) recordRoute(transport string) string {
	if transport == "tcp" || transport == "tls" {
		return "<" + p.rr + ";transport=" + transport + ">"
	}
	return "<" + p.rr + ">"
}

// event is what a branch reports to the fork loop.
type event struct {
	b     *branch
	res   *sip.Response // nil when the branch ended without an answer
	err   error
	final bool
}

// branch is one client transaction of a forked request.
type branch struct {
	p   *proxy
	req *sip.Request
	tx  sip.ClientTransaction

	mu          sync.Mutex
	provisional bool // a 1xx came: a CANCEL may be sent
	cancelWant  bool
	cancelSent  bool
	done        bool
}

// start sends the branch and reports its responses on events until its
// final one, or until stop closes (the fork loop is gone; the goroutine
// still reads the transaction to its end so that a CANCEL can follow a
// late 1xx). It lives as long as the client transaction, no longer.
func (b *branch) start(events chan<- event, stop <-chan struct{}) error {
	ctx := context.Background()
	tx, err := b.p.client.TransactionRequest(ctx, b.req, sipgo.ClientRequestAddVia, b.p.localAddr)
	if err != nil {
		return err
	}
	b.tx = tx
	report := func(e event) {
		select {
		case events <- e:
		case <-stop:
		}
	}
	// The transaction is left to its timers after the final answer
	// (Timer D re-ACKs a retransmitted non-2xx, Timer M relays a
	// retransmitted 2xx): the goroutine need not wait for them.
	go func() {
		for {
			select {
			case res := <-tx.Responses():
				if res.IsProvisional() {
					b.gotProvisional()
					if res.StatusCode > 100 {
						report(event{b: b, res: res})
					}
					continue
				}
				b.finish()
				if res.IsSuccess() {
					// 2xx retransmissions go upstream statelessly.
					tx.OnRetransmission(func(r *sip.Response) { b.p.relayStateless(r) })
				}
				report(event{b: b, res: res, final: true})
				return
			case <-tx.Done():
				b.finish()
				report(event{b: b, err: tx.Err(), final: true})
				return
			}
		}
	}()
	return nil
}

func (b *branch) gotProvisional() {
	b.mu.Lock()
	b.provisional = true
	send := b.cancelWant && !b.cancelSent && !b.done
	b.cancelSent = b.cancelSent || send
	b.mu.Unlock()
	if send {
		b.sendCancel()
	}
}

func (b *branch) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// cancel stops a pending INVITE branch: CANCEL now if it got a 1xx, else
// when one comes (RFC 3261 §9.1); without any, Timer B ends it.
func (b *branch) cancel() {
	if b.req.Method != sip.INVITE {
		return
	}
	b.mu.Lock()
	b.cancelWant = true
	send := b.provisional && !b.cancelSent && !b.done
	b.cancelSent = b.cancelSent || send
	b.mu.Unlock()
	if send {
		b.sendCancel()
	}
}

// sendCancel sends a CANCEL for the branch's INVITE: same Request-URI,
// top Via, Route, Call-ID, From, To and CSeq number (RFC 3261 §9.1), and
// reads its transaction to the end on its own goroutine.
func (b *branch) sendCancel() {
	inv := b.req
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	sip.CopyHeaders("Route", inv, c)
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	tx, err := b.p.client.TransactionRequest(context.Background(), c, func(*sipgo.Client, *sip.Request) error { return nil })
	if err != nil {
		b.p.s.log.Debug("sip: sending CANCEL failed", "err", err)
		return
	}
	go func() {
		for {
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					return
				}
			case <-tx.Done():
				return
			}
		}
	}()
}

// upstream is a response from a branch as the caller gets it: without
// the Via this node added.
func upstream(res *sip.Response) *sip.Response {
	r := res.Clone()
	r.RemoveHeader("Via")
	// The clone keeps the address the response came from as its
	// destination: route it by the caller's Via instead.
	r.SetDestination("")
	if v := r.Via(); v != nil {
		r.SetTransport(strings.ToUpper(v.Transport))
	}
	return r
}

// relayStateless forwards a response outside any server transaction
// (a retransmitted 2xx), by its Via.
func (p *proxy) relayStateless(res *sip.Response) {
	if err := p.srv.WriteResponse(upstream(res)); err != nil {
		p.s.log.Debug("sip: relaying response failed", "err", err)
	}
}

// fork sends req to the targets, group by group (sequential forking by
// q, parallel within a group), relays provisional answers, and answers
// the caller (RFC 3261 §16.7): the first 2xx at once (the other branches
// are cancelled), else the best final once every branch has answered, a
// 6xx ending the search. A CANCEL from the caller (sipgo answers it 200
// and the INVITE 487) cancels every pending branch. recordRoute adds this
// node's Record-Route (initial requests).
func (p *proxy) fork(req *sip.Request, tx sip.ServerTransaction, groups [][]target, recordRoute bool) {
	events := make(chan event)
	stop := make(chan struct{})
	defer close(stop)
	canceled := make(chan struct{})
	if req.Method == sip.INVITE {
		var once sync.Once
		tx.OnCancel(func(*sip.Request) { once.Do(func() { close(canceled) }) })
	}
	var (
		started   []*branch
		finals    []*sip.Response
		codes     []int
		timeouts  int
		noTimerC  <-chan time.Time
		cancelAll = func() {
			for _, b := range started {
				b.cancel()
			}
		}
	)
	if req.Method == sip.INVITE {
		t := time.NewTimer(timerC)
		defer t.Stop()
		noTimerC = t.C
	}
	for _, group := range groups {
		live := 0
		for _, t := range group {
			out, err := p.branchRequest(req, t, recordRoute)
			if err == nil {
				b := &branch{p: p, req: out}
				if err = b.start(events, stop); err == nil {
					started = append(started, b)
					live++
					continue
				}
			}
			p.s.log.Debug("sip: branch not sent", "target", t.uri, "err", err)
		}
		for live > 0 {
			select {
			case e := <-events:
				if !e.final {
					p.respond(tx, upstream(e.res))
					continue
				}
				live--
				switch {
				case e.res != nil && e.res.IsSuccess():
					p.respond(tx, upstream(e.res))
					cancelAll()
					return
				case e.res != nil:
					finals = append(finals, e.res)
					codes = append(codes, e.res.StatusCode)
				case isTimeout(e.err):
					timeouts++
				}
			case <-canceled:
				// sipgo has answered 487: take its ACK.
				cancelAll()
				p.finalToInvite(tx, nil)
				return
			case <-noTimerC:
				cancelAll()
				p.finalToInvite(tx, newResponse(req, 408, "Request Timeout"))
				return
			}
		}
		if i := bestFinal(codes); i >= 0 && codes[i] >= 600 {
			break
		}
	}
	var res *sip.Response
	if i := bestFinal(codes); i >= 0 {
		res = upstream(finals[i])
		if res.StatusCode == 503 {
			// RFC 3261 §16.7 step 6: a 503 does not travel upstream.
			res.StatusCode, res.Reason = 500, "Server Internal Error"
		}
	} else {
		code, reason := noAnswerCode(timeouts)
		res = newResponse(req, code, reason)
	}
	if req.Method == sip.INVITE {
		p.finalToInvite(tx, res)
		return
	}
	p.respond(tx, res)
}
