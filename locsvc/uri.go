package locsvc

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// sipURI is a SIP or SIPS URI split into the parts RFC 3261 §19.1.4 compares.
// user and password are unescaped; host, scheme and parameter names are
// lower-cased because those comparisons ignore case.
type sipURI struct {
	scheme   string
	user     string
	password string
	hasUser  bool
	host     string
	port     int // 0 when absent: "no port" differs from ":5060" (§19.1.4)
	params   []uriParam
	headers  []uriParam
}

type uriParam struct{ name, value string }

var errEmptyURI = errors.New("empty URI")

// parseSIPURI parses "sip:user:password@host:port;params?headers". It takes
// the bare URI (no display name, no angle brackets) and rejects anything a
// registrar could not compare or route to.
func parseSIPURI(raw string) (sipURI, error) {
	var u sipURI
	if raw == "" {
		return u, errEmptyURI
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
	u.scheme = strings.ToLower(raw[:colon])
	if u.scheme != "sip" && u.scheme != "sips" {
		return u, fmt.Errorf("scheme %q is not sip or sips", raw[:colon])
	}
	rest := raw[colon+1:]

	// '@' cannot appear unescaped in user, password, params or headers, so
	// the first one ends the userinfo.
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if u.user, err = unescape(user); err != nil {
			return u, fmt.Errorf("user part: %w", err)
		}
		if u.user == "" {
			return u, errors.New("empty user part before '@'")
		}
		if hasPass {
			if u.password, err = unescape(pass); err != nil {
				return u, fmt.Errorf("password: %w", err)
			}
		}
		u.hasUser = true
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
	if paramStr != "" {
		for _, p := range strings.Split(paramStr[1:], ";") {
			name, value, _ := strings.Cut(p, "=")
			if name == "" {
				return u, errors.New("empty URI parameter")
			}
			uv, err := unescape(value)
			if err != nil {
				return u, fmt.Errorf("parameter %s: %w", name, err)
			}
			u.params = append(u.params, uriParam{strings.ToLower(name), uv})
		}
	}
	if headerStr != "" {
		for _, h := range strings.Split(headerStr, "&") {
			name, value, ok := strings.Cut(h, "=")
			if !ok || name == "" {
				return u, fmt.Errorf("malformed URI header %q", h)
			}
			uv, err := unescape(value)
			if err != nil {
				return u, fmt.Errorf("header %s: %w", name, err)
			}
			u.headers = append(u.headers, uriParam{strings.ToLower(name), uv})
		}
	}
	return u, nil
}

func (u *sipURI) parseHostPort(hp string) error {
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
			if !(c == ':' || c == '.' || isHex(byte(c))) {
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
			if !(isAlnum(c) || c == '-' || c == '.') {
				return fmt.Errorf("invalid character %q in host", c)
			}
		}
	}
	u.host = strings.ToLower(host)
	if hasPort {
		// port = 1*DIGIT: Atoi alone would take "+5060", and "host:" has
		// no port at all.
		n, err := strconv.Atoi(port)
		if err != nil || !allDigits(port) || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", port)
		}
		u.port = n
	}
	return nil
}

// param returns the value of a URI parameter and whether it is present.
func (u *sipURI) param(name string) (string, bool) {
	for _, p := range u.params {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

// hostport renders host[:port].
func (u *sipURI) hostport() string {
	if u.port == 0 {
		return u.host
	}
	return u.host + ":" + strconv.Itoa(u.port)
}

// comparedParams are the URI parameters whose presence alone makes two URIs
// differ (§19.1.4: user, ttl, method, maddr). transport is added because a
// UA that changes transport has a different flow; other parameters (lr, ob,
// vendor tags) do not change which device a contact is.
var comparedParams = [...]string{"maddr", "method", "transport", "ttl", "user"}

// canonical renders the URI so that two URIs equal under RFC 3261 §19.1.4
// (as narrowed above) render identically.
func (u *sipURI) canonical() string {
	var b strings.Builder
	b.WriteString(u.scheme)
	b.WriteByte(':')
	if u.hasUser {
		b.WriteString(PercentEncode(u.user, userSafe))
		if u.password != "" {
			b.WriteByte(':')
			b.WriteString(PercentEncode(u.password, isMark))
		}
		b.WriteByte('@')
	}
	b.WriteString(u.hostport())
	for _, name := range comparedParams {
		if v, ok := u.param(name); ok {
			b.WriteByte(';')
			b.WriteString(name)
			if v != "" {
				b.WriteByte('=')
				// Escaped, or a value holding ';' or '?' would render
				// like further parameters or headers.
				b.WriteString(PercentEncode(strings.ToLower(v), paramSafe))
			}
		}
	}
	if len(u.headers) > 0 {
		hs := make([]string, len(u.headers))
		for i, h := range u.headers {
			hs[i] = h.name + "=" + PercentEncode(h.value, isMark)
		}
		sort.Strings(hs)
		b.WriteByte('?')
		b.WriteString(strings.Join(hs, "&"))
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), nil
}

// PercentEncode writes s with every byte that safe rejects as %XX
// (upper-case hex), so that one value has exactly one spelling; the SIP
// front end uses it for URI header values too.
func PercentEncode(s string, safe func(byte) bool) string {
	const hexDigits = "0123456789ABCDEF"
	clean := true
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// userSafe is RFC 3261's unreserved plus user-unreserved set.
func userSafe(c byte) bool {
	return isMark(c) || strings.IndexByte("&=+$,;?/", c) >= 0
}

// paramSafe is RFC 3261's paramchar set without escapes: param-unreserved
// plus unreserved.
func paramSafe(c byte) bool {
	return isMark(c) || strings.IndexByte("[]/:&+$", c) >= 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isMark is RFC 3261's unreserved set: alphanumerics and marks.
func isMark(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-_.!~*'()", c) >= 0
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
