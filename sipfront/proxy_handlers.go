package sipfront

import (
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// The proxy's sipgo handlers, one per method class, and the one way they
// answer: respond, or reply for answers the node makes itself.

// guard counts a request, tracks its handler and puts it behind the
// core's one recovery (a panic is counted, logged with its stack, and
// answered 500 when still possible).
func (p *proxy) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		p.handlers.Add(1)
		defer p.handlers.Done()
		// The handlers edit the request (Via received/rport, Route), and
		// sipgo's server transaction reads it from a timer of its own (its
		// 100 Trying): each handler edits a copy.
		req = req.Clone()
		p.core.Stats.Request(string(req.Method))
		var answer func(*sip.Response)
		if tx != nil && req.Method != sip.ACK {
			answer = func(res *sip.Response) { p.respond(tx, res) }
		}
		defer p.core.Recover("in a proxy handler", req, answer)
		h(req, tx)
	}
}

// respond sends a response on the server transaction.
func (p *proxy) respond(tx sip.ServerTransaction, res *sip.Response) {
	p.core.Stats.Response(res.StatusCode)
	if err := tx.Respond(res); err != nil {
		p.log.Debug("sip: sending response failed", "code", res.StatusCode, "err", err)
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
// when the request was answered or cannot be. sipgo hands each request to
// its handler as soon as it is parsed, so the handler's start is its
// arrival.
func (p *proxy) prepare(req *sip.Request, tx sip.ServerTransaction) (in *core.Inbound, ok bool) {
	arrived := time.Now()
	via := core.TopVia(req)
	src, err := netip.ParseAddrPort(req.Source())
	if via == nil || err != nil {
		p.core.Stats.Dropped.Add(1)
		return nil, false
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	core.FixVia(via, src)
	in = &core.Inbound{Req: req, Src: src, Transport: strings.ToLower(req.Transport()), Arrived: arrived}
	if in.Transport != "udp" {
		// sipgo names a WebSocket stream TCP: the table knows better, and
		// which connection it is (the flow).
		if ci, ok := p.conns.get(src); ok {
			in.Transport, in.Conn = ci.transport, ci.id
		}
	}
	if req.Method == sip.ACK {
		return in, true
	}
	if res := p.core.Check(in); res != nil {
		p.reply(req, tx, res)
		return nil, false
	}
	if !p.admitted(in) {
		p.reply(req, tx, refusalOf(p.ctl, &p.core.Stats, shedLate, req))
		return nil, false
	}
	return in, true
}

// admitted is overload control's verdict on a new REGISTER or INVITE read
// over UDP, on its wait from reaching the host to its handler's start
// (in.Arrived). sipgo's server transactions answer retransmissions, so
// a refused request's are answered with its 503, and one taken never
// meets a refusal. Requests over streams, which TCP's flow control holds
// back, and every other request are taken.
func (p *proxy) admitted(in *core.Inbound) bool {
	if p.arrivals == nil || in.Transport != "udp" || !sheddable(in.Req) {
		return true
	}
	via := in.Req.Via()
	branch, _ := via.Params.Get("branch")
	at, ok := p.arrivals.at(branch)
	if !ok {
		return true
	}
	delay := max(0, in.Arrived.Sub(at))
	p.core.Stats.Queued(delay)
	return p.ctl.Admit(in.Arrived, delay, 0, callKey(in.Req))
}

// onRegister is the core's: sipgo's server transaction answers
// retransmissions, so each REGISTER is counted (and rate limited) once.
func (p *proxy) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	in, ok := p.prepare(req, tx)
	if !ok {
		return
	}
	if res := p.core.Quick(in); res != nil {
		p.respond(tx, res)
		return
	}
	ctx, cancel := p.core.Context(in)
	defer cancel()
	p.respond(tx, p.core.Serve(ctx, in))
}

// onOptions answers an OPTIONS for the server itself, and proxies one for
// a user.
func (p *proxy) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if req.Recipient.User == "" || core.IsZeroMaxForwards(req) ||
		(len(core.HeaderValues(req, "Route", "")) == 0 && p.isSelfURI(&req.Recipient)) {
		if _, ok := p.prepare(req, tx); ok {
			p.respond(tx, p.core.Options(req))
		}
		return
	}
	p.onRequest(req, tx)
}

// onCancel answers a CANCEL that matched no INVITE transaction (sipgo
// answers those that do, and reports them to the INVITE's handler).
func (p *proxy) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	if _, ok := p.prepare(req, tx); ok {
		p.respond(tx, core.NewResponse(req, 481, "Call/Transaction Does Not Exist"))
	}
}

