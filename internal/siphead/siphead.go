// Package siphead reads, by scanning a request's bytes, the little a
// stateless refusal needs: the method, the Vias, From, To, Call-ID and
// CSeq, and the parts of the top Via that route the answer back.
//
// It exists for overload: a server past capacity must refuse most new
// requests, and a refusal only helps if it costs a small fraction of an
// accepted request. A full parse (sipgo's) allocates every header and
// costs several microseconds; this scan allocates nothing and leaves the
// headers as the slices of the datagram the client wrote, which the
// refusal echoes. It is deliberately narrow: anything unusual (folded
// lines, quoted Via parameters, a repeated From) makes Scan report false,
// and the caller takes the ordinary path, which parses the request fully
// and refuses it there.
package siphead

import (
	"bytes"
	"net/netip"
	"strconv"
)

// Head is a scanned request. Every slice points into the scanned bytes.
type Head struct {
	Method []byte
	// Vias are the values of the Via header lines, in order. The first
	// starts with the top Via, which may be followed by others after a
	// comma (TopRest).
	Vias                   [][]byte
	From, To, CallID, CSeq []byte
	// ToTag: the To header carries a tag, or may: the request is inside
	// a dialog (or unclear), and is never refused as a new one.
	ToTag bool

	// The top Via: SIP/2.0/Transport Host[:Port];params. Port is 0 when
	// absent, Host is without IPv6 brackets.
	Transport, Host []byte
	Port            int
	Branch          []byte
	Rport           bool // rport asked for (RFC 3581)
	OC              bool // the client supports overload control (RFC 7339)
	// params are the top Via's parameters as written, without rport
	// (which the answer fills in); TopRest what follows the top Via on
	// its line, after the comma.
	params   [][]byte
	ocParams [][]byte
	TopRest  []byte
}

// Scan reads the request in b. It reports false for a response, for
// anything it does not read with certainty, and for a request without
// the headers a response needs.
func Scan(b []byte) (Head, bool) {
	var h Head
	ok := h.Scan(b)
	return h, ok
}

// Scan is the package's Scan into h, reusing its slices: a caller that
// keeps a Head scans without allocating.
func (h *Head) Scan(b []byte) bool {
	*h = Head{Vias: h.Vias[:0], params: h.params[:0], ocParams: h.ocParams[:0]}
	return h.scan(b)
}

func (h *Head) scan(b []byte) bool {
	line, rest, ok := cutLine(b)
	if !ok {
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !tokens(line[:sp]) || !bytes.HasSuffix(line, []byte(" SIP/2.0")) {
		return false
	}
	h.Method = line[:sp]
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return false
		}
		if len(line) == 0 {
			break // end of the headers
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false // folded: the full parser knows how
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name, value := bytes.TrimRight(line[:colon], " \t"), bytes.TrimSpace(line[colon+1:])
		var slot *[]byte
		switch {
		case is(name, "via", "v"):
			h.Vias = append(h.Vias, value)
			continue
		case is(name, "from", "f"):
			slot = &h.From
		case is(name, "to", "t"):
			slot = &h.To
		case is(name, "call-id", "i"):
			slot = &h.CallID
		case is(name, "cseq", ""):
			slot = &h.CSeq
		default:
			continue
		}
		if *slot != nil || len(value) == 0 {
			return false
		}
		*slot = value
	}
	if len(h.Vias) == 0 || !address(h.From) || !address(h.To) || !callID(h.CallID) || !cseq(h.CSeq, h.Method) {
		return false
	}
	h.ToTag = mayHaveTag(h.To)
	return h.topVia()
}

// The echoed headers are checked for the shape a client's parser needs,
// no more: what fails takes the ordinary path, whose parser decides.

// address is a From or To: a sip, sips or tel URI, bare or in angle
// brackets after a display name (tokens, or a quoted string), and then
// nothing but parameters.
func address(v []byte) bool {
	var params []byte
	if i := bytes.IndexByte(v, '<'); i >= 0 {
		end := bytes.IndexByte(v[i:], '>')
		if end < 0 || !displayName(bytes.TrimSpace(v[:i])) || !uri(v[i+1:i+end]) {
			return false
		}
		params = bytes.TrimLeft(v[i+end+1:], " \t")
	} else {
		u := v
		if i := bytes.IndexByte(v, ';'); i >= 0 {
			u, params = v[:i], v[i:]
		}
		if !uri(u) {
			return false
		}
	}
	return len(params) == 0 || params[0] == ';'
}

func displayName(n []byte) bool {
	if len(n) >= 2 && n[0] == '"' && n[len(n)-1] == '"' {
		return true
	}
	for _, w := range bytes.Fields(n) {
		if !tokens(w) {
			return false
		}
	}
	return true
}

