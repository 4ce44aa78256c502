package sipfront

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/flowtoken"
	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/locsvc"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Route and Record-Route surgery (RFC 3261 §16.4, §16.6, RFC 5658): which
// Route entries name this node, and the copy of a request each branch
// sends.

// hop is where a flow token said to go next.
type hop struct{ transport, addr string }

// popOwnRoutes removes the Route entries at the top that name this node
// (loose routing, RFC 3261 §16.4) and reports whether there were any.
// flow is the user part of the last one popped when no Route is left: the
// flow token of this node's Path entry, carried by a request that came
// home to reach a phone ("" when there is none).
func (p *proxy) popOwnRoutes(req *sip.Request) (popped bool, flow string) {
	routes := routeSet(req)
	n := 0
	for n < len(routes) && p.isSelf(routes[n]) {
		n++
	}
	if n == 0 {
		return false, ""
	}
	setRoutes(req, routes[n:])
	if len(routes) > n {
		return true, ""
	}
	return true, userOf(routes[n-1])
}

// errFlowFailed is a flow token naming a connection that has closed: RFC
// 5626 §5.3's 430 (Flow Failed).
var errFlowFailed = errors.New("flow failed")

// flowHop is where the flow token tok says to send: the flow's transport
// and address, once the token verifies (else flowtoken.ErrForged or
// ErrMalformed: someone made it up, 403) and the flow is still there
// (else errFlowFailed: 430).
func (p *proxy) flowHop(tok string) (hop, error) {
	f, err := p.cfg.flows.Decode(tok)
	if err != nil {
		return hop{}, err
	}
	if !p.conns.alive(f) {
		return hop{}, errFlowFailed
	}
	return hop{transport: f.Transport, addr: f.Remote.String()}, nil
}

// flowRefusal is the answer to a request whose flow token cannot be
// followed.
func flowRefusal(req *sip.Request, err error) *sip.Response {
	if errors.Is(err, errFlowFailed) {
		return core.NewResponse(req, 430, "Flow Failed")
	}
	return core.NewResponse(req, 403, "Forbidden (Invalid Flow Token)")
}

