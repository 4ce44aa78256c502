package core

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/locsvc/locsvc/internal/sipuri"
)

// TopVia returns the first Via header if sipgo parsed it, else nil: a
// request whose top Via is missing or malformed cannot be answered.
func TopVia(req *sip.Request) *sip.ViaHeader {
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), "Via") || h.Name() == "v" {
			via, _ := h.(*sip.ViaHeader)
			if via == nil || !usableVia(via) {
				return nil
			}
			return via
		}
	}
	return nil
}

// usableVia accepts a Via a response can be routed back by: SIP/2.0 over
// a named transport, to a host that could be a name or an address.
func usableVia(via *sip.ViaHeader) bool {
	if !strings.EqualFold(via.ProtocolName, "SIP") || via.ProtocolVersion != "2.0" || via.Transport == "" ||
		via.Host == "" || via.Port < 0 || via.Port > 65535 {
		return false
	}
	for i := 0; i < len(via.Transport); i++ {
		if !sipuri.IsToken(via.Transport[i]) {
			return false
		}
	}
	for i := 0; i < len(via.Host); i++ {
		if c := via.Host[i]; !(sipuri.IsAlnum(c) || c == '-' || c == '.' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// FixVia records where the request really came from in its top Via
// (RFC 3261 §18.2.1, RFC 3581 §4): received when the sent-by host is not
// the source address (always, with rport), rport filled with the source
// port when the client asked for it. The response copies this Via.
func FixVia(via *sip.ViaHeader, src netip.AddrPort) {
	ip := src.Addr().Unmap()
	_, rport := via.Params.Get("rport")
	sent, err := netip.ParseAddr(strings.Trim(via.Host, "[]"))
	if rport || err != nil || sent.Unmap() != ip {
		via.Params.Add("received", ip.String())
	}
	if rport {
		via.Params.Add("rport", strconv.Itoa(int(src.Port())))
	}
}
