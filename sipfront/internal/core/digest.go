package core

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// Algorithm is a digest algorithm (RFC 7616 §3.3; RFC 8760 for SIP).
type Algorithm string

const (
	MD5    Algorithm = "MD5"
	SHA256 Algorithm = "SHA-256"
)

// algorithms in the order a challenge offers them: strongest first.
var algorithms = []Algorithm{SHA256, MD5}

func (a Algorithm) hash() (hash.Hash, error) {
	switch a {
	case MD5:
		return md5.New(), nil
	case SHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("unsupported digest algorithm %q", string(a))
}

// hexLen is the length of the algorithm's digests in hex.
func (a Algorithm) hexLen() int {
	if a == SHA256 {
		return 64
	}
	return 32
}

// parseAlgorithm reads an algorithm parameter; absent means MD5
// (RFC 7616 §3.3).
func parseAlgorithm(v string) (Algorithm, error) {
	switch {
	case v == "", strings.EqualFold(v, "MD5"):
		return MD5, nil
	case strings.EqualFold(v, "SHA-256"):
		return SHA256, nil
	}
	return "", fmt.Errorf("unsupported digest algorithm %q", v)
}

// HA1 is H(user:realm:password) in lower-case hex: what a credentials
// file stores instead of the password. alg is MD5 or SHA256.
func HA1(user, realm, password string, alg Algorithm) (string, error) {
	return hexHash(alg, user, ":", realm, ":", password)
}

func hexHash(alg Algorithm, parts ...string) (string, error) {
	h, err := alg.hash()
	if err != nil {
		return "", err
	}
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DigestResponse is the expected response parameter (RFC 7616 §3.4.1,
// RFC 2617 §3.2.2.1): with qop=auth
// H(HA1:nonce:nc:cnonce:qop:H(method:uri)), without qop (RFC 2069)
// H(HA1:nonce:H(method:uri)).
func DigestResponse(alg Algorithm, ha1, nonce, nc, cnonce, qop, method, uri string) (string, error) {
	ha2, err := hexHash(alg, method, ":", uri)
	if err != nil {
		return "", err
	}
	if qop == "" {
		return hexHash(alg, ha1, ":", nonce, ":", ha2)
	}
	return hexHash(alg, ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", ha2)
}

// credentials are the parameters of one Authorization header.
type credentials struct {
	Username, Realm, Nonce, URI, Response string
	Algorithm                             Algorithm
	CNonce, NC, QOP, Opaque               string
}

// parseAuthorization parses an Authorization (or Proxy-Authorization)
// header value: "Digest" then comma-separated auth-params (RFC 3261
// §25.1, RFC 7616 §3.4). ok is false for another scheme.
func parseAuthorization(v string) (c credentials, ok bool, err error) {
	v = sipuri.TrimLWS(v)
	sp := strings.IndexAny(v, " \t")
	if sp < 0 || !strings.EqualFold(v[:sp], "Digest") {
		return c, false, nil
	}
	params, err := ParseAuthParams(v[sp+1:])
	if err != nil {
		return c, true, err
	}
	var alg string
	for name, val := range params {
		switch name {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = strings.ToLower(val)
		case "algorithm":
			alg = val
		case "cnonce":
			c.CNonce = val
		case "nc":
			c.NC = val
		case "qop":
			c.QOP = strings.ToLower(val)
		case "opaque":
			c.Opaque = val
		}
	}
	for _, p := range [...]struct{ name, val string }{
		{"username", c.Username}, {"realm", c.Realm}, {"nonce", c.Nonce}, {"uri", c.URI}, {"response", c.Response},
	} {
		if _, present := params[p.name]; !present {
			return c, true, fmt.Errorf("missing %s", p.name)
		}
	}
	if c.Algorithm, err = parseAlgorithm(alg); err != nil {
		return c, true, err
	}
	switch c.QOP {
	case "":
	case "auth":
		if c.CNonce == "" || c.NC == "" {
			return c, true, errors.New("qop=auth without cnonce or nc")
		}
	default:
		return c, true, fmt.Errorf("unsupported qop %q", c.QOP)
	}
	return c, true, nil
}

// ParseAuthParams parses name=value pairs separated by commas, values as
// tokens or quoted strings. Names are lower-cased; a name given twice is
// an error, since the two values could be read differently by different
// implementations.
func ParseAuthParams(s string) (map[string]string, error) {
	out := make(map[string]string)
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		i := 0
		for i < len(s) && sipuri.IsToken(s[i]) {
			i++
		}
		if i == 0 {
			return nil, fmt.Errorf("unexpected %q", sipuri.Clip(s))
		}
		name := strings.ToLower(s[:i])
		s = sipuri.TrimLWS(s[i:])
		if s == "" || s[0] != '=' {
			return nil, fmt.Errorf("parameter %s has no value", name)
		}
		s = sipuri.TrimLWS(s[1:])
		var val string
		if s != "" && s[0] == '"' {
			v, n, err := sipuri.QuotedString(s)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %v", name, err)
			}
			val, s = v, s[n:]
		} else {
			j := 0
			for j < len(s) && s[j] != ',' && s[j] != ' ' && s[j] != '\t' {
				j++
			}
			val, s = s[:j], s[j:]
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("parameter %s given twice", name)
		}
		out[name] = val
		s = sipuri.TrimLWS(s)
		if s != "" && s[0] != ',' {
			return nil, fmt.Errorf("unexpected %q after parameter %s", sipuri.Clip(s), name)
		}
	}
}

// challenge renders a WWW-Authenticate value.
func challenge(realm, nonce string, alg Algorithm, stale bool) string {
	var b strings.Builder
	b.WriteString(`Digest realm="`)
	b.WriteString(sipuri.QuoteEscape(realm))
	b.WriteString(`", nonce="`)
	b.WriteString(nonce)
	b.WriteString(`", algorithm=`)
	b.WriteString(string(alg))
	b.WriteString(`, qop="auth"`)
	if stale {
		b.WriteString(", stale=true")
	}
	return b.String()
}