// routeSet is the request's Route URIs, top first.
func routeSet(req *sip.Request) []string {
	var out []string
	for _, v := range core.HeaderValues(req, "Route", "") {
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
	host = sipuri.NormalizeHost(host)
	for _, own := range p.core.OwnAddrs() {
		oh, op, _ := net.SplitHostPort(own)
		if oh == host && op == port {
			return true
		}
	}
	return false
}

// branchRequest is the copy of req sent to t (RFC 3261 §16.6): new
// Request-URI, the target's Route set (or the request's own when the
// target has none and keeps the Request-URI), Max-Forwards decremented,
// this node's Record-Route on an initial request (two when the request
// changes transport), and the destination and transport set. wire is the
// transport it goes on ("udp", "tcp", "tls", "ws", "wss"), which the Via
// added when it is sent names (addVia): sipgo carries WebSocket as TCP.
func (p *proxy) branchRequest(req *sip.Request, t target, recordRoute bool) (out *sip.Request, wire string, err error) {
	out = req.Clone()
	out.SetBody(req.Body())
	if t.uri != "" {
		var u sip.Uri
		if err := sip.ParseUri(t.uri, &u); err != nil {
			return nil, "", fmt.Errorf("contact %q: %w", t.uri, err)
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
	dest, wire := t.dest, t.transport
	calleeFlow := ""
	if t.flow != "" && len(t.route) == 0 {
		h, err := p.flowHop(t.flow)
		if err != nil {
			return nil, "", err
		}
		dest, wire, calleeFlow = h.addr, h.transport, t.flow
	}
	if dest == "" {
		next := out.Recipient.String()
		if routes := routeSet(out); len(routes) > 0 {
			next = routes[0]
		}
		if dest, wire, err = uriHostPort(next); err != nil {
			return nil, "", fmt.Errorf("next hop %q: %w", next, err)
		}
	}
	if wire == "" {
		wire = "udp"
	}
	if wire == "udp" && len(t.route) > 0 && len(out.String())+udpHeadroom > udpToProxyMax {
		// RFC 3261 §18.1.1: a request near the path MTU goes over a
		// congestion-controlled transport. The next hop is a proxy (a node
		// of the farm, an edge), which serves TCP on the same port. A
		// phone reached over UDP (its contact, its NAT flow) gets UDP
		// anyway, fragmented if need be: it may have nothing else.
		wire = "tcp"
	}
	if isWebSocket(wire) {
		// A WebSocket peer is reached only on the connection it opened:
		// this node dials none.
		a, err := netip.ParseAddrPort(dest)
		ci, ok := p.conns.get(a)
		if err != nil || !ok || ci.transport != wire {
			return nil, "", fmt.Errorf("no %s connection from %s", wire, dest)
		}
	}
	if recordRoute {
		// One entry per side when the sides differ (double
		// record-routing, RFC 5658): the callee's requests in the dialog
		// carry the top one last, the caller's the bottom one, and
		// popOwnRoutes removes both and follows the flow token of the one
		// it removed last. So a side on a flow (a connection, a phone
		// behind NAT; RFC 5626 §5.3) gets that flow's token, and its
		// requests come back on it whatever its Contact says.
		in, callerFlow := p.wireOf(req), p.callerFlow(req)
		out.PrependHeader(sip.NewHeader("Record-Route", p.recordRoute(in, callerFlow)))
		if in != wire || callerFlow != "" || calleeFlow != "" {
			out.PrependHeader(sip.NewHeader("Record-Route", p.recordRoute(wire, calleeFlow)))
		}
	}
	out.SetTransport(sipgoNetwork(wire))
	out.SetDestination(dest)
	return out, wire, nil
}

// udpToProxyMax is RFC 3261 §18.1.1's bound on a UDP request when the
// path MTU is unknown; udpHeadroom what this node adds to a request after
// the bound is checked (its Via and Record-Routes).
const (
	udpToProxyMax = 1300
	udpHeadroom   = 200
)

// wireOf is the transport a request came on, as bindings record it.
func (p *proxy) wireOf(req *sip.Request) string {
	tp := strings.ToLower(req.Transport())
	if tp == "udp" {
		return tp
	}
	if a, err := netip.ParseAddrPort(req.Source()); err == nil {
		if ci, ok := p.conns.get(a); ok {
			return ci.transport
		}
	}
	return tp
}

func isWebSocket(wire string) bool { return wire == "ws" || wire == "wss" }

// sipgoNetwork is the sipgo transport a request on wire is sent with:
// WebSocket connections are streams in sipgo's TCP transport
// (proxy_wire.go).
func sipgoNetwork(wire string) string {
	if isWebSocket(wire) {
		return "TCP"
	}
	return strings.ToUpper(wire)
}

// addVia adds this node's Via (sipgo's ClientRequestAddVia) naming the
// transport the request really goes on.
func (p *proxy) addVia(wire string) sipgo.ClientRequestOption {
	return func(c *sipgo.Client, r *sip.Request) error {
		if err := sipgo.ClientRequestAddVia(c, r); err != nil {
			return err
		}
		r.Via().Transport = strings.ToUpper(wire)
		return nil
	}
}

// recordRoute is this node's Record-Route value for one transport,
// naming a flow (with ;ob, RFC 5626 §5.3) when flow is a token.
func (p *proxy) recordRoute(transport, flow string) string {
	uri := p.rr
	if flow != "" {
		uri = "sip:" + flow + "@" + strings.TrimPrefix(p.rr, "sip:") + ";ob"
	}
	if transport != "udp" {
		uri += ";transport=" + transport
	}
	return "<" + uri + ">"
}

// callerFlow is the flow token of the flow a dialog-forming request came
// on, when the caller is reached on that flow rather than at its Contact
// (as for a registration: a connection, an outbound Contact with ;ob, a
// UDP source that is not the Contact's IP), else "".
func (p *proxy) callerFlow(req *sip.Request) string {
	src, err := netip.ParseAddrPort(req.Source())
	ct := req.Contact()
	if err != nil || ct == nil {
		return ""
	}
	src = unmapped(src)
	f := flowtoken.Flow{Transport: "udp", Remote: src}
	if !strings.EqualFold(req.Transport(), "udp") {
		ci, ok := p.conns.get(src)
		if !ok {
			return ""
		}
		f.Transport, f.Conn = ci.transport, ci.id
	}
	contact := locsvc.Contact{URI: ct.Address.String()}
	if ct.Address.UriParams != nil && ct.Address.UriParams.Has("ob") {
		contact.RegID = 1 // an outbound flow, whatever its reg-id
	}
	if !core.NeedsFlow(contact, f.Transport, src.Addr()) {
		return ""
	}
	tok, err := p.cfg.flows.Encode(f)
	if err != nil {
		return ""
	}
	return tok
}
