package sipfront

import (
	"crypto/subtle"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// authenticate applies digest authentication to a request. It returns the
// authenticated user name ("" when authentication does not apply: it is
// off, or the source is trusted), or the answer to send instead of
// serving the request. asProxy selects the proxy form of the exchange
// (Proxy-Authorization, 407 with Proxy-Authenticate, RFC 3261 §22.3),
// which proxy mode uses for requests it forwards; REGISTER always uses the
// registrar form (Authorization, 401 with WWW-Authenticate).
func (s *Server) authenticate(req *sip.Request, src netip.Addr, asProxy bool) (user string, refuse *sip.Response) {
	if !s.cfg.authEnabled() || s.trusted(src) {
		return "", nil
	}
	realm := s.cfg.realm
	var cred *credentials
	authHeader := "Authorization"
	if asProxy {
		authHeader = "Proxy-Authorization"
	}
	for _, v := range headerValues(req, authHeader, "") {
		c, digest, err := parseAuthorization(v)
		if !digest {
			continue
		}
		if err != nil {
			return "", newResponse(req, 400, "Bad Request (Malformed Authorization Header: "+err.Error()+")")
		}
		if c.Realm == realm {
			cred = &c
			break
		}
	}
	if cred == nil {
		return "", s.challenge(req, false, asProxy)
	}
	if !s.digestURIMatches(cred.URI, req) {
		return "", newResponse(req, 400, "Bad Request (Digest URI Does Not Match Request-URI)")
	}

	ha1, known := s.cfg.Credentials.HA1(cred.Username, realm, cred.Algorithm)
	if !known {
		// Hash as much for an unknown user as for a known one, so that
		// neither the answer nor its timing tells them apart.
		ha1 = strings.Repeat("0", cred.Algorithm.hexLen())
	}
	want, err := digestResponse(cred.Algorithm, ha1, cred.Nonce, cred.NC, cred.CNonce, cred.QOP,
		string(req.Method), cred.URI)
	if err != nil || subtle.ConstantTimeCompare([]byte(want), []byte(cred.Response)) != 1 || !known {
		return "", newResponse(req, 403, "Forbidden")
	}
	// The password was right; only the nonce may be too old (or from a
	// key this node no longer has): ask again, telling the UA not to
	// prompt for a password (RFC 7616 §3.3 stale).
	if s.nonces.check(cred.Nonce) != nonceFresh {
		return "", s.challenge(req, true, asProxy)
	}
	return cred.Username, nil
}

// challenge is a 401 (a 407 asProxy) offering each algorithm the
// credential store can check, strongest first.
func (s *Server) challenge(req *sip.Request, stale, asProxy bool) *sip.Response {
	res := newResponse(req, 401, "Unauthorized")
	header := "WWW-Authenticate"
	if asProxy {
		res = newResponse(req, 407, "Proxy Authentication Required")
		header = "Proxy-Authenticate"
	}
	nonce := s.nonces.issue()
	for _, alg := range s.cfg.Credentials.Algorithms() {
		res.AppendHeader(sip.NewHeader(header, challenge(s.cfg.realm, nonce, alg, stale)))
	}
	return res
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.Trusted {
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
func (s *Server) digestURIMatches(digestURI string, req *sip.Request) bool {
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
	return u.User == "" && s.registrarHost(u.Host)
}

// sameURI compares a digest uri parameter with the Request-URI on what
// identifies the target: scheme, user, host and port.
func sameURI(digestURI string, ruri *sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && u.User == ruri.User &&
		normalizeHost(u.Host) == normalizeHost(ruri.Host) && u.Port == ruri.Port
}