// uri: a sip, sips or tel URI with no quote, space or angle bracket in
// it (a quote there left the echo unreadable to sipgo once a tag was
// added: `To: sip:"0`).
func uri(u []byte) bool {
	return scheme(u) && !bytes.ContainsAny(u, "\" \t<>")
}

// scheme: the URI is a sip, sips or tel URI with something after the
// colon.
func scheme(u []byte) bool {
	colon := bytes.IndexByte(u, ':')
	if colon < 1 || colon == len(u)-1 {
		return false
	}
	s := u[:colon]
	return bytes.EqualFold(s, []byte("sip")) || bytes.EqualFold(s, []byte("sips")) || bytes.EqualFold(s, []byte("tel"))
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// callID: word characters and "@", no white space.
func callID(v []byte) bool {
	return len(v) > 0 && !bytes.ContainsAny(v, " \t\"<>")
}

// cseq: a number and the request's own method.
func cseq(v, method []byte) bool {
	sp := bytes.IndexAny(v, " \t")
	if sp < 1 || sp > 10 {
		return false
	}
	for _, c := range v[:sp] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return bytes.Equal(bytes.TrimLeft(v[sp:], " \t"), method)
}

// cutLine splits off one CRLF-ended line.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+2:], true
}

// is compares a header name with its long and compact forms.
func is(name []byte, long, compact string) bool {
	return bytes.EqualFold(name, []byte(long)) || (compact != "" && bytes.EqualFold(name, []byte(compact)))
}

func tokens(b []byte) bool {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("-.!%*_+`'~"), c) >= 0) {
			return false
		}
	}
	return len(b) > 0
}

// mayHaveTag errs toward true: a request wrongly taken for one inside a
// dialog is only not refused early, while one wrongly taken for a new
// one could lose a call in progress. The header's own parameters follow
// the closing '>' of a name-addr, or the whole value of an addr-spec.
func mayHaveTag(to []byte) bool {
	params := to
	if i := bytes.LastIndexByte(to, '>'); i >= 0 {
		params = to[i:]
	}
	for i := 0; i+3 <= len(params); i++ {
		if (params[i]|0x20) == 't' && (params[i+1]|0x20) == 'a' && (params[i+2]|0x20) == 'g' {
			return true
		}
	}
	return false
}

// topVia reads the top Via's parts, and checks that every other Via is
// one a client's parser reads back.
func (h *Head) topVia() bool {
	for i, line := range h.Vias {
		for first := true; len(line) > 0; first = false {
			v, rest, more, ok := cutOutside(line, ',')
			if !ok {
				return false
			}
			v = bytes.TrimSpace(v)
			if i == 0 && first {
				if !h.via(v, true) {
					return false
				}
				if more {
					h.TopRest = bytes.TrimSpace(rest)
				}
			} else if !h.via(v, false) {
				return false
			}
			if line = rest; more && len(bytes.TrimSpace(rest)) == 0 {
				return false // a trailing comma
			}
		}
	}
	return true
}

// via reads one Via value: SIP/2.0/transport sent-by;params. Only the
// top one's parts are kept.
func (h *Head) via(v []byte, top bool) bool {
	const proto = "SIP/2.0/"
	if len(v) < len(proto) || !bytes.EqualFold(v[:len(proto)], []byte(proto)) {
		return false
	}
	v = v[len(proto):]
	sp := bytes.IndexAny(v, " \t")
	if sp <= 0 || !tokens(v[:sp]) {
		return false
	}
	transport, v := v[:sp], bytes.TrimLeft(v[sp:], " \t")
	sentBy, params, _, _ := cutOutside(v, ';')
	host, port, ok := hostPort(bytes.TrimSpace(sentBy))
	if !ok {
		return false
	}
	if top {
		h.Transport, h.Host, h.Port = transport, host, port
	}
	for len(params) > 0 {
		var p []byte
		p, params, _, _ = cutOutside(params, ';')
		p = bytes.TrimSpace(p)
		name, value, hasValue := bytes.Cut(p, []byte("="))
		if !tokens(name) || (hasValue && !paramValue(value)) {
			return false
		}
		if !top {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("rport")):
			h.Rport = true
			continue // the answer writes its own
		case bytes.EqualFold(name, []byte("branch")):
			h.Branch = value
		case bytes.EqualFold(name, []byte("oc")):
			h.OC = true
			h.ocParams = append(h.ocParams, p)
			continue // the answer writes its own, or these back
		case len(name) > 3 && bytes.EqualFold(name[:3], []byte("oc-")):
			h.ocParams = append(h.ocParams, p)
			continue
		}
		h.params = append(h.params, p)
	}
	return true
}

