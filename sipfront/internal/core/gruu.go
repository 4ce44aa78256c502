package core

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/locsvc/locsvc/locsvc"

	"github.com/locsvc/locsvc/internal/gruu"
	"github.com/locsvc/locsvc/internal/sipuri"
)

// GRUUs (RFC 5627): URIs that reach one UA instance of a user, never the
// user's other phones. A UA that sends Supported: gruu and a
// +sip.instance gets two in each Contact of its 200: the public one, the
// AoR with the instance in a gr parameter, and a temporary one that hides
// the AoR (internal/gruu seals it). Neither is stored: a request to
// either is taken apart here into the AoR and instance it names, and
// goes to that instance's bindings only.

// gruuTarget is what a Request-URI that is a GRUU names.
type gruuTarget struct {
	aor, instance string
	temp          bool
	callID        uint64 // temp-gruu only: the registration it was issued for
}

// instanceURN is an instance ID that may be a GRUU's (RFC 5627 §3.1: a
// URN, as +sip.instance carries it in angle brackets): the URN, or ""
// for none.
func instanceURN(instance string) string {
	if len(instance) < 2 || instance[0] != '<' || instance[len(instance)-1] != '>' {
		return ""
	}
	urn := instance[1 : len(instance)-1]
	if !strings.HasPrefix(strings.ToLower(urn), "urn:") {
		return ""
	}
	return urn
}

// gruuParams are the pub-gruu and temp-gruu Contact parameters of
// binding b of aor in a 200 (RFC 5627 §5.4), or "" for a binding with no
// instance URN. A new temp-gruu is sealed each time; all of them stay
// valid until the instance registers with another Call-ID.
func (c *Core) gruuParams(aor string, b *locsvc.Binding) string {
	urn := instanceURN(b.Instance)
	if urn == "" {
		return ""
	}
	at := strings.LastIndexByte(aor, '@')
	if at < 0 {
		return ""
	}
	pub := aor + ";gr=" + sipuri.PercentEncode(urn, sipuri.ParamSafe)
	temp := "sip:" + c.cfg.GRUUs.Seal(gruu.Temp{AoR: aor, Instance: b.Instance, CallID: gruu.CallIDHash(b.CallID)}) +
		"@" + aor[at+1:] + ";gr"
	return `;pub-gruu="` + sipuri.QuoteEscape(pub) + `";temp-gruu="` + sipuri.QuoteEscape(temp) + `"`
}

// gruuOf reads a Request-URI that is a GRUU: one with a gr parameter,
// with a value (pub-gruu: the AoR's user and host, the instance URN as
// the value) or without (temp-gruu: the sealed user part). isGRUU is false
// for any other URI; refuse is the answer to a GRUU that names nothing:
// a temp-gruu that does not open is 404, as an unknown user is.
func (c *Core) gruuOf(req *sip.Request) (g gruuTarget, isGRUU bool, refuse *sip.Response) {
	u := &req.Recipient
	if u.UriParams == nil {
		return g, false, nil
	}
	gr, ok := u.UriParams.Get("gr")
	if !ok {
		return g, false, nil
	}
	if gr == "" {
		t, err := c.cfg.GRUUs.Open(sipuri.UnescapeLax(u.User))
		var au sipuri.URI
		if err == nil {
			au, err = sipuri.Parse(t.AoR)
		}
		if err != nil || !c.Served(au.Host) {
			return g, true, NewResponse(req, 404, "Not Found")
		}
		return gruuTarget{aor: t.AoR, instance: t.Instance, temp: true, callID: t.CallID}, true, nil
	}
	aor, _, code, reason := c.AoROf(u, "Request")
	if code != 0 {
		return g, true, NewResponse(req, code, reason)
	}
	return gruuTarget{aor: aor, instance: "<" + sipuri.UnescapeLax(gr) + ">"}, true, nil
}

// instanceBindings are the bindings of bs that g reaches: its instance's
// (instance IDs compare as URNs, case-insensitively), and for a temp-gruu
// only while the instance is registered with the Call-ID it was issued
// for. invalidated reports a temp-gruu whose instance is registered, but
// under another Call-ID: no longer a GRUU at all (404), where an
// instance with no live binding is one whose phone is away (480).
func (g *gruuTarget) instanceBindings(bs []locsvc.Binding) (out []locsvc.Binding, invalidated bool) {
	for _, b := range bs {
		if !strings.EqualFold(b.Instance, g.instance) {
			continue
		}
		if g.temp && gruu.CallIDHash(b.CallID) != g.callID {
			invalidated = true
			continue
		}
		out = append(out, b)
	}
	return out, invalidated && len(out) == 0
}
