package sipfront

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
	"github.com/locsvc/locsvc/sipfront/internal/core"
)

// Route and Record-Route surgery (RFC 3261 §16.4, §16.6, RFC 5658): which
// Route entries name this node, and the copy of a request each branch
// sends.

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
		// One entry per side when the transports differ (double
		// record-routing, RFC 5658): the callee uses the top one, the
		// caller the bottom one, and popOwnRoutes removes both.
		in := p.wireOf(req)
		out.PrependHeader(sip.NewHeader("Record-Route", p.recordRoute(in)))
		if in != wire {
			out.PrependHeader(sip.NewHeader("Record-Route", p.recordRoute(wire)))
		}
	}
	out.SetTransport(sipgoNetwork(wire))
	out.SetDestination(dest)
	return out, wire, nil
}

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

// recordRoute is this node's Record-Route value for one transport.
func (p *proxy) recordRoute(transport string) string {
	if transport != "udp" {
		return "<" + p.rr + ";transport=" + transport + ">"
	}
	return "<" + p.rr + ">"
}