// paramValue: a token, an address (received=2001:db8::1) or a quoted
// string.
func paramValue(v []byte) bool {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return true
	}
	for _, c := range v {
		if c != ':' && c != '[' && c != ']' && !tokens([]byte{c}) {
			return false
		}
	}
	return len(v) > 0
}

// cutOutside is bytes.Cut at the first sep outside a quoted string (the
// oc-algo parameter of RFC 7339 is one); ok is false when a quote is not
// closed.
func cutOutside(b []byte, sep byte) (before, after []byte, found, ok bool) {
	quoted := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case c == sep && !quoted:
			return b[:i], b[i+1:], true, true
		}
	}
	return b, nil, false, !quoted
}

// hostPort reads host[:port], the host a name, an IPv4 or a bracketed
// IPv6 address; port is 0 when absent.
func hostPort(s []byte) (host []byte, port int, ok bool) {
	host = s
	var p []byte
	if len(s) > 0 && s[0] == '[' {
		end := bytes.IndexByte(s, ']')
		if end < 0 {
			return nil, 0, false
		}
		host = s[1:end]
		if rest := s[end+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return nil, 0, false
			}
			p = rest[1:]
		}
	} else if i := bytes.IndexByte(s, ':'); i >= 0 {
		host, p = s[:i], s[i+1:]
	}
	if len(host) == 0 {
		return nil, 0, false
	}
	for _, c := range host {
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-' && c != ':' {
			return nil, 0, false
		}
	}
	if p != nil {
		if len(p) == 0 || len(p) > 5 {
			return nil, 0, false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, 0, false
			}
			port = port*10 + int(c-'0')
		}
		if port < 1 || port > 65535 {
			return nil, 0, false
		}
	}
	return host, port, true
}

// sentFrom reports whether host, a Via's sent-by host, is the address
// ip: compared as text first, so that the usual case (a phone that
// wrote the address it sends from) parses nothing.
func sentFrom(host []byte, ip netip.Addr) bool {
	var buf [64]byte
	if string(ip.AppendTo(buf[:0])) == string(host) {
		return true
	}
	sent, err := netip.ParseAddr(string(host))
	return err == nil && sent.Unmap() == ip
}

// Refusal appends to dst a 503 answer to h, received from src over a
// datagram transport, with Retry-After and, when oc is not empty, the
// overload control parameters of RFC 7339 on the top Via when the client
// announced support (oc is what follows "oc=", e.g.
// `20;oc-algo="loss";oc-validity=500;oc-seq=12.3`).
// The top Via gets received and rport as RFC 3261 §18.2.1 and RFC 3581
// say; tag is the To tag the answer adds.
func (h *Head) Refusal(dst []byte, src netip.AddrPort, retryAfter int, tag []byte, oc string) []byte {
	dst = append(dst, "SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/"...)
	dst = append(dst, h.Transport...)
	dst = append(dst, ' ')
	if bytes.IndexByte(h.Host, ':') >= 0 {
		dst = append(dst, '[')
		dst = append(dst, h.Host...)
		dst = append(dst, ']')
	} else {
		dst = append(dst, h.Host...)
	}
	if h.Port != 0 {
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(h.Port), 10)
	}
	for _, p := range h.params {
		dst = append(dst, ';')
		dst = append(dst, p...)
	}
	ip := src.Addr().Unmap()
	if h.Rport || !sentFrom(h.Host, ip) {
		dst = append(dst, ";received="...)
		dst = ip.AppendTo(dst)
	}
	if h.Rport {
		dst = append(dst, ";rport="...)
		dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
	}
	if oc != "" && h.OC {
		dst = append(dst, ";oc="...)
		dst = append(dst, oc...)
	} else {
		for _, p := range h.ocParams {
			dst = append(dst, ';')
			dst = append(dst, p...)
		}
	}
	if len(h.TopRest) > 0 {
		dst = append(dst, ", "...)
		dst = append(dst, h.TopRest...)
	}
	for _, v := range h.Vias[1:] {
		dst = appendHeader(dst, "Via", v)
	}
	dst = appendHeader(dst, "From", h.From)
	dst = appendHeader(dst, "To", h.To)
	if !h.ToTag {
		dst = append(dst, ";tag="...)
		dst = append(dst, tag...)
	}
	dst = appendHeader(dst, "Call-ID", h.CallID)
	dst = appendHeader(dst, "CSeq", h.CSeq)
	dst = append(dst, "\r\nRetry-After: "...)
	dst = strconv.AppendInt(dst, int64(retryAfter), 10)
	return append(dst, "\r\nContent-Length: 0\r\n\r\n"...)
}

// appendHeader ends the line before and starts a new one.
func appendHeader(dst []byte, name string, value []byte) []byte {
	dst = append(dst, "\r\n"...)
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	return append(dst, value...)
}
