package sipfront

import (
	"cmp"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"
)

// The pure parts of proxy mode: where each branch goes, in which order,
// and which final answer the caller gets. fork.go puts them on the wire.

// target is one branch of a forwarded request.
type target struct {
	// uri is the branch's Request-URI; "" keeps the request's own.
	uri string
	// route is the Route set the branch carries, top first (URIs, no <>).
	route []string
	// dest is the transport address (ip:port) to send to instead of the
	// one the top Route or the Request-URI names; transport goes with it
	// ("udp", "tcp", "tls"; "" means UDP).
	dest      string
	transport string
	q         int
}

// dstParam is the Route URI parameter by which a node forwarding to a
// binding's home node tells it the address the UA registered from (its
// NAT binding or TCP connection), which only the binding record holds.
const dstParam = "locsvc-dst"

// targetFor is where a request for binding b goes ("calls go home"). The
// binding's Path is its route set. When the first Path entry is this node
// (isSelf), it is dropped; with nothing left, the request goes straight to
// the contact at the address the REGISTER came from (received), over the
// transport it came on, which is what reaches a UA behind NAT or on a TCP
// connection. When the first Path entry is another node (the binding's
// home), the request goes there with the whole Path as Route; if that
// entry is the only one, it carries the received address as a dstParam
// parameter so that the home node can do the same.
func targetFor(b *locsvc.Binding, isSelf func(uri string) bool) target {
	t := target{uri: b.URI, q: b.Q}
	path := b.Path
	direct := useReceived(b)
	if len(path) > 0 && isSelf(path[0]) {
		path = path[1:]
		if len(path) == 0 && direct {
			t.dest, t.transport = b.Received, strings.ToLower(b.Transport)
		}
	}
	t.route = slices.Clone(path)
	if len(b.Path) == 1 && len(t.route) == 1 && direct {
		// The only Path entry is another node: the binding's home.
		t.route[0] = withDst(t.route[0], b.Transport, b.Received)
	}
	return t
}

// useReceived reports whether a binding is reached at the address its
// REGISTER came from rather than at its contact: always for a flow (TCP,
// or an RFC 5626 reg-id), and over UDP when the source IP differs from
// the contact's (a NAT rewrote it). A UDP REGISTER from the contact's own
// IP but another port is taken as a UA that sends from an ephemeral port
// and listens at its contact (sipp does), so the contact is used.
func useReceived(b *locsvc.Binding) bool {
	if b.Received == "" {
		return false
	}
	rcv, err := netip.ParseAddrPort(b.Received)
	if err != nil {
		return false
	}
	if (b.Transport != "" && !strings.EqualFold(b.Transport, "udp")) || b.RegID != 0 {
		return true
	}
	hp, _, err := uriHostPort(b.URI)
	if err != nil {
		return true
	}
	host, _, _ := net.SplitHostPort(hp)
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false // a host name: the UA said where it is reached
	}
	return a.Unmap() != rcv.Addr().Unmap()
}

// withDst adds dstParam (transport:ip:port) to a URI, before any URI
// headers. ':' and '[' ']' are allowed unescaped in URI parameter values
// (RFC 3261 §25.1 param-unreserved).
func withDst(uri, transport, received string) string {
	if transport == "" {
		transport = "udp"
	}
	p := ";" + dstParam + "=" + strings.ToLower(transport) + ":" + received
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i] + p + uri[i:]
	}
	return uri + p
}

// dstOf reads dstParam back from a URI as written: transport and ip:port,
// or ok false when absent or malformed.
func dstOf(uri string) (transport, addr string, ok bool) {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	for _, p := range strings.Split(uri, ";")[1:] {
		name, value, found := strings.Cut(p, "=")
		if !found || !strings.EqualFold(name, dstParam) {
			continue
		}
		tp, a, found := strings.Cut(value, ":")
		if !found || (tp != "udp" && tp != "tcp" && tp != "tls") {
			return "", "", false
		}
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return "", "", false
		}
		return tp, ap.String(), true
	}
	return "", "", false
}

// forkGroups orders targets for forking (RFC 3261 §16.6, RFC 3261 §7 of
// the q-value rules): highest q first, targets of equal q tried in
// parallel, groups tried in sequence. Order within a group is kept.
func forkGroups(ts []target) [][]target {
	ts = slices.Clone(ts)
	slices.SortStableFunc(ts, func(a, b target) int { return cmp.Compare(b.q, a.q) })
	var groups [][]target
	for i, t := range ts {
		if i == 0 || t.q != ts[i-1].q {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], t)
	}
	return groups
}

// bestFinal picks the final answer for the caller among the non-2xx finals
// the branches gave (RFC 3261 §16.7 step 6): a 6xx if there is one (it also
// ends the search), else one of the lowest class, the first received.
// It returns -1 for no answers.
func bestFinal(codes []int) int {
	best := -1
	for i, c := range codes {
		switch {
		case c >= 600:
			return i
		case best < 0 || c/100 < codes[best]/100:
			best = i
		}
	}
	return best
}

// noAnswerCode is the answer when no branch answered finally: 408 when a
// branch timed out (nobody answered), 480 when every branch failed to
// reach its target (transport errors).
func noAnswerCode(timeouts int) (int, string) {
	if timeouts > 0 {
		return 408, "Request Timeout"
	}
	return 480, "Temporarily Unavailable"
}

// isTimeout tells a branch that timed out from one that failed to send.
func isTimeout(err error) bool {
	return errors.Is(err, sip.ErrTransactionTimeout)
}

// uriHostPort is the transport address a SIP URI names (host and port,
// 5060 or 5061 for sips by default) and its transport parameter (lower
// case, "" when absent).
func uriHostPort(uri string) (hostport, transport string, err error) {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return "", "", err
	}
	return hostPortOf(&u)
}

func hostPortOf(u *sip.Uri) (hostport, transport string, err error) {
	if u.Host == "" {
		return "", "", errors.New("no host")
	}
	port := u.Port
	if port == 0 {
		port = 5060
		if u.IsEncrypted() {
			port = 5061
		}
	}
	if u.UriParams != nil {
		if tp, ok := u.UriParams.Get("transport"); ok {
			transport = strings.ToLower(tp)
		}
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port)), transport, nil
}
