package sipuri

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// URI is a SIP or SIPS URI split into the parts RFC 3261 §19.1.4 compares.
// User and Password are unescaped; Host, Scheme and parameter names are
// lower-cased because those comparisons ignore case.
type URI struct {
	Scheme   string
	User     string
	Password string
	HasUser  bool
	Host     string
	Port     int // 0 when absent: "no port" differs from ":5060" (§19.1.4)
	Params   []URIParam
	Headers  []URIParam
}

// URIParam is a URI parameter or URI header, name lower-cased and value
// unescaped.
type URIParam struct{ Name, Value string }

// ErrEmpty is Parse's error for "".
var ErrEmpty = errors.New("empty URI")

// Parse parses "sip:user:password@host:port;params?headers". It takes the
// bare URI (no display name, no angle brackets) and rejects anything a
// registrar could not compare or route to.
func Parse(raw string) (URI, error) {
	var u URI
	if raw == "" {
		return u, ErrEmpty
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
			return u, fmt.Errorf("character %q not allowed in a SIP URI", c)
		}
	}
	colon := strings.IndexByte(raw, ':')
	if colon < 0 {
		return u, errors.New("missing scheme")
	}
	u.Scheme = strings.ToLower(raw[:colon])
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return u, fmt.Errorf("scheme %q is not sip or sips", raw[:colon])
	}
	rest := raw[colon+1:]

	// '@' cannot appear unescaped in user, password, params or headers, so
	// the first one ends the userinfo.
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		if err := u.parseUserinfo(rest[:at]); err != nil {
			return u, err
		}
		rest = rest[at+1:]
	}

	hostport := rest
	var paramStr, headerStr string
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		hostport = rest[:i]
		tail := rest[i:]
		if q := strings.IndexByte(tail, '?'); q >= 0 {
			paramStr, headerStr = tail[:q], tail[q+1:]
		} else {
			paramStr = tail
		}
	}
	if err := u.parseHostPort(hostport); err != nil {
		return u, err
	}
	var err error
	if paramStr != "" {
		if u.Params, err = parseURIParams(paramStr[1:]); err != nil {
			return u, err
		}
	}
	if headerStr != "" {
		if u.Headers, err = parseURIHeaders(headerStr); err != nil {
			return u, err
		}
	}
	return u, nil
}

func (u *URI) parseUserinfo(userinfo string) error {
	user, pass, hasPass := strings.Cut(userinfo, ":")
	var err error
	if u.User, err = Unescape(user); err != nil {
		return fmt.Errorf("user part: %w", err)
	}
	if u.User == "" {
		return errors.New("empty user part before '@'")
	}
	if hasPass {
		if u.Password, err = Unescape(pass); err != nil {
			return fmt.Errorf("password: %w", err)
		}
	}
	u.HasUser = true
	return nil
}

func parseURIParams(s string) ([]URIParam, error) {
	var out []URIParam
	for _, p := range strings.Split(s, ";") {
		name, value, _ := strings.Cut(p, "=")
		if name == "" {
			return nil, errors.New("empty URI parameter")
		}
		uv, err := Unescape(value)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		out = append(out, URIParam{strings.ToLower(name), uv})
	}
	return out, nil
}

func parseURIHeaders(s string) ([]URIParam, error) {
	var out []URIParam
	for _, h := range strings.Split(s, "&") {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("malformed URI header %q", h)
		}
		uv, err := Unescape(value)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		out = append(out, URIParam{strings.ToLower(name), uv})
	}
	return out, nil
}

func (u *URI) parseHostPort(hp string) error {
	if hp == "" {
		return errors.New("missing host")
	}
	host, port, hasPort := hp, "", false
	if hp[0] == '[' {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return errors.New("unterminated IPv6 reference")
		}
		host = hp[:end+1]
		switch rest := hp[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return fmt.Errorf("unexpected %q after IPv6 reference", rest)
		}
		for _, c := range host[1:end] {
			if !(c == ':' || c == '.' || IsHex(byte(c))) {
				return fmt.Errorf("invalid IPv6 reference %q", host)
			}
		}
	} else {
		if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			host, port, hasPort = hp[:i], hp[i+1:], true
		}
		if host == "" {
			return errors.New("missing host")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(IsAlnum(c) || c == '-' || c == '.') {
				return fmt.Errorf("invalid character %q in host", c)
			}
		}
	}
	u.Host = strings.ToLower(host)
	if hasPort {
		// port = 1*DIGIT: Atoi alone would take "+5060", and "host:" has
		// no port at all.
		n, err := strconv.Atoi(port)
		if err != nil || !AllDigits(port) || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", port)
		}
		u.Port = n
	}
	return nil
}

// Param returns the value of a URI parameter and whether it is present.
func (u *URI) Param(name string) (string, bool) {
	for _, p := range u.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// HostPort renders host[:port].
func (u *URI) HostPort() string {
	if u.Port == 0 {
		return u.Host
	}
	return u.Host + ":" + strconv.Itoa(u.Port)
}

// comparedParams are the URI parameters whose presence alone makes two URIs
// differ (§19.1.4: user, ttl, method, maddr). transport is added because a
// UA that changes transport has a different flow; other parameters (lr, ob,
// vendor tags) do not change which device a contact is.
var comparedParams = [...]string{"maddr", "method", "transport", "ttl", "user"}

// Canonical renders the URI so that two URIs equal under RFC 3261 §19.1.4
// (as narrowed above) render identically, and so that the rendering
// parses back to itself.
func (u *URI) Canonical() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteByte(':')
	if u.HasUser {
		b.WriteString(PercentEncode(u.User, UserSafe))
		if u.Password != "" {
			b.WriteByte(':')
			b.WriteString(PercentEncode(u.Password, IsUnreserved))
		}
		b.WriteByte('@')
	}
	b.WriteString(u.HostPort())
	for _, name := range comparedParams {
		if v, ok := u.Param(name); ok {
			b.WriteByte(';')
			b.WriteString(name)
			if v != "" {
				b.WriteByte('=')
				// Escaped, or a value holding ';' or '?' would render
				// like further parameters or headers.
				b.WriteString(PercentEncode(strings.ToLower(v), ParamSafe))
			}
		}
	}
	if len(u.Headers) > 0 {
		hs := make([]string, len(u.Headers))
		for i, h := range u.Headers {
			hs[i] = h.Name + "=" + PercentEncode(h.Value, IsUnreserved)
		}
		sort.Strings(hs)
		b.WriteByte('?')
		b.WriteString(strings.Join(hs, "&"))
	}
	return b.String()
}

// NormalizeHost is the form hosts are compared in (§19.1.4: host
// comparison ignores case): lower case, IPv6 without brackets, no
// trailing dot.
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(h, ".")
}
