package core

import (
	"crypto/subtle"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// authenticate applies digest authentication to a request. It returns the
// authenticated user name ("" when authentication does not apply: it is
// off, or the source is trusted), or the answer to send instead of
// serving the request. asProxy selects the proxy form of the exchange
// (Proxy-Authorization, 407 with Proxy-Authenticate, RFC 3261 §22.3),
// which proxy mode uses for requests it forwards; REGISTER always uses the
// registrar form (Authorization, 401 with WWW-Authenticate).
func (c *Core) authenticate(req *sip.Request, src netip.Addr, asProxy bool) (user string, refuse *sip.Response) {
	if !c.cfg.AuthEnabled() || c.Trusted(src) {
		return "", nil
	}
	realm := c.cfg.Realm
	var cred *credentials
	authHeader := "Authorization"
	if asProxy {
		authHeader = "Proxy-Authorization"
	}
	for _, v := range HeaderValues(req, authHeader, "") {
		c, digest, err := parseAuthorization(v)
		if !digest {
			continue
		}
		if err != nil {
			return "", NewResponse(req, 400, "Bad Request (Malformed Authorization Header: "+err.Error()+")")
		}
		if c.Realm == realm {
			cred = &c
			break
		}
	}
	if cred == nil {
		return "", c.challenge(req, false, asProxy)
	}
	if !c.digestURIMatches(cred.URI, req) {
		return "", NewResponse(req, 400, "Bad Request (Digest URI Does Not Match Request-URI)")
	}

	ha1, known := c.cfg.Credentials.HA1(cred.Username, realm, cred.Algorithm)
	if !known {
		// Hash as much for an unknown user as for a known one, so that
		// neither the answer nor its timing tells them apart.
		ha1 = strings.Repeat("0", cred.Algorithm.hexLen())
	}
	want, err := DigestResponse(cred.Algorithm, ha1, cred.Nonce, cred.NC, cred.CNonce, cred.QOP,
		string(req.Method), cred.URI)
	if err != nil || subtle.ConstantTimeCompare([]byte(want), []byte(cred.Response)) != 1 || !known {
		return "", NewResponse(req, 403, "Forbidden")
	}
	// The password was right; only the nonce may be too old (or from a
	// key this node no longer has): ask again, telling the UA not to
	// prompt for a password (RFC 7616 §3.3 stale).
	if c.nonces.check(cred.Nonce) != nonceFresh {
		return "", c.challenge(req, true, asProxy)
	}
	return cred.Username, nil
}

// challenge is a 401 (a 407 asProxy) offering each algorithm the
// credential store can check, strongest first.
func (c *Core) challenge(req *sip.Request, stale, asProxy bool) *sip.Response {
	res := NewResponse(req, 401, "Unauthorized")
	header := "WWW-Authenticate"
	if asProxy {
		res = NewResponse(req, 407, "Proxy Authentication Required")
		header = "Proxy-Authenticate"
	}
	nonce := c.nonces.issue()
	for _, alg := range c.cfg.Credentials.Algorithms() {
		res.AppendHeader(sip.NewHeader(header, challenge(c.cfg.Realm, nonce, alg, stale)))
	}
	return res
}

// Trusted reports whether a source skips authentication and the
// REGISTER rate limit.
func (c *Core) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.cfg.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// digestURIMatches checks the digest uri against the request (RFC 7616
// §3.4.6). For REGISTER any address the registrar accepts as
// Request-URI will do: a proxy in front may have rewritten the
// Request-URI from the domain to this node's address (or back), and sipp
// puts the server's address there by default.
func (c *Core) digestURIMatches(digestURI string, req *sip.Request) bool {
	if sameURI(digestURI, &req.Recipient) {
		return true
	}
	if req.Method != sip.REGISTER {
		return false
	}
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") {
		return false
	}
	return u.User == "" && c.registrarHost(u.Host)
}

// sameURI compares a digest uri parameter with the Request-URI on what
// identifies the target: scheme, user, host and port.
func sameURI(digestURI string, ruri *sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && u.User == ruri.User &&
		sipuri.NormalizeHost(u.Host) == sipuri.NormalizeHost(ruri.Host) && u.Port == ruri.Port
}
