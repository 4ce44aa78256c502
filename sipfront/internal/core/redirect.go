package core

import (
	"cmp"
	"context"
	"net/netip"
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

// redirect answers a request for a user of a served domain with the
// AoR's contacts (302), statelessly.
func (c *Core) redirect(ctx context.Context, in *Inbound) *sip.Response {
	req := in.Req
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A request inside a dialog has no business here (RFC 3261 §12.2.2).
		return NewResponse(req, 481, "Call/Transaction Does Not Exist")
	}
	bindings, refuse := c.Bindings(ctx, in, false)
	if refuse != nil {
		return refuse
	}
	bindings = slices.Clone(bindings)
	slices.SortStableFunc(bindings, func(a, b locsvc.Binding) int { return cmp.Compare(b.Q, a.Q) })
	res := NewResponse(req, 302, "Moved Temporarily")
	for i := range bindings {
		b := &bindings[i]
		res.AppendHeader(sip.NewHeader("Contact", "<"+withRoute(b.URI, b.Path)+">;q="+formatQ(b.Q)))
	}
	return res
}

// Bindings are the current bindings of the user a request is for (its
// Request-URI), once the caller is authorized: what the redirect server
// answers with and the proxy forks to. refuse is the answer instead when
// there are none, or the request may not have them; asProxy selects the
// proxy form of digest auth.
func (c *Core) Bindings(ctx context.Context, in *Inbound, asProxy bool) (bindings []locsvc.Binding, refuse *sip.Response) {
	return c.bindings(ctx, in, func() *sip.Response { return c.AuthorizeCaller(in.Req, in.Src.Addr(), asProxy) })
}

// InDialogBindings are the bindings a request inside a dialog reaches
// when its Request-URI is a GRUU (RFC 5627 §7: a UA may put its GRUU in
// its Contact, so the dialog's remote target is one): the instance's, with
// no authorization, since the dialog was set up through this proxy.
func (c *Core) InDialogBindings(ctx context.Context, in *Inbound) (bindings []locsvc.Binding, refuse *sip.Response) {
	return c.bindings(ctx, in, func() *sip.Response { return nil })
}

// IsGRUU reports a Request-URI that is a GRUU of a served domain.
func (c *Core) IsGRUU(u *sip.Uri) bool {
	return u.UriParams != nil && u.UriParams.Has("gr") && c.Served(u.Host)
}

func (c *Core) bindings(ctx context.Context, in *Inbound, authorize func() *sip.Response) (bindings []locsvc.Binding, refuse *sip.Response) {
	req := in.Req
	if req.Recipient.User == "" {
		return nil, NewResponse(req, 404, "Not Found")
	}
	g, isGRUU, refuse := c.gruuOf(req)
	if refuse != nil {
		return nil, refuse
	}
	aor := g.aor
	if !isGRUU {
		var code int
		var reason string
		if aor, _, code, reason = c.AoROf(&req.Recipient, "Request"); code != 0 {
			return nil, NewResponse(req, code, reason)
		}
	}
	if refuse := authorize(); refuse != nil {
		return nil, refuse
	}
	result, err := c.loc.Lookup(ctx, aor)
	if err != nil {
		return nil, c.LocatorError(req, err)
	}
	if isGRUU {
		// The instance's bindings only: a GRUU never forks to the
		// user's other phones (RFC 5627 §3.4).
		var invalidated bool
		result.Bindings, invalidated = g.instanceBindings(result.Bindings)
		if invalidated {
			return nil, NewResponse(req, 404, "Not Found")
		}
	}
	if len(result.Bindings) == 0 {
		return nil, NoBinding(req, result)
	}
	return result.Bindings, nil
}

// AuthorizeCaller applies Config.AuthAll to a request answered or
// forwarded by lookup: digest auth (the proxy form asProxy), and the
// authenticated user must be the From user. nil lets the request go on.
func (c *Core) AuthorizeCaller(req *sip.Request, src netip.Addr, asProxy bool) *sip.Response {
	if !c.cfg.AuthAll {
		return nil
	}
	user, refuse := c.authenticate(req, src, asProxy)
	if refuse != nil {
		return refuse
	}
	if user != "" && user != sipuri.UnescapeLax(req.From().Address.User) {
		return NewResponse(req, 403, "Username Does Not Match From")
	}
	return nil
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

// Options is the 200 to an OPTIONS addressed to the server itself.
func (c *Core) Options(req *sip.Request) *sip.Response {
	res := NewResponse(req, 200, "OK")
	allow := allowRedirect
	if c.cfg.Mode == ModeRegistrar {
		allow = allowRegistrar
	}
	res.AppendHeader(sip.NewHeader("Allow", allow))
	res.AppendHeader(sip.NewHeader("Supported", strings.Join(supportedTags, ", ")))
	return res
}

// notAllowed refuses a method the registrar does not serve.
func notAllowed(req *sip.Request) *sip.Response {
	res := NewResponse(req, 405, "Method Not Allowed")
	res.AppendHeader(sip.NewHeader("Allow", allowRegistrar))
	return res
}

// NoBinding answers a request for a user with no live binding: 480 when
// the user registered recently (lapsed or removed bindings are
// remembered), 404 when the location service knows nothing of it.
func NoBinding(req *sip.Request, result locsvc.Result) *sip.Response {
	if result.Known {
		return NewResponse(req, 480, "Temporarily Unavailable")
	}
	return NewResponse(req, 404, "Not Found")
}
