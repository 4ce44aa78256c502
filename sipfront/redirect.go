package sipfront

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"

	"github.com/locsvc/locsvc/internal/sipuri"
)

const (
	allowRegistrar = "REGISTER, OPTIONS"
	allowRedirect  = "INVITE, ACK, CANCEL, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, PRACK, PUBLISH"
)

// handleRedirect answers a request for a user of a served domain with the
// AoR's contacts (302), statelessly.
func (s *Server) handleRedirect(ctx context.Context, in *inbound) {
	req := in.req
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A request inside a dialog has no business here (RFC 3261 §12.2.2).
		s.answer(in, newResponse(req, 481, "Call/Transaction Does Not Exist"))
		return
	}
	if req.Recipient.User == "" {
		s.answer(in, newResponse(req, 404, "Not Found"))
		return
	}
	aor, _, code, reason := s.aorOf(&req.Recipient, "Request")
	if code != 0 {
		s.answer(in, newResponse(req, code, reason))
		return
	}
	if s.cfg.AuthAll {
		user, refuse := s.authenticate(req, in.src.Addr(), false)
		if refuse != nil {
			s.answer(in, refuse)
			return
		}
		if user != "" && user != sipuri.UnescapeLax(req.From().Address.User) {
			s.answer(in, newResponse(req, 403, "Username Does Not Match From"))
			return
		}
	}
	result, err := s.loc.Lookup(ctx, aor)
	if err != nil {
		s.answer(in, s.locatorError(req, err))
		return
	}
	if len(result.Bindings) == 0 {
		s.answer(in, noBinding(req, result))
		return
	}
	bindings := slices.Clone(result.Bindings)
	slices.SortStableFunc(bindings, func(a, b locsvc.Binding) int { return cmp.Compare(b.Q, a.Q) })
	res := newResponse(req, 302, "Moved Temporarily")
	for i := range bindings {
		b := &bindings[i]
		res.AppendHeader(sip.NewHeader("Contact", "<"+withRoute(b.URI, b.Path)+">;q="+formatQ(b.Q)))
	}
	s.answer(in, res)
}

// withRoute adds the binding's Path to its contact as a Route URI header
// (RFC 3261 §19.1.5), so that the caller's request goes through the
// binding's home node first.
func withRoute(uri string, path []string) string {
	if len(path) == 0 {
		return uri
	}
	var route strings.Builder
	for i, p := range path {
		if i > 0 {
			route.WriteByte(',')
		}
		route.WriteString("<" + p + ">")
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + "Route=" + escapeHeaderValue(route.String())
}

// escapeHeaderValue escapes a URI header value (hvalue: unreserved and
// hnv-unreserved characters stay, the rest is %XX).
func escapeHeaderValue(v string) string {
	return sipuri.PercentEncode(v, sipuri.HeaderValueSafe)
}

// handleOptions answers an OPTIONS addressed to the server itself.
func (s *Server) handleOptions(in *inbound) {
	s.answer(in, s.optionsResponse(in.req))
}

// optionsResponse is the 200 to an OPTIONS addressed to the server itself.
func (s *Server) optionsResponse(req *sip.Request) *sip.Response {
	res := newResponse(req, 200, "OK")
	allow := allowRedirect
	if s.cfg.Mode == ModeRegistrar {
		allow = allowRegistrar
	}
	res.AppendHeader(sip.NewHeader("Allow", allow))
	res.AppendHeader(sip.NewHeader("Supported", strings.Join(supportedTags, ", ")))
	return res
}

// handleNotAllowed refuses a method the registrar does not serve.
func (s *Server) handleNotAllowed(in *inbound) {
	res := newResponse(in.req, 405, "Method Not Allowed")
	res.AppendHeader(sip.NewHeader("Allow", allowRegistrar))
	s.answer(in, res)
}

// handleCancel answers a CANCEL: 200 when the request it cancels was seen
// (its final answer has gone out already, so there is nothing left to
// stop), 481 otherwise (RFC 3261 §9.2).
func (s *Server) handleCancel(in *inbound) {
	req := in.req
	if s.txs.has(txKey(req, in.via, sip.INVITE)) || s.txs.has(txKey(req, in.via, sip.REGISTER)) {
		s.answer(in, newResponse(req, 200, "OK"))
		return
	}
	s.answer(in, newResponse(req, 481, "Call/Transaction Does Not Exist"))
}

// noBinding answers a request for a user with no live binding: 480 when
// the user registered recently (lapsed or removed bindings are
// remembered), 404 when the location service knows nothing of it.
func noBinding(req *sip.Request, result locsvc.Result) *sip.Response {
	if result.Known {
		return newResponse(req, 480, "Temporarily Unavailable")
	}
	return newResponse(req, 404, "Not Found")
}
