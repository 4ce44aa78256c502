package sipfront

import (
	"cmp"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
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
	// flow is the flow token (RFC 5626 §5.2) of this node's own Path
	// entry when no route is left after it: the branch goes on that flow
	// (the phone's connection, or its NAT mapping), once proxy_route.go
	// has checked the token and that the flow is still there.
	flow string
	// dest is the transport address (ip:port) to send to instead of the
	// one the top Route or the Request-URI names; transport goes with it
	// ("udp", "tcp", "tls", "ws", "wss"; "" means UDP).
	dest      string
	transport string
	q         int
	// alts are the instance's other flows, most recent first, tried in
	// turn when this one has failed (RFC 5626 §5.3).
	alts []target
}

// targetFor is where a request for binding b goes ("calls go home"). The
// binding's Path is its route set. When the first Path entry is this node
// (isSelf), it is dropped, and when nothing is left after it, its flow
// token (if any) says how the phone is reached: on the connection it
// registered over, or at the address behind its NAT; without one, the
// contact is reached directly. When the first Path entry is another node
// (the binding's home), the request goes there with the whole Path as
// Route, and that node reads its own token.
//
// When the home node is gone (homeGone) and its entry is the whole Path,
// the request goes straight to the flow its token names: any node of the
// farm opens the token, and a phone behind NAT whose pinhole the home
// held may still be reached at that address (a connection of the home's
// is gone with it, and the attempt fails at once).
func targetFor(b *locsvc.Binding, isSelf func(uri string) bool, homeGone func(node string) bool) target {
	t := target{uri: b.URI, q: b.Q}
	path := b.Path
	switch {
	case len(path) > 0 && isSelf(path[0]):
		if len(path) == 1 {
			t.flow = userOf(path[0])
		}
		path = path[1:]
	case len(path) == 1 && homeGone(b.Node):
		if tok := userOf(path[0]); tok != "" {
			t.flow, path = tok, nil
		}
	}
	t.route = slices.Clone(path)
	return t
}

// targetsFor are the targets of an AoR's bindings: one per binding,
// except that the flows of one outbound instance (same +sip.instance,
// each with its reg-id) make one target, the most recently registered
// flow first and the others its alternatives. RFC 5626 §5.3 has a proxy
// use one flow of an instance at a time, and the next only when it fails:
// forking to every flow would ring the same phone several times.
func targetsFor(bs []locsvc.Binding, isSelf func(uri string) bool, homeGone func(node string) bool) []target {
	var out []target
	instance := make(map[string]int) // instance -> index in out
	order := slices.Clone(bs)
	slices.SortStableFunc(order, func(a, b locsvc.Binding) int { return b.Updated.Compare(a.Updated) })
	for i := range order {
		b := &order[i]
		t := targetFor(b, isSelf, homeGone)
		if b.Instance == "" || b.RegID == 0 {
			out = append(out, t)
			continue
		}
		key := strings.ToLower(b.Instance)
		if j, ok := instance[key]; ok {
			out[j].alts = append(out[j].alts, t)
			continue
		}
		instance[key] = len(out)
		out = append(out, t)
	}
	return out
}

// userOf is a SIP URI's user part as written ("" for none, or for a URI
// that does not parse).
func userOf(uri string) string {
	u, err := sipuri.Parse(uri)
	if err != nil {
		return ""
	}
	return u.User
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
