package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"

	"github.com/locsvc/locsvc/internal/flowtoken"
	"github.com/locsvc/locsvc/internal/sipuri"
)

// supportedTags are the option tags a REGISTER may Require.
var supportedTags = []string{"path", "outbound", "gruu"}

// httpDate is RFC 1123 with GMT, the SIP-date of RFC 3261 §20.17.
const httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// register is RFC 3261 §10.3 on top of Locator.Register, for the REGISTER
// in, and the answer is returned.
func (c *Core) register(ctx context.Context, in *Inbound) *sip.Response {
	req, src := in.Req, in.Src
	// Step 1: the registrar must be authoritative for the Request-URI.
	if !c.registrarHost(req.Recipient.Host) {
		return NewResponse(req, 404, "Domain Not Served")
	}
	// Step 2: option tags the UA requires.
	if bad := unsupported(optionTags(req, "Require", "")); len(bad) > 0 {
		res := NewResponse(req, 420, "Bad Extension")
		res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(bad, ", ")))
		return res
	}
	// Step 3: authentication.
	user, refuse := c.authenticate(req, src.Addr(), false)
	if refuse != nil {
		return refuse
	}
	// Step 4: the AoR, in a domain served, and the user's own.
	aor, aorUser, code, reason := c.AoROf(&req.To().Address, "To")
	if code != 0 {
		return NewResponse(req, code, reason)
	}
	if user != "" && user != aorUser {
		return NewResponse(req, 403, "Username Does Not Match AoR")
	}
	// Steps 5 to 8 are the Locator's, given the request.
	lreq, outbound, err := c.registerRequest(in, aor)
	if err != nil {
		return NewResponse(req, 400, "Bad Request ("+err.Error()+")")
	}
	result, err := c.loc.Register(ctx, lreq)
	if err != nil {
		return c.LocatorError(req, err)
	}

	if c.cfg.Registered != nil && len(lreq.Contacts) > 0 {
		c.cfg.Registered(Registration{In: in, AoR: result.AoR, current: result.Bindings, contacts: lreq.Contacts})
	}
	// Step 9: the current bindings.
	res := NewResponse(req, 200, "OK")
	now := result.Now
	if now.IsZero() {
		now = c.now()
	}
	gruus := hasTag(optionTags(req, "Supported", "k"), "gruu")
	for i := range result.Bindings {
		b := &result.Bindings[i]
		contact := registeredContact(b, now)
		if gruus {
			contact += c.gruuParams(result.AoR, b)
		}
		res.AppendHeader(sip.NewHeader("Contact", contact))
	}
	// RFC 3327 §5.3: echo the stored Path to a UA that supports it, and
	// only when this request stored one.
	if hasTag(optionTags(req, "Supported", "k"), "path") && len(lreq.Contacts) > 0 {
		for _, p := range lreq.Path {
			res.AppendHeader(sip.NewHeader("Path", "<"+p+">"))
		}
	}
	if outbound {
		res.AppendHeader(sip.NewHeader("Require", "outbound"))
		// How long the flow may go without a keepalive before the server
		// may take it for dead: the UA keeps alive a little more often.
		if c.cfg.FlowTimer >= time.Second {
			res.AppendHeader(sip.NewHeader("Flow-Timer", strconv.Itoa(int(c.cfg.FlowTimer/time.Second))))
		}
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(httpDate)))
	return res
}

// Registration is a REGISTER that succeeded and bound contacts.
type Registration struct {
	In       *Inbound
	AoR      string
	current  []locsvc.Binding // the AoR's live bindings afterwards
	contacts []locsvc.Contact // what the request bound or removed
}