// onAck forwards an ACK for a 2xx (one for a non-2xx answer of this node
// ends its server transaction inside sipgo and never gets here),
// statelessly, by its Route set.
func (p *proxy) onAck(req *sip.Request, tx sip.ServerTransaction) {
	in, ok := p.prepare(req, tx)
	if !ok {
		return
	}
	popped, flow := p.popOwnRoutes(req)
	if !popped {
		p.core.Stats.Dropped.Add(1) // not routed through this node: not relayed
		return
	}
	t := target{flow: flow}
	if flow == "" && len(routeSet(req)) == 0 && p.core.IsGRUU(&req.Recipient) {
		// The dialog's remote target is a GRUU: the instance's newest flow.
		ctx, cancel := p.core.Context(in)
		bs, refuse := p.core.InDialogBindings(ctx, in)
		cancel()
		if refuse != nil {
			p.log.Debug("sip: ACK to a GRUU that reaches nothing", "ruri", req.Recipient.String())
			return
		}
		t = targetsFor(bs, p.isSelf, p.homeGone(req))[0]
	}
	out, wire, err := p.branchRequest(req, t, false)
	if err != nil {
		p.log.Debug("sip: ACK not forwarded", "err", err)
		return
	}
	if err := p.client.WriteRequest(out, p.addVia(wire), p.localAddr); err != nil {
		p.log.Debug("sip: forwarding ACK failed", "dest", out.Destination(), "err", err)
	}
}

// onRequest proxies every request other than REGISTER, ACK and CANCEL
// (RFC 3261 §16): in-dialog requests and requests routed through this
// node by Route go to their next hop; a request for a user of a served
// domain is forked to the user's bindings.
func (p *proxy) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	in, ok := p.prepare(req, tx)
	if !ok {
		return
	}
	popped, flow := p.popOwnRoutes(req)
	remaining := len(core.HeaderValues(req, "Route", "")) > 0
	to := req.To()
	inDialog := to != nil && to.Params.Has("tag")
	// A request that came home by a flow token is on its way to the
	// phone: relayed, never looked up again. One inside a dialog is
	// relayed to its remote target, unless that is a GRUU of ours (RFC
	// 5627 §7), which is looked up like the first request was.
	inDialogGRUU := inDialog && popped && !remaining && flow == "" && p.core.IsGRUU(&req.Recipient)
	if !inDialogGRUU && (flow != "" || inDialog || remaining || !p.core.Served(req.Recipient.Host)) {
		p.relay(in, tx, popped, flow, remaining, inDialog)
		return
	}
	ctx, cancel := p.core.Context(in)
	var bindings []locsvc.Binding
	var refuse *sip.Response
	if inDialogGRUU {
		bindings, refuse = p.core.InDialogBindings(ctx, in)
	} else {
		bindings, refuse = p.core.Bindings(ctx, in, true)
	}
	cancel()
	if refuse != nil {
		p.reply(req, tx, refuse)
		return
	}
	p.fork(req, tx, forkGroups(targetsFor(bindings, p.isSelf, p.homeGone(req))), !inDialog, true)
}

// relay sends a request that is not for target determination here to its
// next hop, but only one routed through this node (popped) or from a
// trusted source: the node is no open relay. flow is the flow token the
// last Route of this node carried, when no Route is left.
func (p *proxy) relay(in *core.Inbound, tx sip.ServerTransaction, popped bool, flow string, remaining, inDialog bool) {
	req := in.Req
	if !popped && !p.core.Trusted(in.Src.Addr()) {
		if inDialog || remaining {
			p.reply(req, tx, core.NewResponse(req, 403, "Forbidden (Not Routed Through This Proxy)"))
		} else {
			p.reply(req, tx, core.NewResponse(req, 404, "Domain Not Served"))
		}
		return
	}
	t := target{flow: flow}
	if flow != "" {
		// Checked here, so that a forged or failed flow gets its own
		// answer rather than a branch's.
		if _, err := p.flowHop(flow); err != nil {
			p.reply(req, tx, flowRefusal(req, err))
			return
		}
	} else if !remaining && p.isSelfURI(&req.Recipient) {
		p.reply(req, tx, core.NewResponse(req, 482, "Loop Detected"))
		return
	}
	p.fork(req, tx, [][]target{{t}}, !inDialog, false)
}

// homeGone tells, for the bindings a request is forked to, whether their
// home node has left the farm (Config.Peers names another node their
// pinger); without Peers every home counts as there.
func (p *proxy) homeGone(req *sip.Request) func(node string) bool {
	aor, _, code, _ := p.core.AoROf(&req.Recipient, "Request")
	return func(node string) bool {
		return p.cfg.Peers != nil && node != "" && code == 0 && p.cfg.Peers.Pinger(aor, node) != node
	}
}
