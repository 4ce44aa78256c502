package core

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// NewResponse builds a response to req (RFC 3261 §8.2.6): its well-formed
// Vias, From, To (with a tag derived from the request, so that a stateless
// answer to a retransmission carries the same tag, §8.2.7), Call-ID and
// CSeq. A malformed Via is left out, so that the answer itself always
// parses.
func NewResponse(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponse(code, sanitizeReason(reason))
	for _, h := range req.Headers() {
		if via, ok := h.(*sip.ViaHeader); ok {
			if !echoableVia(via) {
				break // what follows a Via sipgo cannot read back goes too: the order is the route
			}
			res.AppendHeader(via.Clone())
		}
	}
	if from := req.From(); from != nil && echoable(from) {
		res.AppendHeader(sip.HeaderClone(from))
	}
	if to := req.To(); to != nil && echoable(to) {
		to = sip.HeaderClone(to).(*sip.ToHeader)
		if !to.Params.Has("tag") {
			to.Params.Add("tag", statelessTag(req))
		}
		res.AppendHeader(to)
	}
	if id := req.CallID(); id != nil {
		res.AppendHeader(sip.HeaderClone(id))
	}
	if cseq := req.CSeq(); cseq != nil {
		res.AppendHeader(sip.HeaderClone(cseq))
	}
	return res
}

// echoableVia reports whether sipgo renders a Via it read leniently (a
// truncated message's, answered 400) in a form it parses back: protocol
// SIP/2.0, a transport and a host (`Via: //0 00:A` came back as `//0 `).
func echoableVia(v *sip.ViaHeader) bool {
	return strings.EqualFold(v.ProtocolName, "SIP") && v.ProtocolVersion == "2.0" && v.Transport != "" && v.Host != ""
}

// echoable reports whether sipgo renders a From or To header in a form
// it parses back: its URI parser is lax, and a response must not carry
// what the client cannot read.
func echoable(h sip.Header) bool {
	switch h := h.(type) {
	case *sip.FromHeader:
		if plainAddress(h.DisplayName, &h.Address, h.Params) {
			return true
		}
	case *sip.ToHeader:
		if plainAddress(h.DisplayName, &h.Address, h.Params) {
			return true
		}
	}
	return reparses(h)
}

// plainAddress recognises, without rendering and parsing the header again
// (5% of a REGISTER's CPU when it was done for every header), the everyday
// From and To: no display name, a sip or sips URI with a host, and nothing
// but token characters in its parts, which sipgo renders as it read them.
// Anything else takes the slow check.
func plainAddress(name string, u *sip.Uri, params sip.HeaderParams) bool {
	if name != "" || (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" || u.Password != "" ||
		len(u.Headers) > 0 || !plainText(u.User) || !plainText(u.Host) {
		return false
	}
	for _, ps := range [2]sip.HeaderParams{u.UriParams, params} {
		for _, kv := range ps {
			if kv.K == "" || !plainText(kv.K) || !plainText(kv.V) {
				return false
			}
		}
	}
	return true
}

// plainText: letters, digits and the marks of an RFC 3261 token.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !sipuri.IsToken(s[i]) {
			return false
		}
	}
	return true
}

// reparses is the slow check: the header as sipgo renders it parses back
// to a URI that can be answered. A wildcard is refused too: sipgo's
// message parser does not take one in From or To (`From: sip:*>`, read
// leniently, rendered as `<sip:*>>`), though its address parser does.
func reparses(h sip.Header) bool {
	var u sip.Uri
	var params sip.HeaderParams
	if _, err := sip.ParseAddressValue(h.Value(), &u, &params); err != nil || u.Wildcard {
		return false
	}
	return (u.Scheme != "sip" && u.Scheme != "sips") || u.Host != ""
}

// statelessTag hashes what identifies the request's transaction (FNV-1a;
// the tag only has to be unique per request, not secret).
func statelessTag(req *sip.Request) string {
	h := uint64(14695981039346656037)
	mix := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	if via := req.Via(); via != nil {
		b, _ := via.Params.Get("branch")
		mix(b)
		mix(via.Host)
	}
	if id := req.CallID(); id != nil {
		mix(string(*id))
	}
	if from := req.From(); from != nil {
		t, _ := from.Params.Get("tag")
		mix(t)
	}
	if cs := req.CSeq(); cs != nil {
		mix(strconv.FormatUint(uint64(cs.SeqNo), 10))
	}
	var buf [8]byte
	for i := range buf {
		buf[i] = byte(h >> (8 * i))
	}
	return hex.EncodeToString(buf[:])
}

// sanitizeReason makes a reason phrase safe to put on a status line: error
// texts can quote what the client sent, so no control characters, valid
// UTF-8, bounded length. "CSeq" is written "CSEQ": sipp 3.6 finds the
// response's CSeq method with strstr(msg, "CSeq"), so a status line
// mentioning CSeq makes the answer unmatchable to it (seen with
// "cseq: CSeq 2 is not higher than 2 stored for this Call-ID").
func sanitizeReason(s string) string {
	const maxLen = 160
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			break
		}
		switch {
		case r == utf8.RuneError:
			b.WriteByte('?')
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "Unknown"
	}
	return strings.ReplaceAll(b.String(), "CSeq", "CSEQ")
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render serialises a response into a fresh slice, with Content-Length:
// 0 last (the core's answers carry no body).
func Render(res *sip.Response) []byte {
	res.SetBody(nil)
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	out := bytes.Clone(buf.Bytes())
	if buf.Cap() <= 64<<10 {
		bufPool.Put(buf)
	}
	return out
}