// Bound are the live bindings the request wrote (a contact with expires
// 0 removes, and is not among them), each with its ID and the version
// (Updated) the write gave it. It is worked out when asked for: most
// REGISTERs need nothing of it. A remote Locator answers without
// binding IDs: they are derived as the registrar derives them.
func (r *Registration) Bound() []locsvc.Binding {
	var out []locsvc.Binding
	for _, b := range r.current {
		id := b.ID
		if id == "" {
			var err error
			if id, err = locsvc.BindingID(b.URI, b.Instance, b.RegID); err != nil {
				continue
			}
			b.ID = id
		}
		for _, ct := range r.contacts {
			if ctID, err := locsvc.BindingID(ct.URI, ct.Instance, ct.RegID); err == nil && ctID == id {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// registerRequest maps a REGISTER onto the Locator's request. outbound
// reports that a contact asked for an RFC 5626 flow. Errors name the
// fault for the 400.
func (c *Core) registerRequest(in *Inbound, aor string) (lreq locsvc.Request, outbound bool, err error) {
	req, src, transport := in.Req, in.Src, in.Transport
	supported := optionTags(req, "Supported", "k")
	contacts, wildcard, err := parseContacts(HeaderValues(req, "Contact", "m"), hasTag(supported, "outbound"))
	if err != nil {
		return lreq, false, fmt.Errorf("Malformed Contact Header: %v", err)
	}
	for _, c := range contacts {
		outbound = outbound || c.RegID != 0
	}
	lreq = locsvc.Request{
		AoR:       aor,
		Contacts:  contacts,
		Wildcard:  wildcard,
		CallID:    string(*req.CallID()),
		CSeq:      req.CSeq().SeqNo,
		Received:  src.String(),
		Transport: transport,
	}
	if v := HeaderValues(req, "Expires", ""); len(v) > 0 {
		n, err := parseDeltaSeconds(sipuri.TrimLWS(v[0]))
		if err != nil {
			return lreq, false, fmt.Errorf("Malformed Expires Header")
		}
		lreq.Expires, lreq.HasExpires = n, true
	}
	if v := HeaderValues(req, "User-Agent", ""); len(v) > 0 {
		lreq.UserAgent = v[0]
	}
	// Calls go home: in proxy mode this node is the first hop to the
	// binding. A registrar or redirect server is no proxy (a 302 routing a
	// call through it would loop back to a redirect server): it stores
	// exactly the Path the REGISTER carried.
	if c.cfg.Mode == ModeProxy {
		lreq.Path = []string{c.homeEntry(in, contacts, outbound)}
	}
	for _, v := range HeaderValues(req, "Path", "") {
		elems, err := sipuri.ParseNameAddrs(v)
		if err != nil {
			return lreq, false, fmt.Errorf("Malformed Path Header: %v", err)
		}
		for _, e := range elems {
			if e.Wildcard {
				return lreq, false, fmt.Errorf("Malformed Path Header: '*'")
			}
			lreq.Path = append(lreq.Path, e.URI)
		}
	}
	return lreq, outbound, nil
}

// homeEntry is the Path entry proxy mode stores first with the bindings of
// a REGISTER: this node, with ;ob for an outbound registration, and, when
// the phone must be reached on the flow it registered over rather than at
// its contact, that flow's token as user part (RFC 5626 §5.2). A request
// for the binding comes home through this entry, whichever node looked it
// up, and the token tells this node where to send it.
func (c *Core) homeEntry(in *Inbound, contacts []locsvc.Contact, outbound bool) string {
	entry := c.home
	for _, ct := range contacts {
		if !NeedsFlow(ct, in.Transport, in.Src.Addr()) {
			continue
		}
		tok, err := c.cfg.Flows.Encode(flowtoken.Flow{Transport: in.Transport, Remote: in.Src, Conn: in.Conn})
		if err != nil {
			c.log.Warn("sip: no flow token for a registration", "src", in.Src, "transport", in.Transport, "err", err)
			break
		}
		entry = "sip:" + tok + "@" + c.adv + ";lr"
		break
	}
	if outbound {
		entry += ";ob"
	}
	return entry
}

// NeedsFlow reports whether a contact registered from src over transport
// is reached on that flow rather than at its own URI: always for a
// connection transport or an RFC 5626 flow (reg-id), and over UDP when the
// source IP differs from the contact's (a NAT rewrote it). A UDP REGISTER
// from the contact's own IP but another port is taken as a UA that sends
// from an ephemeral port and listens at its contact (sipp does), so the
// contact is used; so is a contact naming a host, which says where the UA
// is reached.
func NeedsFlow(ct locsvc.Contact, transport string, src netip.Addr) bool {
	if transport != "udp" || ct.RegID != 0 {
		return true
	}
	u, err := sipuri.Parse(ct.URI)
	if err != nil {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return false
	}
	return a.Unmap() != src.Unmap()
}

// AoROf is the AoR a To URI or Request-URI (what) names: sip:user@domain
// for a served domain, without port. code is non-zero when there is none.
func (c *Core) AoROf(u *sip.Uri, what string) (aor, user string, code int, reason string) {
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return "", "", 400, "Bad Request (" + what + " URI Is Not A SIP URI)"
	}
	if u.User == "" {
		return "", "", 400, "Bad Request (" + what + " URI Has No User Part)"
	}
	if !c.Served(u.Host) {
		if what == "To" {
			return "", "", 404, "AoR Not In Served Domain"
		}
		return "", "", 404, "Domain Not Served"
	}
	aor, err := locsvc.NormalizeAoR("sip:" + u.User + "@" + u.Host)
	if err != nil {
		return "", "", 400, "Bad Request (Malformed " + what + " URI: " + err.Error() + ")"
	}
	return aor, sipuri.UnescapeLax(u.User), 0, ""
}

// Served reports whether host is one of the served domains.
func (c *Core) Served(host string) bool {
	h := sipuri.NormalizeHost(host)
	for _, d := range c.cfg.Domains {
		if d == h {
			return true
		}
	}
	return false
}

// registrarHost accepts a REGISTER's Request-URI host: a served domain,
// or this server's own address, which is what many UAs put there.
func (c *Core) registrarHost(host string) bool {
	if c.Served(host) {
		return true
	}
	h := sipuri.NormalizeHost(host)
	for _, own := range c.ownHosts {
		if h == own {
			return true
		}
	}
	return false
}

func unsupported(required []string) []string {
	var bad []string
	for _, t := range required {
		if !hasTag(supportedTags, t) {
			bad = append(bad, t)
		}
	}
	return bad
}

// registeredContact renders a binding for the 200's Contact list.
func registeredContact(b *locsvc.Binding, now time.Time) string {
	secs := int64(b.Expires.Sub(now) / time.Second)
	if secs < 1 {
		secs = 1 // live, so not 0, which would read as removed
	}
	var sb strings.Builder
	sb.WriteString("<" + b.URI + ">;expires=" + strconv.FormatInt(secs, 10))
	if b.Q != 1000 {
		sb.WriteString(";q=" + formatQ(b.Q))
	}
	if b.Instance != "" {
		sb.WriteString(`;+sip.instance="` + sipuri.QuoteEscape(b.Instance) + `"`)
		if b.RegID != 0 {
			sb.WriteString(";reg-id=" + strconv.FormatUint(uint64(b.RegID), 10))
		}
	}
	return sb.String()
}

// LocatorError is the answer to a failed Locator call.
func (c *Core) LocatorError(req *sip.Request, err error) *sip.Response {
	e, ok := locsvc.AsError(err)
	if !ok {
		c.log.Warn("sip: location service failed", "method", req.Method, "err", err)
		return NewResponse(req, 500, "Server Internal Error")
	}
	res := NewResponse(req, e.SIPCode(), e.SIPReason())
	c.countLocatorLimit(e)
	switch e.Kind {
	case locsvc.KindIntervalTooBrief:
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(e.MinExpires)))
	case locsvc.KindUnavailable:
		// Spread the retries of many UAs refused at once.
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(5+rand.IntN(10))))
		c.log.Warn("sip: location service unavailable", "method", req.Method, "err", err)
	}
	return res
}
